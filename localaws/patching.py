"""Replacing a method of moto's classes while keeping the original reachable."""

from __future__ import annotations

import functools
from typing import Any, Callable


def wrap(owner: type, name: str, replacement: Callable[..., Any]) -> None:
    """Makes `owner.name` call `replacement(original, *arguments, **keywords)`."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*arguments: Any, **keywords: Any) -> Any:
        return replacement(original, *arguments, **keywords)

    setattr(owner, name, wrapper)
