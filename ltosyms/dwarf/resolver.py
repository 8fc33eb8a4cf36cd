"""Link address -> source: the inline chain at an address, from the image's DWARF.

:class:`DwarfResolver` is the door. It is lazy by design (DOMAIN §7): the address -> unit map
comes from ``.debug_aranges`` (or, for clang, from each unit's top DIE), and only the units
that hold asked-for addresses are parsed, each once, into a :class:`CuData` (line rows and the
function/inline tree, :mod:`ltosyms.dwarf.build`). Every parsed unit, and the unit map, is
handed to a :class:`CuStore` as bytes; the on-disk index implements that store, so a later
run loads the unit instead of parsing DWARF, and never opens a debug section at all. Given the
image's address table (:mod:`ltosyms.dwarf.address_table`: every unit and the unit map in one
mapped buffer), the resolver answers from it alone, with the same lookups.

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
import marshal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ltosyms.dwarf.records import (
    CU_DATA_FORMAT,
    CU_MAP_FORMAT,
    CompileUnit,
    FunctionExtent,
    SourceLocation,
)
from ltosyms.dwarf.sections import SectionSource
from ltosyms.errors import CacheError, InputError
from ltosyms.stores import CuStore, DerivedStore

if TYPE_CHECKING:
    # The unit tables and the DWARF parsers are imported where a unit is loaded or parsed,
    # not with this module: a decode served from stored chains never loads them.
    from ltosyms.dwarf.address_table import AddressTable
    from ltosyms.dwarf.parser import UnitParser
    from ltosyms.dwarf.unit_map import CuMap
    from ltosyms.dwarf.unit_tables import CuData

log = logging.getLogger(__name__)

CuKey = int  # .debug_info offset of a unit header: names a unit within one build
CU_MAP_KEY = -1  # the store key of the address -> unit map
# Store kind of inline chains by address (derived facts of the index); bump on any change to
# SourceLocation or to how chains are made.
LOCATIONS_KIND = "locations/1"
# The formats of the stored blobs: an index written with other formats is not used.
CU_FORMAT = f"cudata-{CU_DATA_FORMAT}.cumap-{CU_MAP_FORMAT}"

# Names the outermost entry of a chain: (link address, within the symbol's size) -> name.
# llvm-symbolizer takes it from the ELF symbol table (ltosyms.elf.outer_names).
OuterName = Callable[[int, bool], "str | None"]


def _chain_to_bytes(chain: tuple[SourceLocation, ...]) -> bytes:
    return marshal.dumps(
        [
            (e.function, e.file, e.full_path, e.line, e.column, e.inlined, e.dwarf_function)
            for e in chain
        ]
    )


def _chain_from_bytes(data: bytes) -> tuple[SourceLocation, ...]:
    try:
        return tuple(
            SourceLocation(function, file, full_path, line, column, bool(inlined), dwarf)
            for function, file, full_path, line, column, inlined, dwarf in marshal.loads(data)
        )
    except (EOFError, TypeError, ValueError) as error:
        raise CacheError(f"stored chain is damaged ({error})") from None


class MemoryCuStore:
    """A :class:`CuStore` in a dict: keeps parsed units for the life of the process."""

    def __init__(self) -> None:
        self.records: dict[int, bytes] = {}

    def get(self, cu_offset: int) -> bytes | None:
        return self.records.get(cu_offset)

    def put(self, cu_offset: int, data: bytes) -> None:
        self.records[cu_offset] = data


class DwarfResolver:
    """Source locations for link addresses of one image (vmlinux or module)."""

    def __init__(
        self,
        sections: SectionSource,
        store: CuStore | None = None,
        outer_name: OuterName | None = None,
        table: AddressTable | None = None,
    ) -> None:
        """``sections`` are opened only when a unit or the unit map must be parsed.
        ``outer_name``, when given, names the outermost entry of each chain (the ELF symbol,
        as llvm-symbolizer does); chains are then also kept in the store, by address.
        ``table``, when given (the image's :class:`AddressTable`), answers every lookup: no
        unit is loaded or parsed, and chains are neither read from the store nor kept (a
        lookup in the table costs less than reading a stored chain, and a million addresses
        asked must not hold a million chains)."""
        self.sections = sections
        self.name = sections.name
        self.store: CuStore = store if store is not None else MemoryCuStore()
        self.outer_name = outer_name
        self.table = table
        self._parser: UnitParser | None = None
        self._cu_map: CuMap | None = table.cu_map if table is not None else None
        self._units: dict[int, CuData] = {}
        self._compile_units: dict[int, CompileUnit] = {}
        self._answers: dict[int, tuple[SourceLocation, ...]] = {}  # chains by address
        self._unsaved: list[tuple[str, bytes]] = []
        self.parsed_units = 0  # units decoded from DWARF by this resolver
        self.loaded_units = 0  # units loaded from the store

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
            from ltosyms.dwarf.unit_map import CuMap

            raw = self.store.get(CU_MAP_KEY)
            if raw is not None:
                try:
                    self._cu_map = CuMap.from_bytes(raw)
                except CacheError as error:
                    log.warning("%s: stored unit map discarded: %s", self.name, error)
            if self._cu_map is None:
                if not self.has_dwarf:
                    self._cu_map = CuMap.empty()
                else:
                    self._cu_map = self.parser.unit_map()
                    self.store.put(CU_MAP_KEY, self._cu_map.to_bytes())
        return self._cu_map

    def cu_for(self, link_address: int) -> CuKey | None:
        """The unit whose code holds ``link_address`` (None: no unit claims it)."""
        return self.cu_map.unit_at(link_address)

    def unit_offsets(self) -> list[CuKey]:
        """Every unit with code, in .debug_info order."""
        return self.cu_map.unit_offsets()

    def cu_data(self, cu_offset: CuKey) -> CuData:
        """The parsed unit: from memory, else from the store, else from DWARF (then stored)."""
        if self.table is not None:
            return self.table.unit(cu_offset)
        data = self._units.get(cu_offset)
        if data is not None:
            return data
        from ltosyms.dwarf.unit_tables import CuData

        raw = self.store.get(cu_offset)
        if raw is not None:
            try:
                data = CuData.from_bytes(raw)
                self.loaded_units += 1
            except CacheError as error:
                log.warning("%s: stored unit %#x discarded: %s", self.name, cu_offset, error)
        if data is None:
            data = self.parser.unit(cu_offset)
            self.parsed_units += 1
            self.store.put(cu_offset, data.to_bytes())
        self._units[cu_offset] = data
        return data

    # -- lookups -----------------------------------------------------------------------------

    def locations(self, link_address: int) -> tuple[SourceLocation, ...]:
        """The inline chain at ``link_address``, innermost first; () if no unit covers it.

        For a return address, pass the call site (or return address - 1), not the return
        address: the line after a call is not where the caller is (DOMAIN §3).

        With a store that keeps answers (the index) and the symbol table, the chain of an
        address asked before comes from the store without loading its unit; new chains are
        written by :meth:`save`."""
        if self.table is not None:
            return self.table.locations(link_address, self.outer_name)
        chain = self._answers.get(link_address)
        if chain is not None:
            return chain
        answers = self._answer_store()
        key = f"{link_address:x}"
        if answers is not None:
            stored = answers.get_derived(LOCATIONS_KIND, key)
            if stored is not None:
                try:
                    chain = self._answers[link_address] = _chain_from_bytes(stored)
                    return chain
                except CacheError as error:
                    log.debug("%s: stored chain at %s ignored: %s", self.name, key, error)
        cu_offset = self.cu_for(link_address)
        chain = (
            ()
            if cu_offset is None
            else self.cu_data(cu_offset).locations(link_address, self.outer_name)
        )
        self._answers[link_address] = chain
        if answers is not None:
            self._unsaved.append((key, _chain_to_bytes(chain)))
        return chain

    def _answer_store(self) -> DerivedStore | None:
        # Chains name the outermost entry from the symbol table: only then are they stored.
        if self.outer_name is None or not hasattr(self.store, "get_derived"):
            return None
        return self.store  # type: ignore[return-value]  # has the derived-facts methods

    def save(self) -> None:
        """Write the chains found since the last save to the store, in one transaction."""
        answers = self._answer_store()
        if answers is not None and self._unsaved:
            answers.put_derived(LOCATIONS_KIND, self._unsaved)
        self._unsaved = []

    def locations_many(
        self, link_addresses: Iterable[int]
    ) -> dict[int, tuple[SourceLocation, ...]]:
        """:meth:`locations` for many addresses, each unit parsed once."""
        if self.table is not None:
            return {a: self.table.locations(a, self.outer_name) for a in link_addresses}
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
        """Load stored units in one batch when the store can (the index's ``get_many``)."""
        from ltosyms.dwarf.unit_tables import CuData

        if self.table is not None:
            return
        get_many = getattr(self.store, "get_many", None)
        wanted = [offset for offset in cu_offsets if offset not in self._units]
        if get_many is None or len(wanted) < 2:
            return
        for cu_offset, raw in get_many(wanted).items():
            try:
                self._units[cu_offset] = CuData.from_bytes(raw)
                self.loaded_units += 1
            except CacheError as error:
                log.warning("%s: stored unit %#x discarded: %s", self.name, cu_offset, error)

    def function_at(self, link_address: int) -> FunctionExtent | None:
        """The DWARF function (subprogram with code) holding ``link_address``."""
        cu_offset = self.cu_for(link_address)
        if cu_offset is None:
            return None
        return self.cu_data(cu_offset).function_extent(link_address)

    def function_ranges(self, link_address: int) -> tuple[tuple[int, int], ...]:
        """[low, high) ranges of the DWARF function holding ``link_address`` (its hot and
        cold parts for gcc's DW_AT_ranges functions); () when no function holds it."""
        extent = self.function_at(link_address)
        return extent.ranges if extent is not None else ()

    def functions(self, cu_offset: CuKey) -> list[FunctionExtent]:
        return self.cu_data(cu_offset).functions()

    def compile_unit(self, link_address: int) -> CompileUnit | None:
        """The compilation unit whose code holds ``link_address``: its name and compilation
        directory, from its top DIE alone (None: no unit claims the address)."""
        cu_offset = self.cu_for(link_address)
        if cu_offset is None:
            return None
        unit = self._compile_units.get(cu_offset)
        if unit is None and self.table is not None:
            unit = self.table.compile_unit(cu_offset)
        if unit is None:
            unit = self.parser.compile_unit(cu_offset)
        self._compile_units[cu_offset] = unit
        return unit
