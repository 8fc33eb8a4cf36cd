"""One kernel image opened for decoding, with everything that is worked out from it.

An :class:`ImageContext` owns a vmlinux or module: the mapped image, its symbol table, its
DWARF resolver, its call-site finder, its build facts and boot-patch tables, and the
answers its index keeps between runs (:class:`~ltosyms.index.Answers`). Each part is made on
first use and handed the memos of what it keeps; the index is written by
:meth:`ImageContext.save` and released by :meth:`ImageContext.close`. The stages
(:mod:`ltosyms.dwarf`, :mod:`ltosyms.disasm`, :mod:`ltosyms.elf`) see memos of records only;
none of them opens or saves a store.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from ltosyms.elf.image import ImageKind, KernelImage, open_image
from ltosyms.elf.kernel import LoadedImage, require_kernel
from ltosyms.index import kinds
from ltosyms.index.answers import Answers
from ltosyms.index.kinds import Kind
from ltosyms.index.store import CacheLocation, open_store
from ltosyms.stores import Memo, MemoryMemo

if TYPE_CHECKING:
    from ltosyms.disasm import CallSiteFinder, PatchSites
    from ltosyms.disasm.records import CodeAnalysis, CodeAnalysisKey, CodeMatch, CodeMatchKey
    from ltosyms.disasm.view import CodeView, ImageViewKey
    from ltosyms.dwarf import AddressTable, DwarfResolver, OuterName
    from ltosyms.elf.build_facts import BuildFacts
    from ltosyms.elf.relocations import ModuleRelocations
    from ltosyms.elf.symtab import SymbolTable

K = TypeVar("K")
T = TypeVar("T")

# Records of one Code: kind kept for a run without an index: far more distinct crashes than
# one log holds in practice (the 747 syzkaller logs hold one to a few each).
RUN_MEMO_LIMIT = 1024


class ImageContext:
    """A vmlinux or module and what is known about it (see the module note)."""

    def __init__(self, *, image: KernelImage, answers: Answers | None = None) -> None:
        """``answers``: the image's index (None: nothing is kept between runs)."""
        self.image = image
        self.answers = answers
        self.symbols_from_index = False  # set when the symbol table is read
        # Without an index, what the Code: kinds work out is kept for the run (see _run_memo).
        self._run_memos: dict[str, MemoryMemo[Any, Any]] = {}

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        expect: ImageKind | None = None,
        cache: CacheLocation | None = None,
        required: bool = False,
        answering_addresses: bool = False,
    ) -> ImageContext:
        """Open the image at ``path`` with the index under ``cache`` (None: no index).

        With ``expect``, the image must be of that kind and its symbol table is read at once
        (a vmlinux must define the symbols every kernel links in); without, it is read on
        first use. ``required``: an index that cannot be opened is an error, not a warning.
        ``answering_addresses``: the image is opened to look addresses up, so its stored
        address table is checked from the start, in the background (see
        :meth:`~ltosyms.index.store.IndexStore.check_tables_ahead`)."""
        image = open_image(path, expect=expect)
        answers = None
        try:
            if cache is not None:
                store = open_store(image, cache, cu_format=kinds.UNIT_FORMAT, required=required)
                answers = Answers(store, image) if store is not None else None
                if answers is not None and answering_addresses:
                    # The symbol table is wanted at once: it is summed when read.
                    answers.check_tables_ahead((kinds.ADDRESS_TABLE,))
            context = cls(image=image, answers=answers)
            if expect is ImageKind.VMLINUX:
                require_kernel(image, context.symbols)
            elif expect is not None:
                context.symbols  # noqa: B018  # a module without a usable table fails here
        except BaseException:
            if answers is not None:
                answers.close()
            image.close()
            raise
        return context

    @property
    def name(self) -> str:
        return str(self.image.path)

    @property
    def build_id(self) -> str | None:
        return self.image.build_id

    def memo(self, kind: Kind[K, T]) -> Memo[K, T] | None:
        """What the index keeps of ``kind`` (None without an index)."""
        return self.answers.memo(kind) if self.answers is not None else None

    def _run_memo(self, kind: Kind[K, T]) -> Memo[K, T]:
        """:meth:`memo`, or without an index one kept for the run: a log that prints one crash
        again and again has its ``Code:`` line analysed once (bounded: a log of distinct
        crashes keeps the last RUN_MEMO_LIMIT)."""
        memo = self.memo(kind)
        if memo is not None:
            return memo
        kept: MemoryMemo[K, T] = self._run_memos.setdefault(
            kind.name, MemoryMemo(limit=RUN_MEMO_LIMIT)
        )
        return kept

    # -- the parts, each made on first use ------------------------------------------------------

    @cached_property
    def symbols(self) -> SymbolTable:
        """The symbol table: from the index when it holds it, else read from the ELF."""
        memo = self.memo(kinds.SYMBOLS)
        table = memo.get(None) if memo is not None else None
        self.symbols_from_index = table is not None
        if table is None:
            from ltosyms.elf.symtab import SymbolTable  # on first use: see ltosyms.elf

            table = SymbolTable(self.image)
            if memo is not None:
                memo.put(None, table)
        return table

    @property
    def loaded(self) -> LoadedImage:
        """The image and its symbols, as the commands that keep no index take them."""
        return LoadedImage(image=self.image, symbols=self.symbols)

    @cached_property
    def dwarf(self) -> DwarfResolver | None:
        """The DWARF resolver (None: the image has no DWARF)."""
        if not self.image.has_dwarf():
            return None
        from ltosyms.dwarf import DwarfResolver
        from ltosyms.elf.debug_sections import ImageDebugSections
        from ltosyms.elf.outer_names import outer_namer

        named: list[OuterName] = []

        def outer_name(link_address: int, within_size: bool = True) -> str | None:
            # The symbol table is read when a chain is first named, not with the resolver:
            # the index builder lists the units before it reads the symbols.
            if not named:
                named.append(outer_namer(self.symbols, self.memo(kinds.OUTER_NAMES)))
            return named[0](link_address, within_size)

        return DwarfResolver(
            ImageDebugSections(self.image),
            units=self.memo(kinds.UNITS),
            unit_map=self.memo(kinds.UNIT_MAP),
            chains=self.memo(kinds.CHAINS),
            outer_name=outer_name,
            table=self.address_table,
            table_refused=self._address_table_refused,
        )

    def _address_table_refused(self) -> None:
        # Its values point outside it (damage under a valid checksum): no later use of it in
        # this run (self.address_table) or another (the index removes the file).
        self.__dict__["address_table"] = None  # what the cached_property holds
        memo = self.memo(kinds.ADDRESS_TABLE)
        if memo is not None:
            memo.refuse(None)

    @cached_property
    def address_table(self) -> AddressTable | None:
        """The image's address table, when ``ltosyms index`` wrote one and it is whole (a
        damaged or foreign one is refused, and the resolver parses or loads units as without
        it); None without an index."""
        memo = self.memo(kinds.ADDRESS_TABLE)
        return memo.get(None) if memo is not None else None

    @cached_property
    def finder(self) -> CallSiteFinder:
        """The call-site finder (the instruction ending at a return address)."""
        from ltosyms.disasm.callsite import CallSiteFinder

        return CallSiteFinder(
            self.image,
            symbols=self.symbols,
            call_sites=self.memo(kinds.CALL_SITES),
            sweeps=self.memo(kinds.SWEEPS),
            patch_sites=self.memo(kinds.PATCH_SITES),
            row_start=self._row_start,
        )

    def _row_start(self, link_address: int) -> int | None:
        dwarf = self.dwarf
        return None if dwarf is None else dwarf.row_start(link_address)

    @property
    def patch_sites(self) -> PatchSites:
        """Where the kernel patches its own code at boot (none for a module)."""
        return self.finder.sites

    @cached_property
    def facts(self) -> BuildFacts:
        """What the image says about its build (version, compiler, LTO)."""
        from ltosyms.elf.build_facts import read_build_facts

        return read_build_facts(self.image, self.symbols, self.memo(kinds.BUILD_FACTS))

    @cached_property
    def relocations(self) -> ModuleRelocations | None:
        """A module's relocations (what its calls and references name), read per section on
        first need; None for a vmlinux, whose displacements are final."""
        if not self.image.is_module:
            return None
        from ltosyms.elf.relocations import module_relocations

        return module_relocations(self.image)

    @property
    def code_matches(self) -> Memo[CodeMatchKey, CodeMatch]:
        """Comparisons of ``Code:`` lines with this image."""
        return self._run_memo(kinds.CODE_MATCHES)

    @property
    def code_analyses(self) -> Memo[CodeAnalysisKey, CodeAnalysis]:
        """Analyses of ``Code:`` lines whose faulting instruction is in this image."""
        return self._run_memo(kinds.CODE_ANALYSES)

    @property
    def code_views(self) -> Memo[CodeAnalysisKey, CodeView]:
        """``Code:`` listings of this image labelled and named (:mod:`ltosyms.disasm.view`)."""
        return self._run_memo(kinds.CODE_VIEWS)

    @property
    def image_code_views(self) -> Memo[ImageViewKey, CodeView]:
        """This image's instructions around IPs whose ``Code:`` bytes were not printed."""
        return self._run_memo(kinds.IMAGE_CODE_VIEWS)

    def keep_tables(self) -> None:
        """Work out what every decode reads besides DWARF units, so that the index keeps it:
        the symbol table and, for a vmlinux, its boot-patch tables and build facts."""
        self.symbols  # noqa: B018
        if not self.image.is_module:
            self.patch_sites  # noqa: B018
            self.facts  # noqa: B018

    # -- the index ------------------------------------------------------------------------------

    def save(self) -> None:
        """Write what the parts worked out since the last save to the index."""
        if self.answers is not None:
            self.answers.save()

    def close(self) -> None:
        """Save, then release the index: the last connection to an index folds its
        write-ahead log back into the file, which interpreter shutdown does not promise to do.
        The image stays mapped while records made from it are alive."""
        if self.answers is not None:
            self.answers.close()

    def __enter__(self) -> ImageContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ImageContext({self.name!r}, index={'yes' if self.answers else 'no'})"
