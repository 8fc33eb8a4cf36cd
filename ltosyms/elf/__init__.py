"""The ELF layer: the only part of ltosyms that imports pyelftools."""

from ltosyms.elf.image import ImageKind, KernelImage, Section, open_image
from ltosyms.elf.symtab import Symbol, SymbolTable

__all__ = ["ImageKind", "KernelImage", "Section", "Symbol", "SymbolTable", "open_image"]
