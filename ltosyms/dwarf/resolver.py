"""Link address -> source: the inline chain at an address, from the image's DWARF.

:class:`DwarfResolver` is the door. It is lazy by design (docs/kernel-facts.md#dwarf-on-kernels):
the address -> unit map comes from ``.debug_aranges`` (or, for clang, from each unit's top DIE), and
only the units that hold asked-for addresses are parsed, each once, into a :class:`CuData` (line
rows and the function/inline tree, :mod:`ltosyms.dwarf.build`). Every parsed unit, the unit map and
(with the symbol table) every chain is handed to a :class:`~ltosyms.stores.Memo`; the on-disk index
gives the resolver memos over its stored units, so a later run loads the unit instead of parsing
DWARF, and never opens a debug section at all. Given the image's address table
(:mod:`ltosyms.dwarf.address_table`: every unit and the unit map in one mapped buffer), the
resolver answers from it alone, with the same lookups.

The DWARF decoders are ltosyms' own (pyelftools needs ~0.6 s per kernel unit): a line-program
state machine over bytes (:mod:`ltosyms.dwarf.line`) and a DIE walker driven by
abbreviation tables compiled to straight-line code (:mod:`ltosyms.dwarf.codegen`,
:mod:`ltosyms.dwarf.info`). It reads the sections it is given (a :class:`SectionSource`): the
ELF side maps them for a vmlinux and relocates them for a module (ET_REL).

Inline chains follow llvm-symbolizer ``--inlining``: the innermost entry takes the line-table
row at the address; each enclosing entry takes the call site (DW_AT_call_file/line/column)
of the inlined subroutine inside it; the outermost entry is the function itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from ltosyms.dwarf.paths import relative_path, source_roots
from ltosyms.dwarf.records import FunctionLines, SourceLocation
from ltosyms.dwarf.sections import SectionSource
from ltosyms.dwarf.unit_records import CompileUnit, FunctionExtent
from ltosyms.errors import CacheError, InputError
from ltosyms.stores import Memo, MemoryMemo

if TYPE_CHECKING:
    # The unit tables and the DWARF parsers are imported where a unit is loaded or parsed,
    # not with this module: a decode served from stored chains never loads them.
    from ltosyms.dwarf.address_table import AddressTable
    from ltosyms.dwarf.parser import UnitParser
    from ltosyms.dwarf.unit_map import CuMap
    from ltosyms.dwarf.unit_tables import CuData

log = logging.getLogger(__name__)

CuKey = int  # .debug_info offset of a unit header: names a unit within one build
T = TypeVar("T")

# Names the outermost entry of a chain: (link address, within the symbol's size) -> name.
# llvm-symbolizer takes it from the ELF symbol table (ltosyms.elf.outer_names).
OuterName = Callable[[int, bool], "str | None"]

# Parsed units and chains a resolver keeps in memory, each emptied when it holds this many: a
# stream of addresses from all over a vmlinux (symbolize from stdin, without an address table)
# must not end holding all of its DWARF. A log's frames fall in a few hundred units.
UNITS_KEPT = 512
CHAINS_KEPT = 65_536


class DwarfResolver:
    """Source locations for link addresses of one image (vmlinux or module)."""

    def __init__(
        self,
        sections: SectionSource,
        *,
        units: Memo[CuKey, CuData] | None = None,
        unit_map: Memo[None, CuMap] | None = None,
        chains: Memo[int, tuple[SourceLocation, ...]] | None = None,
        outer_name: OuterName | None = None,
        table: AddressTable | None = None,
        table_refused: Callable[[], None] | None = None,
    ) -> None:
        """``sections`` are opened only when a unit or the unit map must be parsed; parsed
        units and the unit map are kept in ``units`` and ``unit_map`` (memos of this process
        when not given). ``outer_name``, when given, names the outermost entry of each chain
        (the ELF symbol, as llvm-symbolizer does); chains are then kept in ``chains`` too.
        ``table``, when given (the image's :class:`AddressTable`), answers every lookup: no
        unit is loaded or parsed, and chains are neither read from ``chains`` nor kept (a
        lookup in the table costs less than reading a stored chain, and a million addresses
        asked must not hold a million chains). ``table_refused`` is called when the table turns
        out to hold values that point outside it (the resolver then answers from the units)."""
        self.sections = sections
        self.name = sections.name
        self.units: Memo[CuKey, CuData] = (
            units if units is not None else MemoryMemo(limit=UNITS_KEPT)
        )
        self.unit_map_memo: Memo[None, CuMap] = unit_map if unit_map is not None else MemoryMemo()
        self.outer_name = outer_name
        self.chains = chains if outer_name is not None and table is None else None
        self.table = table
        self.table_refused = table_refused
        self._parser: UnitParser | None = None
        self._cu_map: CuMap | None = table.cu_map if table is not None else None
        self._units: dict[int, CuData] = {}
        self._compile_units: dict[int, CompileUnit] = {}
        self._answers: dict[int, tuple[SourceLocation, ...]] = {}  # chains by address
        self.parsed_units = 0  # units decoded from DWARF by this resolver
        self.loaded_units = 0  # units given by the memo

    # -- DWARF, opened only when something must be parsed ------------------------------------

    @property
    def has_dwarf(self) -> bool:
        return self.sections.has_dwarf()

    @property
    def dwarf_opened(self) -> bool:
        """True once a unit or the unit map had to be parsed from DWARF (not the store)."""
        return self._parser is not None

    @property
    def parser(self) -> UnitParser:
        if self._parser is None:
            if not self.has_dwarf:
                raise InputError(
                    f"{self.name}: has no DWARF (.debug_info); a debug "
                    "build is needed for source lines"
                )
            from ltosyms.dwarf.parser import UnitParser

            self._parser = UnitParser(self.sections.open())
        return self._parser

    # -- units -----------------------------------------------------------------------------

    @property
    def cu_map(self) -> CuMap:
        if self._cu_map is None:
            self._cu_map = self.unit_map_memo.get(None)
            if self._cu_map is None:
                if not self.has_dwarf:
                    from ltosyms.dwarf.unit_map import CuMap

                    self._cu_map = CuMap.empty()
                else:
                    self._cu_map = self.parser.unit_map()
                    self.unit_map_memo.put(None, self._cu_map)
        return self._cu_map

    def cu_for(self, link_address: int) -> CuKey | None:
        """The unit whose code holds ``link_address`` (None: no unit claims it)."""
        return self.cu_map.unit_at(link_address)

    def unit_offsets(self) -> list[CuKey]:
        """Every unit with code, in .debug_info order."""
        return self.cu_map.unit_offsets()

    def cu_data(self, cu_offset: CuKey) -> CuData:
        """The parsed unit: from this resolver, else from the memo, else from DWARF (then
        kept in the memo); from the address table when there is one."""
        if self.table is not None:
            return self.table.unit(cu_offset)
        data = self._units.get(cu_offset)
        if data is not None:
            return data
        data = self.units.get(cu_offset)
        if data is not None:
            self.loaded_units += 1
        else:
            data = self.parser.unit(cu_offset)
            self.parsed_units += 1
            self.units.put(cu_offset, data)
        self._keep_unit(cu_offset, data)
        return data

    # -- lookups -----------------------------------------------------------------------------

    def locations(self, link_address: int) -> tuple[SourceLocation, ...]:
        """The inline chain at ``link_address``, innermost first; () if no unit covers it.

        For a return address, pass the call site (or return address - 1), not the return
        address: the line after a call is not where the caller is
        (docs/kernel-facts.md#return-addresses).

        With a memo of chains (given with the symbol table), the chain of an address asked
        before comes from it without loading its unit."""
        if self.table is not None:
            return self._from_table(
                lambda table: table.locations(link_address, self.outer_name),
                lambda: self.locations(link_address),
            )
        chain = self._answers.get(link_address)
        if chain is not None:
            return chain
        if self.chains is not None:
            chain = self.chains.get(link_address)
            if chain is not None:
                self._keep_chain(link_address, chain)
                return chain
        cu_offset = self.cu_for(link_address)
        chain = (
            ()
            if cu_offset is None
            else self.cu_data(cu_offset).locations(link_address, self.outer_name)
        )
        self._keep_chain(link_address, chain)
        if self.chains is not None:
            self.chains.put(link_address, chain)
        return chain

    def row_start(self, link_address: int) -> int | None:
        """Where the line-table row covering ``link_address`` starts: a known instruction
        start at or before it. Answered only where that costs a lookup, not a unit load: from
        the address table, or from a unit this resolver holds (None otherwise, and where no
        row covers the address)."""
        if self.table is not None:
            return self._from_table(
                lambda table: table.row_start(link_address), lambda: self.row_start(link_address)
            )
        if self._cu_map is None:
            return None
        cu_offset = self._cu_map.unit_at(link_address)
        data = self._units.get(cu_offset) if cu_offset is not None else None
        return None if data is None else data.row_start(link_address)

    def _from_table(
        self, from_table: Callable[[AddressTable], T], from_units: Callable[[], T]
    ) -> T:
        """``from_table(table)``; ``from_units()`` when the address table turns out to hold a
        value that points outside it or names a unit it lacks: damage its checksum does not
        show, which only a writer with a bug or a hostile one makes. The table is then
        dropped with one warning, and refused (``table_refused``: the index removes it, and
        ``ltosyms index`` writes it anew).
        The table answers exactly as the units do (tests/test_address_table.py compares them
        at every code byte of the samples): an IndexError there is the table's, not the
        code's."""
        table = self.table
        assert table is not None
        try:
            return from_table(table)
        except (IndexError, CacheError) as error:
            log.warning(
                "%s: the index's address table holds a value that points outside it (%s); "
                "the units answer instead (`ltosyms index` writes the table anew)",
                self.name,
                error,
            )
            self.table = None
            self._cu_map = None
            if self.table_refused is not None:
                self.table_refused()
            return from_units()

    def _keep_unit(self, cu_offset: int, data: CuData) -> None:
        if len(self._units) >= UNITS_KEPT:
            self._units.clear()
        self._units[cu_offset] = data

    def _keep_chain(self, link_address: int, chain: tuple[SourceLocation, ...]) -> None:
        if len(self._answers) >= CHAINS_KEPT:
            self._answers.clear()
        self._answers[link_address] = chain

    def locations_many(
        self, link_addresses: Iterable[int]
    ) -> dict[int, tuple[SourceLocation, ...]]:
        """:meth:`locations` for many addresses, each unit parsed once."""
        if self.table is not None:
            wanted = list(link_addresses)
            return self._from_table(
                lambda table: {a: table.locations(a, self.outer_name) for a in wanted},
                lambda: self.locations_many(wanted),
            )
        by_unit: dict[int | None, list[int]] = {}
        for link_address in link_addresses:
            by_unit.setdefault(self.cu_for(link_address), []).append(link_address)
        self._prefetch(key for key in by_unit if key is not None)
        result: dict[int, tuple[SourceLocation, ...]] = {}
        for cu_offset in sorted(by_unit, key=lambda key: -1 if key is None else key):
            addresses = by_unit[cu_offset]
            if cu_offset is None:
                result.update(dict.fromkeys(addresses, ()))
                continue
            data = self.cu_data(cu_offset)
            for link_address in addresses:
                result[link_address] = data.locations(link_address, self.outer_name)
        return result

    def _prefetch(self, cu_offsets: Iterable[int]) -> None:
        """Load the units the memo keeps in one batch (the index reads them in one query)."""
        if self.table is not None:
            return
        wanted = [offset for offset in cu_offsets if offset not in self._units]
        if len(wanted) < 2:
            return
        for cu_offset, data in self.units.get_many(wanted).items():
            self._keep_unit(cu_offset, data)
            self.loaded_units += 1

    def function_at(self, link_address: int) -> FunctionExtent | None:
        """The DWARF function (subprogram with code) holding ``link_address``."""
        if self.table is not None:
            return self._from_table(
                lambda table: table.function_at(link_address),
                lambda: self.function_at(link_address),
            )
        cu_offset = self.cu_for(link_address)
        if cu_offset is None:
            return None
        return self.cu_data(cu_offset).function_extent(link_address)

    def function_lines(self, link_address: int) -> FunctionLines | None:
        """The source lines the DWARF function holding ``link_address`` spans in its own file
        (:meth:`CuData.function_lines`)."""
        if self.table is not None:
            return self._from_table(
                lambda table: table.function_lines(link_address),
                lambda: self.function_lines(link_address),
            )
        cu_offset = self.cu_for(link_address)
        if cu_offset is None:
            return None
        return self.cu_data(cu_offset).function_lines(link_address)

    def function_ranges(self, link_address: int) -> tuple[tuple[int, int], ...]:
        """[low, high) ranges of the DWARF function holding ``link_address`` (its hot and
        cold parts for gcc's DW_AT_ranges functions); () when no function holds it."""
        extent = self.function_at(link_address)
        return extent.ranges if extent is not None else ()

    def functions(self, cu_offset: CuKey) -> list[FunctionExtent]:
        if self.table is not None:
            return self._from_table(
                lambda table: table.unit(cu_offset).functions(),
                lambda: self.functions(cu_offset),
            )
        return self.cu_data(cu_offset).functions()

    def unit_files(self, link_addresses: Sequence[int]) -> list[str | None]:
        """The source file each address was compiled in, relative to the kernel tree: its
        unit's ``DW_AT_name`` (same-named statics differ by unit: 17 copies of ``jhash``
        declare include/linux/jhash.h and live in kernel/bpf/hashtab.c, lib/rhashtable.c,
        ...); for gcc LTO's ``<artificial>`` units the function's ``DW_AT_decl_file``. None:
        no unit (assembly without DWARF)."""
        found = [self.compile_unit(address) for address in link_addresses]
        units = {unit.offset: unit for unit in found if unit is not None}
        # One source root for the whole build (ltosyms.dwarf.paths: the prefix before /arch/
        # or /include/linux/), recognized from all unit names together, plus each
        # compilation dir.
        names = [unit.name for unit in units.values()]
        roots: set[str] = set()
        for comp_dir in {unit.comp_dir for unit in units.values()}:
            roots.update(source_roots(comp_dir, names))
        ordered = tuple(sorted(roots, key=len, reverse=True))
        files: list[str | None] = []
        for address, unit in zip(link_addresses, found, strict=True):
            name = unit.name if unit is not None else None
            if name is not None and name.startswith("<artificial>"):
                extent = self.function_at(address)
                name = extent.decl_file if extent is not None else None
            files.append(relative_path(name, ordered))
        return files

    def compile_unit(self, link_address: int) -> CompileUnit | None:
        """The compilation unit whose code holds ``link_address``: its name and compilation
        directory, from its top DIE alone (None: no unit claims the address)."""
        if self.table is not None:
            return self._from_table(
                lambda table: table.compile_unit_at(link_address),
                lambda: self.compile_unit(link_address),
            )
        cu_offset = self.cu_for(link_address)
        if cu_offset is None:
            return None
        unit = self._compile_units.get(cu_offset)
        if unit is None:
            unit = self.parser.compile_unit(cu_offset)
        self._compile_units[cu_offset] = unit
        return unit
