"""Build-to-build diff: sizes per section class, per function and object, per directory, with
LTO-aware matching and classification (what LTO dropped, specialized, renamed and inlined)."""

from ltosyms.diff.compare import diff_images, diff_loaded
from ltosyms.diff.model import ChangeClass, DiffReport, SectionClass, SymbolKind

__all__ = ["ChangeClass", "DiffReport", "SectionClass", "SymbolKind", "diff_images", "diff_loaded"]
