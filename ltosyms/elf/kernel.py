"""Open a vmlinux or module as a kernel image: validated ELF plus its symbol table.

This is the entry point commands use. It adds the one check the ELF layer cannot make: a
user-space program given as a vmlinux is an ELF with a symbol table too, but it has none of
the symbols every kernel links in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ltosyms.elf.image import ImageKind, KernelImage, open_image
from ltosyms.errors import InputError

if TYPE_CHECKING:
    from ltosyms.elf.symtab import SymbolTable

# Every Linux vmlinux defines at least one of these (arch/*/kernel/vmlinux.lds.S, init/version.c).
KERNEL_MARKERS = ("_stext", "_text", "linux_banner", "start_kernel")


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedImage:
    """An opened image with its symbol table."""

    image: KernelImage
    symbols: SymbolTable

    @property
    def build_id(self) -> str | None:
        return self.image.build_id


def load_vmlinux(path: str | os.PathLike[str]) -> LoadedImage:
    """Open ``path`` as a vmlinux and load its symbols; :class:`InputError` if it is not one."""
    from ltosyms.elf.symtab import SymbolTable  # on first use: see ltosyms.elf

    image = open_image(path, expect=ImageKind.VMLINUX)
    symbols = SymbolTable(image)
    require_kernel(image, symbols)
    return LoadedImage(image=image, symbols=symbols)


def require_kernel(image: KernelImage, symbols: SymbolTable) -> None:
    """:class:`InputError` (and ``image`` closed) unless ``symbols`` define one of the symbols
    every kernel links in."""
    if not any(symbols.address_of(marker) is not None for marker in KERNEL_MARKERS):
        image.close()
        raise InputError(
            f"{image.path}: not a Linux kernel image (none of {', '.join(KERNEL_MARKERS)} "
            "is defined)"
        )


def load_module(path: str | os.PathLike[str]) -> LoadedImage:
    """Open ``path`` as a kernel module (ET_REL ``.ko``, possibly compressed)."""
    from ltosyms.elf.symtab import SymbolTable  # on first use: see ltosyms.elf

    image = open_image(path, expect=ImageKind.MODULE)
    return LoadedImage(image=image, symbols=SymbolTable(image))


def load_any(path: str | os.PathLike[str]) -> LoadedImage:
    """A vmlinux or a module, whichever ``path`` is."""
    from ltosyms.elf.symtab import SymbolTable  # on first use: see ltosyms.elf

    image = open_image(path)
    if image.is_module:
        return LoadedImage(image=image, symbols=SymbolTable(image))
    image.close()
    return load_vmlinux(path)
