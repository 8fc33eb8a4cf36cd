"""ltosyms: readable kernel crashes, symbol diffs and kallsyms checks for LTO kernels.

The package is a library first; :mod:`ltosyms.cli` is a thin click layer over it. A log is
decoded in a few lines::

    import ltosyms

    with ltosyms.Session(ltosyms.cache_location()) as session, open("console.log", "rb") as log:
        vmlinux = session.open_vmlinux("vmlinux")
        decoder = ltosyms.Decoder(vmlinux, ltosyms.ModuleSet(["modules"], session))
        for report in decoder.decode_all(ltosyms.iter_reports(log)):
            ...

The names below load on first use (PEP 562), so that ``import ltosyms`` costs a command that
needs none of them nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ltosyms.lazy import lazy_exports

# The one place the version is written (pyproject.toml reads it): a literal, because asking
# importlib.metadata costs every run of the command a noticeable part of its start-up.
__version__ = "0.1.0"

if TYPE_CHECKING:
    from ltosyms.context import ImageContext, ModuleSet, Session
    from ltosyms.decode import Decoder
    from ltosyms.index import cache_location
    from ltosyms.oops import iter_reports

__all__ = [
    "Decoder",
    "ImageContext",
    "ModuleSet",
    "Session",
    "__version__",
    "cache_location",
    "iter_reports",
]

# Names loaded on first use, and the module that defines each.
_LAZY = {
    "Decoder": "ltosyms.decode",
    "ImageContext": "ltosyms.context",
    "ModuleSet": "ltosyms.context",
    "Session": "ltosyms.context",
    "cache_location": "ltosyms.index",
    "iter_reports": "ltosyms.oops",
}


__getattr__ = lazy_exports(__name__, _LAZY)
