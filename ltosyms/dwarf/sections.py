"""The ``.debug_*`` sections the DWARF layer reads, as byte buffers the decoders slice.

The layer does not know where the bytes come from: like pyelftools' ``DWARFInfo``, which takes
a ``DwarfConfig`` and section streams, it takes :class:`SectionBuffer` objects and a
:class:`DwarfConfig`. The ELF side (:mod:`ltosyms.elf.debug_sections`) makes them: windows into
the memory-mapped file for a vmlinux (a Debian ``.debug_info`` is 164 MB, a lookup needs a few
hundred KB of it), relocated copies for a module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from ltosyms.errors import DwarfError

# Every section a decoder reads (DWARF 5 §7 and appendix B; .debug_ranges is DWARF 2-4's).
DEBUG_SECTIONS = (
    ".debug_info",
    ".debug_abbrev",
    ".debug_line",
    ".debug_str",
    ".debug_line_str",
    ".debug_str_offsets",
    ".debug_addr",
    ".debug_ranges",
    ".debug_rnglists",
    ".debug_aranges",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DwarfConfig:
    """What the decoders must know about the image the sections come from.

    ``lowest_address``/``highest_address`` bound the image's code: ranges and line sequences
    starting outside belong to code the linker discarded (their DWARF keeps a tombstone such
    as 0, -1 or a section offset) and are dropped."""

    name: str  # how messages name the image (its path)
    little_endian: bool = True
    lowest_address: int = 0
    highest_address: int = 1 << 64


class SectionBuffer:
    """One debug section: ``data[start:start + size]`` holds its bytes.

    ``pread(position, length)``, when given, reads bytes of ``data`` without touching it: for
    a memory-mapped file, the file itself (see :meth:`peek`)."""

    __slots__ = ("_pread", "_whole", "data", "name", "size", "start")

    def __init__(
        self,
        name: str,
        data: Any,
        start: int,
        size: int,
        pread: Callable[[int, int], bytes] | None = None,
    ) -> None:
        self.name = name
        self.data = data  # mmap.mmap or bytes: both slice, index and find the same way
        self.start = start
        self.size = size
        self._pread = pread
        self._whole: bytes | None = data if isinstance(data, bytes) and start == 0 else None

    def peek(self, offset: int, length: int) -> bytes:
        """A few bytes read from the file itself when the section is mapped: touching the map
        at thousands of scattered places (every unit header of a 164 MB .debug_info) would
        make the kernel map ~64 KB around each, a hundred MB of resident pages for nothing."""
        if self._pread is None:
            return self.read_to_end(offset, length)
        if offset < 0 or offset >= self.size:
            raise DwarfError(f"{self.name}: offset {offset:#x} outside the section")
        return self._pread(self.start + offset, min(length, self.size - offset))

    def whole(self) -> bytes:
        """The section's bytes as one object (copied once from the map; for the small
        sections read entry by entry: strings, string offsets, addresses, range lists)."""
        if self._whole is None:
            self._whole = bytes(self.data[self.start : self.start + self.size])
        return self._whole

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise DwarfError(
                f"{self.name}: read of {length} bytes at {offset:#x} outside the section "
                f"({self.size:#x} bytes)"
            )
        start = self.start + offset
        return bytes(self.data[start : start + length])

    def read_to_end(self, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from ``offset``, cut at the end of the section."""
        if offset < 0 or offset >= self.size:
            raise DwarfError(f"{self.name}: offset {offset:#x} outside the section")
        start = self.start + offset
        return bytes(self.data[start : min(start + limit, self.start + self.size)])


class StringTable:
    """NUL-terminated strings of ``.debug_str`` or ``.debug_line_str`` by offset, cached."""

    __slots__ = ("_cache", "_data", "name")

    def __init__(self, section: SectionBuffer | None) -> None:
        self.name = section.name if section is not None else "(absent string section)"
        self._data = section.whole() if section is not None else b""
        self._cache: dict[int, str] = {}

    def get(self, offset: int) -> str:
        text = self._cache.get(offset)
        if text is None:
            end = self._data.find(b"\0", offset)
            if end < 0 or offset < 0:
                raise DwarfError(f"{self.name}: no string at offset {offset:#x}")
            text = self._cache[offset] = self._data[offset:end].decode("utf-8", "replace")
        return text


class SectionSource(Protocol):
    """Where a resolver gets its sections: asked cheaply whether there is DWARF at all, opened
    (mapped, copied, relocated) only when a unit must be parsed."""

    @property
    def name(self) -> str: ...

    def has_dwarf(self) -> bool: ...

    def open(self) -> DwarfSections: ...


class DwarfSections:
    """Every debug section the decoders read, by name; absent ones are ``None``.

    It is a :class:`SectionSource` of its own (already open)."""

    def __init__(self, sections: Mapping[str, SectionBuffer], config: DwarfConfig) -> None:
        self.config = config
        self.name = config.name
        self.endian = "<" if config.little_endian else ">"
        self.lowest_address = config.lowest_address
        self.highest_address = config.highest_address
        self._sections = dict(sections)

    @classmethod
    def from_bytes(
        cls, contents: Mapping[str, bytes], config: DwarfConfig | None = None
    ) -> DwarfSections:
        """Sections given as bytes (DWARF built in memory, or extracted some other way)."""
        return cls(
            {name: SectionBuffer(name, data, 0, len(data)) for name, data in contents.items()},
            config or DwarfConfig(name="<memory>"),
        )

    def get(self, name: str) -> SectionBuffer | None:
        return self._sections.get(name)

    @cached_property
    def strings(self) -> StringTable:
        """``.debug_str`` (DW_FORM_strp, DW_FORM_strx through the string offsets)."""
        return StringTable(self._sections.get(".debug_str"))

    @cached_property
    def line_strings(self) -> StringTable:
        """``.debug_line_str`` (DW_FORM_line_strp)."""
        return StringTable(self._sections.get(".debug_line_str"))

    def require(self, name: str) -> SectionBuffer:
        section = self._sections.get(name)
        if section is None:
            raise DwarfError(f"{self.name}: has no {name} section")
        return section

    def has(self, name: str) -> bool:
        return name in self._sections

    # -- SectionSource ------------------------------------------------------------------------

    def has_dwarf(self) -> bool:
        return self.has(".debug_info") and self.has(".debug_abbrev")

    def open(self) -> DwarfSections:
        return self
