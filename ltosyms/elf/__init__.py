"""The ELF layer: kernel images, symbol tables, DWARF (headers and DWARF read by our own code)."""

from ltosyms.elf.image import ImageKind, KernelImage, Section, open_image
from ltosyms.elf.symtab import Symbol, SymbolTable

__all__ = ["ImageKind", "KernelImage", "Section", "Symbol", "SymbolTable", "open_image"]
