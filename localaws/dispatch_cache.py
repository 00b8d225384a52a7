"""A lookup moto's server repeats on every request although its answer never changes, done once.

To route a request, moto's `DomainDispatcherApplication.get_backend_for_host` asks whether the
host names a moto package: `moto.backends.list_of_moto_modules()` lists moto's install folder and
stats every entry, on each request (a tenth of the emulator's time at a few hundred stacks). The
packages do not change while the server runs, so the list is read once; the answers are the same.
"""

from __future__ import annotations

from typing import Iterable

from moto import backends

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
    _installed = True
