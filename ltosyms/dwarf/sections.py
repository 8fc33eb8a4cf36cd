"""The ``.debug_*`` sections of one image, as byte buffers the decoders slice.

For a vmlinux every section is a window into the memory-mapped file: nothing is copied until a
decoder slices one unit out (a Debian ``.debug_info`` is 164 MB; a lookup needs a few hundred
KB of it). For a module the sections are small; they are copied, decompressed if needed and
relocated (:mod:`ltosyms.elf.debug_sections`).
"""

from __future__ import annotations

import mmap
import os
import struct
import weakref
import zlib
from functools import cached_property
from typing import Any

from ltosyms.dwarf.forms import DwarfError
from ltosyms.elf.debug_sections import relocated_bytes, symbol_values
from ltosyms.elf.image import KernelImage, Section

SHF_COMPRESSED = 0x800
ELFCOMPRESS_ZLIB = 1
ELFCOMPRESS_ZSTD = 2

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


class SectionBuffer:
    """One debug section: ``data[start:start + size]`` holds its bytes."""

    __slots__ = ("_file", "_whole", "data", "name", "size", "start")

    def __init__(
        self, name: str, data: Any, start: int, size: int, file: _File | None = None
    ) -> None:
        self.name = name
        self.data = data  # mmap.mmap or bytes: both slice, index and find the same way
        self.start = start
        self.size = size
        self._file = file  # the mapped file, for reads that should not touch the map
        self._whole: bytes | None = data if isinstance(data, bytes) and start == 0 else None

    def peek(self, offset: int, length: int) -> bytes:
        """A few bytes read from the file itself when the section is mapped: touching the map
        at thousands of scattered places (every unit header of a 164 MB .debug_info) would
        make the kernel map ~64 KB around each, a hundred MB of resident pages for nothing."""
        if self._file is None:
            return self.read_to_end(offset, length)
        if offset < 0 or offset >= self.size:
            raise DwarfError(f"{self.name}: offset {offset:#x} outside the section")
        return self._file.pread(self.start + offset, min(length, self.size - offset))

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


class _File:
    """A read-only descriptor of an image file, closed when the sections go away."""

    def __init__(self, path: str) -> None:
        self.descriptor = os.open(path, os.O_RDONLY)
        self._closer = weakref.finalize(self, os.close, self.descriptor)

    def pread(self, position: int, length: int) -> bytes:
        return os.pread(self.descriptor, length, position)


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


class DwarfSections:
    """Every debug section the resolver reads, by name; absent ones are ``None``."""

    def __init__(
        self,
        sections: dict[str, SectionBuffer],
        *,
        path: str,
        little_endian: bool = True,
        lowest_address: int = 0,
        highest_address: int = 1 << 64,
    ) -> None:
        """``lowest_address``/``highest_address`` bound the image's code: ranges and line
        sequences starting outside belong to code the linker discarded (their DWARF keeps a
        tombstone such as 0, -1 or a section offset) and are dropped."""
        self.path = path
        self.little_endian = little_endian
        self.endian = "<" if little_endian else ">"
        self.lowest_address = lowest_address
        self.highest_address = highest_address
        self._sections = sections

    @classmethod
    def from_image(cls, image: KernelImage) -> DwarfSections:
        """The debug sections of ``image``: windows into the mapped file for a vmlinux,
        decompressed and relocated copies for a module."""
        # Not all allocated sections bound the code: x86-64 links .data..percpu at 0.
        code = [s for s in image.sections if s.is_alloc and s.is_exec and s.size]
        symbols: list[int] | None = None
        sections: dict[str, SectionBuffer] = {}
        file: _File | None = None
        for name in DEBUG_SECTIONS:
            section = image.get_section(name)
            if section is None or not section.has_bits or not section.size:
                continue
            compressed = bool(section.flags & SHF_COMPRESSED)
            if not image.is_module and not compressed:
                if file is None and isinstance(image.data, mmap.mmap):
                    try:
                        file = _File(str(image.path))
                    except OSError:
                        file = None
                sections[name] = SectionBuffer(
                    name, image.data, section.file_offset, section.size, file
                )
                continue
            contents = image.section_bytes(section)
            if compressed:
                contents = _decompress(image, section, contents)
            if image.is_module:
                if symbols is None:
                    symbols = symbol_values(image)
                contents = relocated_bytes(image, section, contents, symbols)
            sections[name] = SectionBuffer(name, contents, 0, len(contents))
        return cls(
            sections,
            path=str(image.path),
            little_endian=image.little_endian,
            lowest_address=min((s.link_address for s in code), default=0),
            highest_address=max((s.end_address for s in code), default=1 << 64),
        )

    @classmethod
    def from_bytes(
        cls,
        contents: dict[str, bytes],
        *,
        path: str = "<memory>",
        little_endian: bool = True,
        lowest_address: int = 0,
        highest_address: int = 1 << 64,
    ) -> DwarfSections:
        """Sections given as bytes (DWARF built in memory, or extracted some other way)."""
        return cls(
            {name: SectionBuffer(name, data, 0, len(data)) for name, data in contents.items()},
            path=path,
            little_endian=little_endian,
            lowest_address=lowest_address,
            highest_address=highest_address,
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
            raise DwarfError(f"{self.path}: has no {name} section")
        return section

    def has(self, name: str) -> bool:
        return name in self._sections


def _decompress(image: KernelImage, section: Section, contents: bytes) -> bytes:
    # Elf64_Chdr (gABI "Section Compression"): ch_type u32, reserved u32, ch_size u64, align u64.
    endian = "<" if image.little_endian else ">"
    try:
        kind, _reserved, size, _align = struct.unpack_from(endian + "IIQQ", contents)
    except struct.error:
        raise DwarfError(f"{image.path}: {section.name}: truncated compression header") from None
    payload = contents[24:]
    if kind == ELFCOMPRESS_ZLIB:
        try:
            data = zlib.decompress(payload)
        except zlib.error as error:
            raise DwarfError(f"{image.path}: {section.name}: {error}") from None
    elif kind == ELFCOMPRESS_ZSTD:
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            raise DwarfError(
                f"{image.path}: {section.name} is zstd-compressed; install 'zstandard'"
            ) from None
        try:
            data = bytes(zstandard.ZstdDecompressor().decompress(payload, max_output_size=size))
        except zstandard.ZstdError as error:
            raise DwarfError(f"{image.path}: {section.name}: {error}") from None
    else:
        raise DwarfError(f"{image.path}: {section.name}: unknown compression type {kind}")
    if len(data) != size:
        raise DwarfError(f"{image.path}: {section.name}: decompressed size mismatch")
    return data
