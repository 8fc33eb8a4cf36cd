"""What the DWARF layer answers of a unit itself: its compile unit, and the function holding
an address.

Resolving asks for these; a decode served from stored frames never makes one, and so does not
load them (the records frames carry are in :mod:`ltosyms.dwarf.records`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionExtent:
    """The DWARF function (DW_TAG_subprogram with code) that holds an address."""

    name: str | None
    ranges: tuple[tuple[int, int], ...]  # [low, high) link addresses, entry range first
    entry_address: int  # DW_AT_low_pc, or the start of the first range
    decl_file: str | None  # source-relative
    decl_line: int | None
    cu_offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CompileUnit:
    """A compilation unit as its top DIE names it (DWARF 5 §3.1.1)."""

    offset: int  # .debug_info offset of the unit header: names the unit within one build
    name: str | None  # DW_AT_name: the primary source file, as the compiler was given it
    comp_dir: str | None  # DW_AT_comp_dir
