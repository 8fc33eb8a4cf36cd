"""A package's names loaded on first use (PEP 562), for the packages that export more than a
run needs: the reader of a layer stays unimported until a name of it is asked for.
(``ltosyms.dwarf`` keeps a copy of its own: that layer imports only errors, limits and stores.)"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, modules: Mapping[str, str]) -> Callable[[str], object]:
    """The ``__getattr__`` of ``package``: each name of ``modules`` is taken from the module
    given for it (a full module name) when first asked for; any other name is an error."""

    def __getattr__(name: str) -> object:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
