"""Records of a build-to-build diff: sections, symbol groups, their changes, rollups.

A *group* is what the diff compares: every symbol of one build that belongs to one function
(or one object) of the source, e.g. gcc's ``foo``, ``foo.cold`` and ``foo.constprop.0`` from
``kernel/foo.c``. Its identity is the base name of the symbols (the suffix grammar of
:mod:`ltosyms.names.suffixes`) plus where the code came from (the DWARF compilation unit, else
the ``STT_FILE`` symbol).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, overload


class SectionClass(enum.Enum):
    """What ``size`` would call a section, with init code and data apart (freed after boot)."""

    TEXT = "text"
    RODATA = "rodata"
    DATA = "data"
    BSS = "bss"
    INIT = "init"
    DEBUG = "debug"
    OTHER = "other"

    # Members are singletons compared by identity: hash them so too. Enum's own __hash__ is
    # Python code (a hash of the name), and a diff hashes these classes, as parts of dict
    # keys, some 60,000 times.
    __hash__ = object.__hash__

    @property
    def is_loaded(self) -> bool:
        """Sections that occupy memory in the running kernel (or until init is freed)."""
        return self not in (SectionClass.DEBUG, SectionClass.OTHER)


class SymbolKind(enum.Enum):
    FUNCTION = "function"
    OBJECT = "object"

    __hash__ = object.__hash__  # see SectionClass


class ChangeClass(enum.Enum):
    """Every change falls in exactly one class (rules: :mod:`ltosyms.diff.classify`).

    ``split``, ``outlined`` and ``folded`` came with ``ltosyms.diff/2``: ``split`` takes the
    hot/cold splits ``specialized`` used to count, ``outlined`` the NEW-only functions BASE had
    inlined (``new`` before), ``folded`` the functions one build shares with another by
    identical code folding (``new`` or ``dropped_*`` before).
    """

    UNCHANGED = "unchanged"
    GROWN = "grown"
    SHRUNK = "shrunk"
    RENAMED = "renamed"  # the promotion or clone kinds of the names differ, not only numbers
    SPECIALIZED = "specialized"  # NEW has clone kinds (.constprop, .isra, .part, ...) BASE lacks
    SPLIT = "split"  # NEW splits hot and cold code (.cold) where BASE did not
    DROPPED_INLINED = "dropped_inlined"  # no code of its own in NEW, inlined instances there
    DROPPED_REMOVED = "dropped_removed"  # no code and no inlined instance in NEW
    FOLDED = "folded"  # one build has no code of its own for it: its name aliases another's
    OUTLINED = "outlined"  # NEW-only function that BASE had inlined (and only inlined)
    NEW = "new"

    __hash__ = object.__hash__  # see SectionClass


class Visibility(enum.Enum):
    """A change of ELF binding between the builds (LTO internalizes globals it can see all
    users of: ``STB_GLOBAL`` in BASE, ``STB_LOCAL`` in NEW)."""

    LOCALIZED = "localized"  # global in BASE, local in NEW
    GLOBALIZED = "globalized"  # local in BASE, global in NEW

    __hash__ = object.__hash__  # see SectionClass


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedSection:
    """A section of one build as ``size -A`` lists it, classified by its own header."""

    name: str
    size: int
    section_class: SectionClass


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionSize:
    """One row of ``size -A`` in either build (None: the build has no such section).

    Each build's section is classified by that build's own header: ``.orc_lookup`` is
    PROGBITS under ld.lld and NOBITS under GNU ld, so the same name can be rodata in one build
    and bss in the other.
    """

    name: str
    base_class: SectionClass | None
    new_class: SectionClass | None
    base_size: int | None
    new_size: int | None

    @property
    def section_class(self) -> SectionClass:
        """BASE's class of the section, NEW's when BASE has no such section."""
        section_class = self.base_class or self.new_class
        assert section_class is not None
        return section_class

    @property
    def delta(self) -> int:
        return (self.new_size or 0) - (self.base_size or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
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


class SymbolGroup(NamedTuple):
    """The symbols of one build that make up one function or object of the source.

    A named tuple, not a frozen dataclass: each image has some 31,000 of them (twice that with
    its size-0 symbols), made again from the index's columns on every diff, and a frozen
    dataclass's __init__ (one object.__setattr__ per field) cost more than the rest of a diff
    of two indexed images; a named tuple is made from a row of columns in C
    (:meth:`~typing.NamedTuple._make` over zipped columns)."""

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
    nm_type: str = "?"  # the letter nm prints for the main symbol (t, T, d, r, b, W, ...)
    member_count: int = 1  # distinct symbols (by address and size) whose bytes are counted
    alias_names: tuple[str, ...] = ()  # names of ``names`` at another member's address and size

    @property
    def main_name(self) -> str:
        return self.names[0]

    @property
    def source(self) -> str | None:
        """The best-known file the group comes from."""
        return self.unit or self.file_symbol

    @property
    def is_collection(self) -> bool:
        """Many objects under one base name (clang's ``.str.N`` string literals, gcc's
        ``__func__.N``): the group is not one object and must not be named after one."""
        return self.kind is SymbolKind.OBJECT and self.member_count > 1

    @property
    def label(self) -> str:
        """What a report calls the group: the main name, or for a collection of objects its
        number of symbols and pattern, ``341 string literals (.str.*)``."""
        if not self.is_collection:
            return self.main_name
        return f"{len(self.names)} {collection_noun(self.base_name)} ({self.pattern})"

    @property
    def pattern(self) -> str:
        """The base name with a wildcard for the numbers and promotions that follow it."""
        return f"{self.base_name}.*"


# A group from a tuple of its fields in order, made in C: the census makes one per function
# and object of an image (30,000 for a corpus kernel, 60,000 with the size-0 ones), and the
# named tuple's keyword __new__ is a Python function call each (four times slower).
new_group = functools.partial(tuple.__new__, SymbolGroup)


class EmptyGroups(Sequence[SymbolGroup]):
    """An image's groups of size 0 (defined symbols without bytes: lockdep keys, markers), each
    made when first asked for. A diff reads the names of all of them and pairs a few
    (:func:`ltosyms.diff.match.match_groups`, pass 6): a census read back from the index
    holds 8,000-12,000 per corpus kernel as columns, and ``make`` makes the groups at the
    positions asked for in one call."""

    __slots__ = ("_made", "_make", "names")

    def __init__(
        self,
        names: Sequence[tuple[str, ...]],
        make: Callable[[Sequence[int]], Sequence[SymbolGroup]],
    ) -> None:
        self.names = names  # each group's names, as SymbolGroup.names
        self._make = make
        self._made: dict[int, SymbolGroup] = {}

    @classmethod
    def of(cls, groups: Iterable[SymbolGroup]) -> EmptyGroups:
        """Groups made already."""
        made = tuple(groups)
        return cls([group.names for group in made], lambda positions: [made[p] for p in positions])

    def take(self, positions: Iterable[int]) -> None:
        """Make the groups at ``positions`` not made yet, all in one call of ``make``."""
        wanted = sorted({p for p in positions if p not in self._made})
        if wanted:
            if wanted[0] < 0 or wanted[-1] >= len(self.names):
                raise IndexError("no size-0 group there")
            self._made.update(zip(wanted, self._make(wanted), strict=True))

    @overload
    def __getitem__(self, position: int) -> SymbolGroup: ...

    @overload
    def __getitem__(self, position: slice) -> Sequence[SymbolGroup]: ...

    def __getitem__(self, position: int | slice) -> SymbolGroup | Sequence[SymbolGroup]:
        if isinstance(position, slice):
            return [self[p] for p in range(len(self.names))[position]]
        if position < 0:
            position += len(self.names)
        if position not in self._made:
            self.take((position,))
        return self._made[position]

    def __iter__(self) -> Iterator[SymbolGroup]:
        if len(self._made) < len(self.names):
            self.take(range(len(self.names)))
        return map(self._made.__getitem__, range(len(self.names)))

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EmptyGroups):
            return NotImplemented
        return tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # equal by contents, which are made lazily


# What the objects of one base name are, by the last dot-part of the base name. Each row is a
# name the kernel or the compiler makes many times over.
_COLLECTION_NOUNS = {
    ".str": "string literals",  # clang: private string constants, named once ThinLTO promotes
    "__func__": "function-name strings",  # C99 __func__ in pr_*() and WARN() messages (gcc)
    "__already_done": "once-flags",  # include/linux/once_lite.h DO_ONCE_LITE_IF (WARN_ONCE)
    "__warned": "once-flags",  # include/linux/rcupdate.h RCU_LOCKDEP_WARN
    "__print_once": "once-flags",  # include/linux/libata.h ata_print_version_once
    "__key": "lockdep class keys",  # static struct lock_class_key __key in wait.h, mutex.h...
    "_rs": "ratelimit states",  # include/linux/printk.h printk_ratelimited and friends
    "__quirk": "quirk entries",  # arch/x86/events/perf_event.h x86_add_quirk
    "__compound_literal": "compound literals",  # gcc's name for (struct x){...} objects
    ".compoundliteral": "compound literals",  # clang's
    "CSWTCH": "switch tables",  # gcc: lookup tables made from switch statements
}


def collection_noun(base_name: str) -> str:
    """``string literals`` for ``.str``, ``lockdep class keys`` for ``alloc_super.__key``."""
    if base_name.startswith(".") and base_name.count(".") == 1:
        key = base_name
    else:
        key = base_name.rsplit(".", 1)[-1]
    return _COLLECTION_NOUNS.get(key, "objects")


@dataclass(frozen=True, slots=True, kw_only=True)
class InlinedInstances:
    """Every inlined instance of one function in one build (its ``DW_TAG_inlined_subroutine``
    DIEs): how many, and per out-of-line function holding some, that function's ``low_pc`` (a
    link address) and how many it holds. The diff's copy of the DWARF census' record: a census
    read back from the index loads none of the DWARF reader."""

    name: str
    decl_file: str | None
    count: int
    callers: tuple[tuple[int, int], ...]


_new_object = object.__new__

# A census taken from DWARF makes 11,000 of these per corpus kernel (one read back from the index
# only those a diff asks for), a diff one Change per paired or unpaired group (20,000), and a
# frozen dataclass's generated __init__ assigns every field through object.__setattr__ (its own
# __setattr__ refuses). make_inlined() and make_change() build the same records by calling the
# slot descriptors directly, as make_frame() does for the parser's frames: every field given by
# keyword (tests/test_diff_rules.py checks that their parameters are the records' fields); no
# defaults are applied.
_INLINED_SLOTS = InlinedInstances.__dict__
_set_inlined_name = _INLINED_SLOTS["name"].__set__
_set_inlined_decl_file = _INLINED_SLOTS["decl_file"].__set__
_set_inlined_count = _INLINED_SLOTS["count"].__set__
_set_inlined_callers = _INLINED_SLOTS["callers"].__set__


def make_inlined(
    *, name: str, decl_file: str | None, count: int, callers: tuple[tuple[int, int], ...]
) -> InlinedInstances:
    """``InlinedInstances(...)`` with every field given, about twice as fast."""
    record: InlinedInstances = _new_object(InlinedInstances)
    _set_inlined_name(record, name)
    _set_inlined_decl_file(record, decl_file)
    _set_inlined_count(record, count)
    _set_inlined_callers(record, callers)
    return record


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """An out-of-line function holding inlined instances of another."""

    name: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
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
    folded_with: str | None = None  # folded: the function whose code the folded name shares

    @property
    def unit(self) -> str | None:
        return group_unit(self.base, self.new)

    @property
    def base_size(self) -> int:
        return self.base.size if self.base else 0

    @property
    def new_size(self) -> int:
        return self.new.size if self.new else 0

    @property
    def delta(self) -> int:
        # Read off the groups, not through the two properties above: renderers add up the
        # deltas of every change several times.
        base, new = self.base, self.new
        return (new.size if new is not None else 0) - (base.size if base is not None else 0)

    @property
    def name(self) -> str:
        group = self.base or self.new
        assert group is not None
        return group.main_name

    @property
    def label(self) -> str:
        """The group's label (:attr:`SymbolGroup.label`), NEW's when both builds have it."""
        group = self.new or self.base
        assert group is not None
        return group.label

    @property
    def display_name(self) -> str:
        """``old -> new`` when the main name changed, else the one name; a collection of
        objects by its label."""
        group = self.new or self.base
        if group is not None and group.is_collection:
            return group.label
        if self.base and self.new and self.base.main_name != self.new.main_name:
            return f"{self.base.main_name} -> {self.new.main_name}"
        return self.name

    @property
    def source(self) -> str | None:
        """The file the function or object comes from (BASE's when both have one)."""
        return (self.base.source if self.base else None) or (self.new.source if self.new else None)

    @property
    def visibility(self) -> Visibility | None:
        """How the ELF binding changed between the builds (None: it did not, or one side
        is missing)."""
        if self.base is None or self.new is None or self.base.is_global == self.new.is_global:
            return None
        return Visibility.LOCALIZED if self.base.is_global else Visibility.GLOBALIZED


def group_unit(base: SymbolGroup | None, new: SymbolGroup | None) -> str | None:
    """The DWARF unit of a function or object: BASE's, else NEW's."""
    return (base.unit if base is not None else None) or (new.unit if new is not None else None)


# See make_inlined().
_CHANGE_SLOTS = Change.__dict__
_set_change_kind = _CHANGE_SLOTS["kind"].__set__
_set_change_class = _CHANGE_SLOTS["change_class"].__set__
_set_base = _CHANGE_SLOTS["base"].__set__
_set_new = _CHANGE_SLOTS["new"].__set__
_set_inlined_count_base = _CHANGE_SLOTS["inlined_count_base"].__set__
_set_inlined_count_new = _CHANGE_SLOTS["inlined_count_new"].__set__
_set_callers_new = _CHANGE_SLOTS["callers_new"].__set__
_set_directory = _CHANGE_SLOTS["directory"].__set__
_set_folded_with = _CHANGE_SLOTS["folded_with"].__set__


def make_change(
    *,
    kind: SymbolKind,
    change_class: ChangeClass,
    base: SymbolGroup | None,
    new: SymbolGroup | None,
    inlined_count_base: int | None,
    inlined_count_new: int | None,
    callers_new: tuple[Caller, ...],
    directory: str | None,
    folded_with: str | None,
) -> Change:
    """``Change(...)`` with every field given, about twice as fast (see make_inlined())."""
    change: Change = _new_object(Change)
    _set_change_kind(change, kind)
    _set_change_class(change, change_class)
    _set_base(change, base)
    _set_new(change, new)
    _set_inlined_count_base(change, inlined_count_base)
    _set_inlined_count_new(change, inlined_count_new)
    _set_callers_new(change, callers_new)
    _set_directory(change, directory)
    _set_folded_with(change, folded_with)
    return change


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryTotals:
    """Bytes of the functions and objects of one directory (or MAINTAINERS subsystem)."""

    directory: str
    base_size: int
    new_size: int
    functions_base: int
    functions_new: int
    depth: int = 0  # the rollup depth: directories cut to this many components (0: none)

    @property
    def delta(self) -> int:
        return self.new_size - self.base_size


@dataclass(frozen=True, slots=True, kw_only=True)
class InlineCount:
    """Inlined instances of one function (name + declaring file) in both builds."""

    name: str
    decl_file: str | None
    count_base: int
    count_new: int

    @property
    def delta(self) -> int:
        return self.count_new - self.count_base


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSummary:
    path: str
    build_id: str | None
    has_dwarf: bool  # DWARF was read for this build
    functions: int  # groups
    objects: int
    dwarf_seconds: float | None
    machine: str = ""
    function_bytes: int = 0  # sum of the sizes of the function groups: the code itself
    object_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffReport:
    base: ImageSummary
    new: ImageSummary
    sections: tuple[SectionSize, ...]
    classes: tuple[ClassTotals, ...]
    changes: tuple[Change, ...]
    directories: tuple[DirectoryTotals, ...]
    inline_counts: tuple[InlineCount, ...]  # only functions whose count differs
    notes: tuple[str, ...]
    directory_depth: int = 2  # of ``directories``
    directory_tree: tuple[DirectoryTotals, ...] = ()  # the rollup at every depth
    subsystems: tuple[DirectoryTotals, ...] = ()  # per MAINTAINERS section, when one was given
    # by_class(), made on first use (renderers ask for it several times); not part of the record.
    _by_class: dict[tuple[ChangeClass, SymbolKind], list[Change]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _class_deltas: dict[tuple[ChangeClass, SymbolKind], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _bindings: dict[tuple[SymbolKind, Visibility], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def of_kind(self, kind: SymbolKind) -> list[Change]:
        return [change for change in self.changes if change.kind is kind]

    def of_class(self, change_class: ChangeClass, kind: SymbolKind | None = None) -> list[Change]:
        if kind is not None:
            return list(self.by_class().get((change_class, kind), ()))
        return [change for change in self.changes if change.change_class is change_class]

    def by_class(self) -> dict[tuple[ChangeClass, SymbolKind], list[Change]]:
        """The changes per (class, kind), in report order: one pass for all classes, made once
        (a fresh dict of the same lists each call)."""
        grouped = self._by_class
        if not grouped and self.changes:
            deltas, bindings = self._class_deltas, self._bindings
            localized, globalized = Visibility.LOCALIZED, Visibility.GLOBALIZED
            for change in self.changes:
                key = (change.change_class, change.kind)
                grouped.setdefault(key, []).append(change)
                # Change.delta and Change.visibility spelled out: renderers would otherwise ask
                # each change for them, 20,000 times, for every total they print.
                base, new = change.base, change.new
                deltas[key] = (
                    deltas.get(key, 0)
                    + (new.size if new is not None else 0)
                    - (base.size if base is not None else 0)
                )
                if base is not None and new is not None and base.is_global != new.is_global:
                    binding = (change.kind, localized if base.is_global else globalized)
                    bindings[binding] = bindings.get(binding, 0) + 1
        return dict(grouped)

    def class_delta(self, change_class: ChangeClass, kind: SymbolKind) -> int:
        """The sum of the byte deltas of the changes of one class and kind."""
        self.by_class()
        return self._class_deltas.get((change_class, kind), 0)

    def binding_changes(self, kind: SymbolKind) -> dict[Visibility, int]:
        """How many matched functions (or objects) changed ELF binding, per direction."""
        self.by_class()
        return {visibility: self._bindings.get((kind, visibility), 0) for visibility in Visibility}

    @property
    def inline_evidence(self) -> bool:
        """Dropped functions were told apart (inlined vs removed) with NEW's DWARF."""
        return self.new.has_dwarf
