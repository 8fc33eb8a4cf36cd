"""Build-to-build diff: sizes per section class, per function and object, per directory and
MAINTAINERS subsystem, with LTO-aware matching and classification (what LTO dropped,
specialized, split, renamed, folded, inlined and outlined).

Each image's part is an :class:`ImageCensus`, taken once (:func:`take_image_census`); a diff
compares two of them (:func:`diff_censuses`), or opens the files first (:func:`diff_images`,
which is :func:`image_censuses`, then :func:`diff_censuses`).
"""

from typing import TYPE_CHECKING

from ltosyms.diff.census import ImageCensus, take_image_census
from ltosyms.diff.compare import diff_censuses, diff_images, diff_loaded, image_censuses
from ltosyms.diff.model import ChangeClass, DiffReport, SectionClass, SymbolKind, Visibility
from ltosyms.lazy import lazy_exports

if TYPE_CHECKING:
    from ltosyms.diff.maintainers import Maintainers, read_maintainers

__all__ = [
    "ChangeClass",
    "DiffReport",
    "ImageCensus",
    "Maintainers",
    "SectionClass",
    "SymbolKind",
    "Visibility",
    "diff_censuses",
    "diff_images",
    "diff_loaded",
    "image_censuses",
    "read_maintainers",
    "take_image_census",
]


# Names loaded on first use, and the module that defines each: only a diff given --maintainers
# reads a MAINTAINERS file.
_LAZY = {
    "Maintainers": "ltosyms.diff.maintainers",
    "read_maintainers": "ltosyms.diff.maintainers",
}


__getattr__ = lazy_exports(__name__, _LAZY)
