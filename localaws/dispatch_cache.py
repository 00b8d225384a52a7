"""Lookups moto's server repeats on every request although their answers do not change, done once.

To route a request, moto's `DomainDispatcherApplication.get_backend_for_host` asks whether the
host names a moto package: `moto.backends.list_of_moto_modules()` lists moto's install folder and
stats every entry, on each request (a tenth of the emulator's time at a few hundred stacks). The
packages do not change while the server runs, so the list is read once; the answers are the same.

To find an action's handler, `BaseResponse.call_action` lists the response class's functions with
`inspect.getmembers` on each request (a twentieth of a no-change plan's emulator time at 200
children). The list is kept per class, and listed again if a class in its MRO gains or loses an
attribute (a handler installed later), so the answers stay those of the class as it is.
"""

from __future__ import annotations

from typing import Callable, Iterable

from moto import backends
from moto.core import responses

_installed = False


def install() -> None:
    """Makes `list_of_moto_modules` answer a list read once; safe to call more than once."""
    global _installed
    if _installed:
        return
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    list_of_moto_modules.__doc__ = "moto's packages, listed once (localaws/dispatch_cache.py)."
    backends.list_of_moto_modules = list_of_moto_modules
    responses.method_names_from_class = cached_method_names(responses.method_names_from_class)
    _installed = True


def cached_method_names(original: Callable[[object], list[str]]) -> Callable[[object], list[str]]:
    """`original` (moto's `method_names_from_class`), answering from a per-class cache."""
    cache: dict[object, tuple[tuple[int, ...], list[str]]] = {}

    def shape(clazz: object) -> tuple[int, ...]:
        return tuple(len(vars(base)) for base in getattr(clazz, "__mro__", (clazz,)))

    def method_names_from_class(clazz: object) -> list[str]:
        hit = cache.get(clazz)
        if hit is not None and hit[0] == shape(clazz):
            return hit[1]
        names = original(clazz)
        # Taken after listing: the first listing itself leaves an attribute behind.
        cache[clazz] = (shape(clazz), names)
        return names

    method_names_from_class.__doc__ = "moto's lookup, kept per class (localaws/dispatch_cache.py)."
    return method_names_from_class
