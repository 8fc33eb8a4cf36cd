"""Parse one image's DWARF into what the resolver and the index keep.

:class:`UnitParser` is the one place the parsers are driven from: the address -> unit map
(:mod:`ltosyms.dwarf.unit_map`), one unit's tables (:mod:`ltosyms.dwarf.build`), a unit's name,
the whole image's address table (:mod:`ltosyms.dwarf.address_table`).
Its errors name the image: a decoder's :class:`~ltosyms.errors.DwarfError` says what is wrong
where inside the DWARF, this adds whose DWARF it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.address_table import AddressTable, AddressTableBuilder
from ltosyms.dwarf.build import build_cu_data
from ltosyms.dwarf.info import DieReader
from ltosyms.dwarf.sections import DwarfSections
from ltosyms.dwarf.unit_map import CuMap, build_cu_map
from ltosyms.dwarf.unit_records import CompileUnit
from ltosyms.dwarf.unit_tables import CuData
from ltosyms.errors import DwarfError

T = TypeVar("T")


class UnitParser:
    """The units of one image's DWARF, parsed on request (nothing is kept but the unit map
    and the reader's caches: a worker parsing a whole vmlinux must not hold every unit)."""

    def __init__(self, sections: DwarfSections) -> None:
        self.sections = sections
        self.reader = DieReader(sections)
        self._unit_map: CuMap | None = None

    def unit_map(self) -> CuMap:
        """Code ranges -> unit, from ``.debug_aranges`` and the top DIEs (built once)."""
        if self._unit_map is None:
            self._unit_map = self._translated(lambda: build_cu_map(self.reader))
        return self._unit_map

    def unit(self, cu_offset: int) -> CuData:
        """Everything the resolver keeps from the unit at ``cu_offset``."""
        return self._translated(lambda: build_cu_data(self.reader, cu_offset))

    def address_table(self, image_key: str) -> AddressTable:
        """Every unit with code, parsed here one after the other, in one :class:`AddressTable`
        (an index build parses the units of a vmlinux in worker processes and hands them to an
        :class:`AddressTableBuilder` instead)."""
        builder = AddressTableBuilder(image_key)
        cu_map = self.unit_map()
        for cu_offset in cu_map.unit_offsets():
            builder.add(self.unit(cu_offset))
        return builder.table(cu_map)

    def compile_unit(self, cu_offset: int) -> CompileUnit:
        """The unit's name and compilation directory (its top DIE only is read)."""

        def read() -> CompileUnit:
            unit = self.reader.unit(cu_offset)
            return CompileUnit(
                offset=cu_offset,
                name=unit.top_string(F.AT_NAME),
                comp_dir=unit.top_string(F.AT_COMP_DIR),
            )

        return self._translated(read)

    def _translated(self, work: Callable[[], T]) -> T:
        try:
            return work()
        except DwarfError as error:
            raise DwarfError(f"{self.sections.name}: {error}") from None
