"""Address ranges: DW_AT_ranges lists (DWARF 5 ``.debug_rnglists``, DWARF 2-4 ``.debug_ranges``)
and the ``.debug_aranges`` address -> unit table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.forms import read_uleb
from ltosyms.dwarf.sections import DwarfSections
from ltosyms.errors import DwarfError

Range = tuple[int, int]


class RangeReader:
    """Decodes the range lists of one unit (its base address and rnglists base)."""

    def __init__(
        self,
        sections: DwarfSections,
        *,
        version: int,
        address_size: int,
        offset_size: int,
        base_address: int,
        rnglists_base: int | None,
        addrx: Callable[[int], int | None],
    ) -> None:
        self.version = version
        self.address_size = address_size
        self.offset_size = offset_size
        self.base_address = base_address
        self.rnglists_base = rnglists_base
        self.addrx = addrx
        self.endian = sections.endian
        rnglists = sections.get(".debug_rnglists")
        ranges = sections.get(".debug_ranges")
        self.rnglists = rnglists.whole() if rnglists is not None else None
        self.ranges = ranges.whole() if ranges is not None else None
        self._address = struct.Struct(self.endian + ("Q" if address_size == 8 else "I"))
        self._offset = struct.Struct(self.endian + ("I" if offset_size == 4 else "Q"))

    def ranges_of(self, value: int, is_index: bool) -> list[Range]:
        """The ranges of a DW_AT_ranges value (a section offset, or a DW_FORM_rnglistx index)."""
        try:
            if self.version >= 5:
                if self.rnglists is None:
                    raise DwarfError("DW_AT_ranges without a .debug_rnglists section")
                if is_index:
                    if self.rnglists_base is None:
                        raise DwarfError("DW_FORM_rnglistx in a unit without DW_AT_rnglists_base")
                    (relative,) = self._offset.unpack_from(
                        self.rnglists, self.rnglists_base + value * self.offset_size
                    )
                    value = self.rnglists_base + relative
                return self._decode_rnglist(self.rnglists, value)
            if self.ranges is None:
                raise DwarfError("DW_AT_ranges without a .debug_ranges section")
            return self._decode_ranges(self.ranges, value)
        except (IndexError, struct.error, OverflowError):
            # A read past the section (OverflowError: an offset too large to read at all).
            raise DwarfError(f"range list at {value:#x} runs past its section") from None

    def _decode_rnglist(self, data: bytes, position: int) -> list[Range]:
        # DWARF 5 §2.17.3: entries until DW_RLE_end_of_list; offset pairs are relative to the
        # last base address entry, initially the unit's DW_AT_low_pc.
        address = self._address.unpack_from
        size = self.address_size
        base = self.base_address
        addrx = self.addrx
        result: list[Range] = []
        while True:
            kind = data[position]
            position += 1
            if kind == F.RLE_OFFSET_PAIR:
                start, position = read_uleb(data, position)
                end, position = read_uleb(data, position)
                result.append((base + start, base + end))
            elif kind == F.RLE_END_OF_LIST:
                return result
            elif kind == F.RLE_BASE_ADDRESS:
                (base,) = address(data, position)
                position += size
            elif kind == F.RLE_START_END:
                start, end = address(data, position)[0], address(data, position + size)[0]
                position += 2 * size
                result.append((start, end))
            elif kind == F.RLE_START_LENGTH:
                (start,) = address(data, position)
                length, position = read_uleb(data, position + size)
                result.append((start, start + length))
            elif kind == F.RLE_BASE_ADDRESSX:
                index, position = read_uleb(data, position)
                base = addrx(index) or 0
            elif kind == F.RLE_STARTX_ENDX:
                first, position = read_uleb(data, position)
                second, position = read_uleb(data, position)
                result.append((addrx(first) or 0, addrx(second) or 0))
            elif kind == F.RLE_STARTX_LENGTH:
                first, position = read_uleb(data, position)
                length, position = read_uleb(data, position)
                start = addrx(first) or 0
                result.append((start, start + length))
            else:
                raise DwarfError(f".debug_rnglists: unknown entry kind {kind:#x}")

    def _decode_ranges(self, data: bytes, position: int) -> list[Range]:
        # DWARF 4 §2.17.3: pairs of addresses relative to the base; (0, 0) ends the list and
        # (max, addr) selects a new base.
        size = self.address_size
        largest = (1 << (8 * size)) - 1
        address = self._address.unpack_from
        base = self.base_address
        result: list[Range] = []
        while True:
            start, end = address(data, position)[0], address(data, position + size)[0]
            position += 2 * size
            if start == 0 and end == 0:
                return result
            if start == largest:
                base = end
                continue
            result.append((base + start, base + end))


def read_aranges(sections: DwarfSections) -> list[tuple[int, int, int]]:
    """Every (start, end, unit offset) of ``.debug_aranges`` (DWARF 5 §6.1.2)."""
    section = sections.get(".debug_aranges")
    if section is None:
        return []
    data = section.read(0, section.size)
    endian = sections.endian
    result: list[tuple[int, int, int]] = []
    offset = 0
    try:
        while offset + 4 <= len(data):
            (length,) = struct.unpack_from(endian + "I", data, offset)
            position = offset + 4
            offset_size = 4
            if length == 0xFFFFFFFF:
                (length,) = struct.unpack_from(endian + "Q", data, position)
                position += 8
                offset_size = 8
            end = position + length
            (_version,) = struct.unpack_from(endian + "H", data, position)
            (unit_offset,) = struct.unpack_from(
                endian + ("I" if offset_size == 4 else "Q"), data, position + 2
            )
            position += 2 + offset_size
            address_size, segment_size = data[position], data[position + 1]
            position += 2
            if segment_size or address_size not in (4, 8):
                offset = end
                continue
            # Tuples start at a multiple of twice the address size from the set's start.
            tuple_size = 2 * address_size
            header = position - offset
            position = offset + (-(-header // tuple_size) * tuple_size)
            fmt = endian + ("QQ" if address_size == 8 else "II")
            count = (end - position) // tuple_size
            for start, length_ in struct.iter_unpack(
                fmt, data[position : position + count * tuple_size]
            ):
                if start == 0 and length_ == 0:
                    break
                if length_:
                    result.append((start, start + length_, unit_offset))
            offset = end
    except (struct.error, IndexError):
        raise DwarfError(".debug_aranges is truncated") from None
    return result
