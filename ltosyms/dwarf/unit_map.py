"""The address -> unit map of an image.

gcc emits ``.debug_aranges`` for every unit with code (Debian: 5,921 ranges for 2,123 of its
2,172 units, read in milliseconds). clang emits it only for assembly units, so every other
unit's top DIE is read for its DW_AT_ranges / DW_AT_low_pc+DW_AT_high_pc (DOMAIN §7): that
touches each unit once (the header, one abbreviation, the top DIE), which is why the map is
worth keeping in the index.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ltosyms.dwarf import forms as F

if TYPE_CHECKING:
    from ltosyms.dwarf.info import DieReader

log = logging.getLogger(__name__)

_CODE_UNITS = (F.UT_COMPILE, F.UT_PARTIAL)


@dataclass(frozen=True, slots=True)
class CuMap:
    """Code ranges sorted by start, each with the .debug_info offset of its unit."""

    starts: array[int]
    ends: array[int]
    units: array[int]
    unit_count: int  # units in .debug_info (with or without code)

    def unit_at(self, link_address: int) -> int | None:
        position = bisect_right(self.starts, link_address) - 1
        # Ranges of different units may touch but should not overlap; look back a few entries
        # in case a zero-length or nested range sorts in between.
        for candidate in range(position, max(position - 4, -1), -1):
            if link_address < self.ends[candidate]:
                return self.units[candidate]
        return None

    @classmethod
    def empty(cls) -> CuMap:
        return cls(array("Q"), array("Q"), array("Q"), 0)

    def unit_offsets(self) -> list[int]:
        """Units with code, in .debug_info order."""
        return sorted(set(self.units))


def build_cu_map(reader: DieReader) -> CuMap:
    # The parsers load with the first map built, not with this module: a decode served from
    # the index only reads stored maps.
    from ltosyms.dwarf.build import unit_code_ranges
    from ltosyms.dwarf.ranges import read_aranges

    """Aranges where present; the top DIE of every unit that aranges does not list."""
    sections = reader.sections
    lowest, highest = sections.lowest_address, sections.highest_address
    aranges = read_aranges(sections)
    entries = [
        (start, end, unit) for start, end, unit in aranges if lowest <= start < end <= highest
    ]
    covered = {unit for _, _, unit in aranges}
    offsets = reader.index.offsets
    for unit_offset in offsets:
        if unit_offset in covered:
            continue
        header = reader.header(unit_offset)
        if header.unit_type not in _CODE_UNITS:
            continue
        unit = reader.unit(unit_offset)
        if unit.top_tag not in (F.TAG_COMPILE_UNIT, F.TAG_PARTIAL_UNIT):
            continue
        for start, end in unit_code_ranges(reader, unit):
            entries.append((start, end, unit_offset))
    entries.sort()
    log.debug(
        "unit map: %d ranges, %d units, %d from aranges", len(entries), len(offsets), len(covered)
    )
    return CuMap(
        array("Q", [e[0] for e in entries]),
        array("Q", [e[1] for e in entries]),
        array("Q", [e[2] for e in entries]),
        len(offsets),
    )
