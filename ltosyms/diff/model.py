"""Records of a build-to-build diff: sections, symbol groups, their changes, rollups.

A *group* is what the diff compares: every symbol of one build that belongs to one function
(or one object) of the source, e.g. gcc's ``foo``, ``foo.cold`` and ``foo.constprop.0`` from
``kernel/foo.c``. Its identity is the base name of the symbols (suffix grammar, DOMAIN §1)
plus where the code came from (the DWARF compilation unit, else the ``STT_FILE`` symbol).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SectionClass(enum.Enum):
    """What ``size`` would call a section, with init code and data apart (freed after boot)."""

    TEXT = "text"
    RODATA = "rodata"
    DATA = "data"
    BSS = "bss"
    INIT = "init"
    DEBUG = "debug"
    OTHER = "other"

    @property
    def is_loaded(self) -> bool:
        """Sections that occupy memory in the running kernel (or until init is freed)."""
        return self not in (SectionClass.DEBUG, SectionClass.OTHER)


class SymbolKind(enum.Enum):
    FUNCTION = "function"
    OBJECT = "object"


class ChangeClass(enum.Enum):
    """Every BASE group falls in exactly one of the first seven; NEW-only groups are ``NEW``."""

    UNCHANGED = "unchanged"
    GROWN = "grown"
    SHRUNK = "shrunk"
    RENAMED = "renamed"  # only promotion suffixes or clone numbers differ
    SPECIALIZED = "specialized"  # NEW has clone kinds (.constprop, .isra, ...) BASE lacks
    DROPPED_INLINED = "dropped_inlined"  # no code of its own in NEW, inlined instances there
    DROPPED_REMOVED = "dropped_removed"  # no code and no inlined instance in NEW
    NEW = "new"


@dataclass(frozen=True, slots=True)
class SectionSize:
    """One row of ``size -A`` in either build (None: the build has no such section)."""

    name: str
    section_class: SectionClass
    base_size: int | None
    new_size: int | None

    @property
    def delta(self) -> int:
        return (self.new_size or 0) - (self.base_size or 0)


@dataclass(frozen=True, slots=True)
class ClassTotals:
    """Bytes of one section class, and how much of it named symbols account for.

    ``*_padding`` is what no sized symbol covers: alignment between functions, linker-script
    fill, unnamed tables (negative when symbols overlap).
    """

    section_class: SectionClass
    base_size: int
    new_size: int
    base_symbol_bytes: int
    new_symbol_bytes: int

    @property
    def delta(self) -> int:
        return self.new_size - self.base_size

    @property
    def base_padding(self) -> int:
        return self.base_size - self.base_symbol_bytes

    @property
    def new_padding(self) -> int:
        return self.new_size - self.new_symbol_bytes

    @property
    def symbol_delta(self) -> int:
        return self.new_symbol_bytes - self.base_symbol_bytes

    @property
    def padding_delta(self) -> int:
        return self.new_padding - self.base_padding


@dataclass(frozen=True, slots=True)
class SymbolGroup:
    """The symbols of one build that make up one function or object of the source."""

    kind: SymbolKind
    base_name: str
    names: tuple[str, ...]  # raw ELF names, the main symbol first, aliases included
    size: int  # ELF sizes of the group's distinct symbols
    link_address: int  # of the main symbol
    section_class: SectionClass
    unit: str | None  # DWARF compilation unit, source-relative (None: no DWARF answer)
    file_symbol: str | None  # the STT_FILE symbol the ELF places it under (locals only)
    dwarf_name: str | None  # DW_AT_name of the function (for inline counts)
    decl_file: str | None  # DW_AT_decl_file, source-relative
    is_global: bool
    symbol_indexes: tuple[int, ...]  # .symtab indexes, to tell duplicates apart

    @property
    def main_name(self) -> str:
        return self.names[0]

    @property
    def source(self) -> str | None:
        """The best-known file the group comes from."""
        return self.unit or self.file_symbol


@dataclass(frozen=True, slots=True)
class Caller:
    """An out-of-line function holding inlined instances of another."""

    name: str
    count: int


@dataclass(frozen=True, slots=True)
class Change:
    """One BASE group and its NEW counterpart (either may be None), classified."""

    kind: SymbolKind
    change_class: ChangeClass
    base: SymbolGroup | None
    new: SymbolGroup | None
    inlined_count_base: int | None  # None: that build has no DWARF
    inlined_count_new: int | None
    callers_new: tuple[Caller, ...] = ()  # where NEW inlined it (dropped_inlined and others)
    directory: str | None = None

    @property
    def base_size(self) -> int:
        return self.base.size if self.base else 0

    @property
    def new_size(self) -> int:
        return self.new.size if self.new else 0

    @property
    def delta(self) -> int:
        return self.new_size - self.base_size

    @property
    def name(self) -> str:
        group = self.base or self.new
        assert group is not None
        return group.main_name

    @property
    def display_name(self) -> str:
        """``old -> new`` when the main name changed, else the one name."""
        if self.base and self.new and self.base.main_name != self.new.main_name:
            return f"{self.base.main_name} -> {self.new.main_name}"
        return self.name


@dataclass(frozen=True, slots=True)
class DirectoryTotals:
    directory: str
    base_size: int
    new_size: int
    functions_base: int
    functions_new: int

    @property
    def delta(self) -> int:
        return self.new_size - self.base_size


@dataclass(frozen=True, slots=True)
class InlineCount:
    """Inlined instances of one function (name + declaring file) in both builds."""

    name: str
    decl_file: str | None
    count_base: int
    count_new: int

    @property
    def delta(self) -> int:
        return self.count_new - self.count_base


@dataclass(frozen=True, slots=True)
class ImageSummary:
    path: str
    build_id: str | None
    has_dwarf: bool  # DWARF was read for this build
    functions: int  # groups
    objects: int
    dwarf_seconds: float | None


@dataclass(frozen=True, slots=True)
class DiffReport:
    base: ImageSummary
    new: ImageSummary
    sections: tuple[SectionSize, ...]
    classes: tuple[ClassTotals, ...]
    changes: tuple[Change, ...]
    directories: tuple[DirectoryTotals, ...]
    inline_counts: tuple[InlineCount, ...]  # only functions whose count differs
    notes: tuple[str, ...]

    def of_kind(self, kind: SymbolKind) -> list[Change]:
        return [change for change in self.changes if change.kind is kind]

    def of_class(self, change_class: ChangeClass, kind: SymbolKind | None = None) -> list[Change]:
        return [
            change
            for change in self.changes
            if change.change_class is change_class and (kind is None or change.kind is kind)
        ]

    @property
    def inline_evidence(self) -> bool:
        """Dropped functions were told apart (inlined vs removed) with NEW's DWARF."""
        return self.new.has_dwarf
