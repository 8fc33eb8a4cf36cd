"""The kernel's bug table: where each ``WARN*()``/``BUG*()`` traps, and the FILE:LINE it prints.

Every ``WARN_ON``/``BUG_ON`` compiles to a trap (x86 ``ud2``, arm64 ``brk #0x800``) plus a
``struct bug_entry`` in ``__bug_table`` (include/asm-generic/bug.h, 6.1 and 6.12): the trap's
address and, with ``CONFIG_DEBUG_BUGVERBOSE``, ``__FILE__`` and ``__LINE__`` of the macro.
``report_bug()`` finds the entry by the trapping address (lib/bug.c ``find_bug``: vmlinux's
table, then each module's own, taken at load by ``module_bug_finalize``) and ``__warn()``
prints ``WARNING: ... at FILE:LINE``. That line is where the developer wrote the check; DWARF's
line for the trap may be a neighbour or 0 (docs/kernel-facts.md#bug-table).

Layouts (x86-64 and arm64 select ``GENERIC_BUG_RELATIVE_POINTERS``): ``s32 bug_addr_disp;
s32 file_disp; u16 line; u16 flags`` (12 bytes), or without BUGVERBOSE ``s32 bug_addr_disp;
u16 flags`` (8). Architectures with absolute pointers use ``unsigned long`` and ``const char *``
(24 or 16 bytes). The layout is not recorded in the image: it is the one whose every entry
points into code (and, with files, whose file pointers point at allocated bytes). In a module
the displacements are relocations (``R_X86_64_PC32``/``R_AARCH64_PREL32`` against the
function's section and ``.rodata``), applied here as the loader would.
"""

from __future__ import annotations

import logging
import struct
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ltosyms.dwarf import SourceLocation
from ltosyms.elf.debug_sections import relocated_bytes, symbol_values
from ltosyms.elf.image import KernelImage, Section
from ltosyms.errors import InputError

log = logging.getLogger(__name__)

BUGFLAG_WARNING = 1 << 0  # include/asm-generic/bug.h
_MAX_FILE_NAME = 4096  # PATH_MAX: no __FILE__ is longer
_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BugEntry:
    """One ``struct bug_entry``: the trap at ``link_address`` and what the kernel prints."""

    link_address: int  # the ud2 / brk #0x800
    file: str | None  # None without CONFIG_DEBUG_BUGVERBOSE
    line: int | None
    flags: int

    @property
    def is_warning(self) -> bool:
        return bool(self.flags & BUGFLAG_WARNING)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Layout:
    """One ``struct bug_entry`` layout: its size and which fields it has."""

    size: int
    relative: bool
    verbose: bool


# Tried in this order: the kernels we decode use the first one.
_LAYOUTS = (
    _Layout(size=12, relative=True, verbose=True),
    _Layout(size=8, relative=True, verbose=False),
    _Layout(size=24, relative=False, verbose=True),
    _Layout(size=16, relative=False, verbose=False),
)
_PROBED_ENTRIES = 256


class BugTable:
    """The entries of one image's ``__bug_table``, by trap address. An image without the
    section (or whose table fits no layout) has an empty table."""

    def __init__(self, image: KernelImage) -> None:
        self._entries: dict[int, tuple[int, int | None, int]] = {}  # addr -> file, line, flags
        self._image = image
        self._files: dict[int, str | None] = {}
        section = image.get_section("__bug_table")
        if section is None or not section.has_bits or not section.size:
            return
        data = image.section_bytes(section)
        if image.is_module:
            try:
                data = relocated_bytes(image, section, data, symbol_values(image))
            except InputError as error:
                # Damaged relocations: no table, the frames keep DWARF's lines.
                log.warning("%s", error)
                return
        layout = _layout_of(image, section, data)
        if layout is not None:
            self._entries = _read(image, section, data, layout)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[BugEntry]:
        """Every entry, by trap address."""
        for link_address in sorted(self._entries):
            entry = self.at(link_address)
            assert entry is not None
            yield entry

    def at(self, link_address: int) -> BugEntry | None:
        """The entry whose trap is at ``link_address``."""
        found = self._entries.get(link_address)
        if found is None:
            return None
        file_address, line, flags = found
        return BugEntry(
            link_address=link_address, file=self._file(file_address), line=line, flags=flags
        )

    def _file(self, link_address: int) -> str | None:
        if link_address not in self._files:
            self._files[link_address] = _string_at(self._image, link_address)
        return self._files[link_address]


def _read(
    image: KernelImage, section: Section, data: bytes, layout: _Layout
) -> dict[int, tuple[int, int | None, int]]:
    entries: dict[int, tuple[int, int | None, int]] = {}
    for address, file_address, line, flags in _entries(image, section, data, layout):
        # find_bug() takes the first entry for an address: so do we.
        entries.setdefault(address, (file_address, line, flags))
    return entries


def _entries(
    image: KernelImage, section: Section, data: bytes, layout: _Layout
) -> list[tuple[int, int, int | None, int]]:
    """(trap address, file name address, line, flags) of every entry of ``data``, which
    starts at the section's first byte."""
    endian = "<" if image.little_endian else ">"
    count = len(data) // layout.size
    data = data[: count * layout.size]
    if layout.relative and layout.verbose:
        rows = [
            (address, file + 4, line, flags)
            for address, file, line, flags in struct.iter_unpack(endian + "iiHH", data)
        ]
    elif layout.relative:
        rows = [(a, 0, None, flags) for a, flags, _pad in struct.iter_unpack(endian + "iHH", data)]
    elif layout.verbose:
        rows = [
            (address, file, line, flags)
            for address, file, line, flags, _pad in struct.iter_unpack(endian + "QQHHI", data)
        ]
    else:
        rows = [
            (address, 0, None, flags)
            for address, flags, _pad1, _pad2 in struct.iter_unpack(endian + "QHHI", data)
        ]
    if not layout.relative:
        return rows
    # lib/bug.c bug_addr() and bug_get_file_line(): each displacement is from its own field.
    base = section.link_address
    return [
        ((base + n * layout.size + a) & _MASK, (base + n * layout.size + f) & _MASK, line, flags)
        for n, (a, f, line, flags) in enumerate(rows)
    ]


def _layout_of(image: KernelImage, section: Section, data: bytes) -> _Layout | None:
    """The layout whose first entries all point into code (and at bytes, for file names)."""
    for layout in _LAYOUTS:
        if len(data) % layout.size:
            continue
        probe = data[: _PROBED_ENTRIES * layout.size]
        if all(
            _plausible(image, layout, entry) for entry in _entries(image, section, probe, layout)
        ):
            return layout
    return None


def _plausible(
    image: KernelImage, layout: _Layout, entry: tuple[int, int, int | None, int]
) -> bool:
    code = image.section_at(entry[0])
    if code is None or not code.is_exec:
        return False
    return not layout.verbose or image.section_at(entry[1]) is not None


def _string_at(image: KernelImage, link_address: int) -> str | None:
    try:
        raw = image.read(link_address, _MAX_FILE_NAME)
    except InputError:
        return None
    end = raw.find(b"\0")
    return raw[: end if end >= 0 else len(raw)].decode("utf-8", "replace") or None


def with_bug_line(
    entry: BugEntry, locations: tuple[SourceLocation, ...]
) -> tuple[tuple[SourceLocation, ...], str | None]:
    """The inline chain of a trap listed in the bug table, its innermost entry at the table's
    FILE:LINE (what the kernel printed), and a note with DWARF's position when it differs.

    The ``WARN_ON``/``BUG`` macro expands in the innermost function (an inline helper's
    ``WARN_ON`` carries the helper's ``__FILE__``): the function stays DWARF's, the position
    is the macro's. Without ``CONFIG_DEBUG_BUGVERBOSE`` the table has no line: unchanged."""
    if entry.file is None or entry.line is None:
        return locations, None
    if not locations:
        inner = SourceLocation(
            function=None,
            file=entry.file,
            full_path=entry.file,
            line=entry.line,
            column=None,
            inlined=False,
        )
        return (inner,), "line from the bug table; DWARF has no line here"
    inner = locations[0]
    if inner.line == entry.line and _same_file(inner.file, entry.file):
        return locations, None
    dwarf = f"{inner.file or '??'}:{inner.line if inner.line is not None else '?'}"
    full_path = inner.full_path if _same_file(inner.file, entry.file) else entry.file
    moved = replace(inner, file=entry.file, full_path=full_path, line=entry.line, column=None)
    note = f"line from the bug table (as the kernel prints it); DWARF: {dwarf}"
    return (moved, *locations[1:]), note


def _same_file(dwarf_file: str | None, bug_file: str) -> bool:
    """DWARF's file is relative to the source tree; ``__FILE__`` may be absolute (modules
    built outside the tree)."""
    if dwarf_file is None:
        return False
    return bug_file == dwarf_file or bug_file.endswith("/" + dwarf_file)


_cache: weakref.WeakKeyDictionary[KernelImage, BugTable] = weakref.WeakKeyDictionary()


def is_trap(image: KernelImage, link_address: int) -> bool:
    """Whether the instruction at ``link_address`` is a trap a bug table entry can name: x86
    ``ud2`` (``0f 0b``; 6.12 also knows ``ud1``, ``0f b9``), arm64 ``brk`` (``BUG_BRK_IMM``
    0x800 for BUG/WARN). Checked before the table is read: most exact IPs are no trap."""
    try:
        data = image.read(link_address, 4)
    except InputError:
        return False
    if image.machine == "aarch64":
        word = int.from_bytes(data, "little" if image.little_endian else "big")
        return len(data) == 4 and word & 0xFFE0001F == 0xD4200000
    return len(data) >= 2 and data[0] == 0x0F and data[1] in (0x0B, 0xB9)


def bug_table(image: KernelImage) -> BugTable:
    """The image's bug table, read once per open image."""
    table = _cache.get(image)
    if table is None:
        table = _cache[image] = BugTable(image)
    return table
