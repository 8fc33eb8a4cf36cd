"""The ELF layer: kernel images and symbol tables (ELF read by our own code); the debug
sections it hands to :mod:`ltosyms.dwarf` (:mod:`ltosyms.elf.debug_sections`)."""

from typing import TYPE_CHECKING

from ltosyms.elf.image import ImageKind, KernelImage, Section, open_image
from ltosyms.lazy import lazy_exports

if TYPE_CHECKING:
    from ltosyms.elf.symtab import Symbol, SymbolTable

__all__ = ["ImageKind", "KernelImage", "Section", "Symbol", "SymbolTable", "open_image"]


# Names loaded on first use, and the module that defines each: a diff of two indexed images
# reads no symbol table and does not import its reader (nor the name grammars it loads).
_LAZY = {
    "Symbol": "ltosyms.elf.symtab",
    "SymbolTable": "ltosyms.elf.symtab",
}


__getattr__ = lazy_exports(__name__, _LAZY)
