"""The ELF layer: kernel images and symbol tables (ELF read by our own code); the debug
sections it hands to :mod:`ltosyms.dwarf` (:mod:`ltosyms.elf.debug_sections`)."""

from ltosyms.elf.image import ImageKind, KernelImage, Section, open_image
from ltosyms.elf.symtab import Symbol, SymbolTable

__all__ = ["ImageKind", "KernelImage", "Section", "Symbol", "SymbolTable", "open_image"]
