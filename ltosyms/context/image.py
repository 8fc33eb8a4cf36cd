"""One kernel image opened for decoding, with everything that is worked out from it.

An :class:`ImageContext` owns a vmlinux or module: the mapped image, its symbol table, its
DWARF resolver, its call-site finder, its build facts and boot-patch tables, and the index
that keeps what was worked out between runs. Each part is made on first use; the index is
written by :meth:`ImageContext.save` and released by :meth:`ImageContext.close`. The stages
(:mod:`ltosyms.dwarf`, :mod:`ltosyms.disasm`, :mod:`ltosyms.elf`) receive what they keep from
it; none of them opens or saves a store.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING

from ltosyms.elf.image import ImageKind, KernelImage, open_image
from ltosyms.elf.kernel import LoadedImage, require_kernel, symbols_for
from ltosyms.elf.symtab import SymbolTable
from ltosyms.index.store import CacheLocation, IndexStore, open_store

if TYPE_CHECKING:
    from ltosyms.disasm.callsite import CallSiteFinder
    from ltosyms.dwarf import DwarfResolver
    from ltosyms.elf.build_facts import BuildFacts


class ImageContext:
    """A vmlinux or module and what is known about it (see the module note)."""

    def __init__(self, *, image: KernelImage, store: IndexStore | None = None) -> None:
        self.image = image
        self.store = store

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        expect: ImageKind | None = None,
        cache: CacheLocation | None = None,
        required: bool = False,
    ) -> ImageContext:
        """Open the image at ``path`` with the index under ``cache`` (None: no index).

        With ``expect``, the image must be of that kind and its symbol table is read at once
        (a vmlinux must define the symbols every kernel links in); without, it is read on
        first use. ``required``: an index that cannot be opened is an error, not a warning."""
        from ltosyms.dwarf import CU_FORMAT

        image = open_image(path, expect=expect)
        store = None
        try:
            if cache is not None:
                store = open_store(image, cache, cu_format=CU_FORMAT, required=required)
            context = cls(image=image, store=store)
            if expect is ImageKind.VMLINUX:
                require_kernel(image, context.symbols)
            elif expect is not None:
                context.symbols  # noqa: B018  # a module without a usable table fails here
        except BaseException:
            if store is not None:
                store.close()
            image.close()
            raise
        return context

    @property
    def name(self) -> str:
        return str(self.image.path)

    @property
    def build_id(self) -> str | None:
        return self.image.build_id

    @cached_property
    def symbols(self) -> SymbolTable:
        """The symbol table: from the index when it holds it, else read from the ELF."""
        return symbols_for(self.image, self.store)

    @property
    def loaded(self) -> LoadedImage:
        """The image and its symbols, as the commands that keep no index take them."""
        return LoadedImage(self.image, self.symbols)

    @cached_property
    def dwarf(self) -> DwarfResolver | None:
        """The DWARF resolver (None: the image has no DWARF)."""
        if not self.image.has_dwarf():
            return None
        from ltosyms.elf.debug_sections import dwarf_resolver

        return dwarf_resolver(self.image, self.store, self.symbols)

    @cached_property
    def finder(self) -> CallSiteFinder:
        """The call-site finder (the instruction ending at a return address)."""
        from ltosyms.disasm.callsite import CallSiteFinder

        finder = CallSiteFinder(self.image, symbols=self.symbols)
        if self.store is not None:
            finder.use_store(self.store)
        return finder

    @cached_property
    def facts(self) -> BuildFacts:
        """What the image says about its build (version, compiler, LTO)."""
        from ltosyms.elf.build_facts import read_build_facts

        return read_build_facts(self.image, self.symbols, self.store)

    def save(self) -> None:
        """Write what was worked out since the last save to the index."""
        if "finder" in self.__dict__:
            self.finder.save()
        dwarf = self.__dict__.get("dwarf")
        if dwarf is not None:
            dwarf.save()

    def close(self) -> None:
        """Save, then release the index: the last connection to an index folds its
        write-ahead log back into the file, which interpreter shutdown does not promise to do.
        The image stays mapped while records made from it are alive."""
        self.save()
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> ImageContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ImageContext({self.name!r}, index={'yes' if self.store else 'no'})"
