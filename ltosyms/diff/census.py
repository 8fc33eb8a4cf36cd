"""What a diff needs from one image, worked out once per image: :class:`ImageCensus`.

A diff compares two censuses and nothing else (:func:`ltosyms.diff.compare.diff_censuses`):
the census holds the sections as ``size -A`` lists them, each with the image's own class, the
symbol groups (with their DWARF identity when DWARF was read), and the inlined instances of
every function. It does not refer back to the ELF file, so it can be kept and reused: an image
diffed against several others is read once, and the image's index keeps it
(:mod:`ltosyms.diff.stored`).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import logging
import operator
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ltosyms.diff.model import (
    EmptyGroups,
    InlinedInstances,
    ListedSection,
    SectionClass,
    SymbolGroup,
    SymbolKind,
    make_inlined,
)
from ltosyms.diff.sections import listed_sections, section_classes
from ltosyms.elf.image import ImageKind
from ltosyms.elf.kernel import LoadedImage
from ltosyms.errors import InputError

if TYPE_CHECKING:
    from ltosyms.dwarf import DwarfCensus

log = logging.getLogger(__name__)

InlineKey = tuple[str, str | None]  # (function name, declaring file)
# InlinedFunctions' constructor arguments in order: names, declaring files, counts, callers per
# function, caller low_pcs, caller instances.
InlinedColumns = tuple[
    Sequence[str], Sequence[str | None], Sequence[int], Sequence[int], Sequence[int], Sequence[int]
]


class InlinedFunctions(Mapping[InlineKey, InlinedInstances]):
    """The inlined instances of every function of one image: (name, declaring file) ->
    :class:`InlinedInstances`, each record made when it is asked for. A diff reads every
    function's count, and the callers of only those it reports ``dropped_inlined``; a census
    read back from the index holds 11,000 functions and their 60,000 callers per corpus
    kernel as columns, and making them all into records took a fifth of such a diff.

    The columns: per function its name, declaring file, count and number of callers; the
    callers of all functions one after the other (``low_pc`` of the out-of-line function
    holding instances, and how many it holds)."""

    __slots__ = (
        "_by_name",
        "_caller_counts",
        "_caller_instances",
        "_caller_low_pcs",
        "_count_column",
        "_counts",
        "_decl_files",
        "_names",
        "_starts",
        "_unique_counts",
    )

    def __init__(
        self,
        *,
        names: Sequence[str],
        decl_files: Sequence[str | None],
        counts: Sequence[int],
        caller_counts: Sequence[int],
        caller_low_pcs: Sequence[int],
        caller_instances: Sequence[int],
    ) -> None:
        self._names = names
        self._decl_files = decl_files
        self._count_column = counts
        self._counts: dict[InlineKey, int] = dict(
            zip(zip(names, decl_files, strict=True), counts, strict=True)
        )
        self._caller_counts = caller_counts
        self._caller_low_pcs = caller_low_pcs
        self._caller_instances = caller_instances
        self._starts: dict[InlineKey, tuple[int, int]] = {}  # made on first use
        self._by_name: dict[str, list[InlineKey]] | None = None  # made on first use
        self._unique_counts: dict[str, int] | None = None  # made on first use

    @classmethod
    def from_records(
        cls, records: Iterable[tuple[str, str | None, int, Sequence[tuple[int, int]]]]
    ) -> InlinedFunctions:
        """From ``(name, decl_file, count, callers)`` per function."""
        rows = list(records)
        return cls(
            names=tuple(name for name, _file, _count, _callers in rows),
            decl_files=tuple(decl_file for _name, decl_file, _count, _callers in rows),
            counts=tuple(count for _name, _file, count, _callers in rows),
            caller_counts=tuple(len(callers) for *_row, callers in rows),
            caller_low_pcs=tuple(low_pc for *_row, callers in rows for low_pc, _n in callers),
            caller_instances=tuple(n for *_row, callers in rows for _low_pc, n in callers),
        )

    def __getitem__(self, key: InlineKey) -> InlinedInstances:
        count = self._counts[key]
        if not self._starts:
            # Where each function's callers start: 0, then the running sum of the counts (one
            # more than there are functions; the last is never a start).
            starts = itertools.accumulate(self._caller_counts, initial=0)
            self._starts.update(
                zip(
                    zip(self._names, self._decl_files, strict=True),
                    zip(starts, self._caller_counts, strict=False),
                    strict=True,
                )
            )
        start, length = self._starts[key]
        end = start + length
        return make_inlined(
            name=key[0],
            decl_file=key[1],
            count=count,
            callers=tuple(
                zip(self._caller_low_pcs[start:end], self._caller_instances[start:end], strict=True)
            ),
        )

    def __iter__(self) -> Iterator[InlineKey]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, key: object) -> bool:
        return key in self._counts

    @property
    def counts(self) -> Mapping[InlineKey, int]:
        """Each function's number of inlined instances (no record made)."""
        return self._counts

    @property
    def unique_counts(self) -> Mapping[str, int]:
        """The counts of the function names declared in one file only, by name."""
        if self._unique_counts is None:
            counts = self._counts
            self._unique_counts = {
                name: counts[keys[0]]
                for name, keys in self._names_to_keys().items()
                if len(keys) == 1
            }
        return self._unique_counts

    def count_for(self, name: str, decl_file: str | None) -> int:
        """The inlined instances of the function ``name`` declared in ``decl_file``; when the
        file is unknown or differs between builds, of the only function of that name (0: none
        is inlined, or several are)."""
        count = self._counts.get((name, decl_file))
        return self.unique_counts.get(name, 0) if count is None else count

    def named(self, name: str) -> Sequence[InlineKey]:
        """The keys of the functions called ``name`` (one per declaring file)."""
        return self._names_to_keys().get(name, ())

    def _names_to_keys(self) -> dict[str, list[InlineKey]]:
        if self._by_name is None:
            self._by_name = {}
            for key in self._counts:
                self._by_name.setdefault(key[0], []).append(key)
        return self._by_name

    def columns(self) -> InlinedColumns:
        """The six columns given to the constructor, in its order."""
        return (
            self._names,
            self._decl_files,
            self._count_column,
            self._caller_counts,
            self._caller_low_pcs,
            self._caller_instances,
        )


NO_INLINED = InlinedFunctions.from_records(())


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageCensus:
    """One image, as the diff sees it. ``inlined`` and ``dwarf_seconds`` are empty and None
    when DWARF was not read (``dwarf_note`` says why, when there was a reason)."""

    path: str
    build_id: str | None
    machine: str  # "x86_64", "aarch64"
    kind: ImageKind
    sections: tuple[ListedSection, ...]
    groups: tuple[SymbolGroup, ...]
    empty_groups: EmptyGroups  # defined symbols of size 0
    symbol_bytes: Mapping[SectionClass, int]  # distinct sized symbols per section class
    inlined: InlinedFunctions
    has_dwarf: bool
    dwarf_seconds: float | None = None
    dwarf_note: str | None = None
    # The function table, filled on first use; not part of the record.
    _function_starts: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    _functions: list[SymbolGroup] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def inlined_instances(self, name: str, decl_file: str | None) -> InlinedInstances | None:
        """Inlined instances of the function ``name`` declared in ``decl_file``; when the file
        is unknown or differs between builds, the name alone if it is unambiguous."""
        key = (name, decl_file)
        if key not in self.inlined:
            keys = self.inlined.named(name)
            if len(keys) != 1:
                return None
            key = keys[0]
        return self.inlined[key]

    def inlined_count(self, group: SymbolGroup) -> int | None:
        """Instances of ``group``'s function inlined in this image (None: no DWARF read)."""
        if not self.has_dwarf:
            return None
        return self.inlined.count_for(group.dwarf_name or group.base_name, group.decl_file)

    def function_name_at(self, link_address: int) -> str:
        """The main name of the function group holding ``link_address`` (its hex when none
        does: code no sized symbol covers)."""
        if not self._functions:
            # Made on first use: only the callers of dropped_inlined functions are named.
            functions = sorted(
                (g for g in self.groups if g.kind is SymbolKind.FUNCTION),
                key=_link_address,
            )
            self._functions.extend(functions)
            self._function_starts.extend(map(_link_address, functions))
        position = bisect.bisect_right(self._function_starts, link_address) - 1
        if position >= 0:
            group = self._functions[position]
            if link_address < group.link_address + max(group.size, 1):
                return group.main_name
        return f"{link_address:#x}" if link_address >= 0 else "?"

    @property
    def function_bytes(self) -> int:
        return sum(g.size for g in self.groups if g.kind is SymbolKind.FUNCTION)

    @property
    def object_bytes(self) -> int:
        return sum(g.size for g in self.groups if g.kind is SymbolKind.OBJECT)


_link_address = operator.attrgetter("link_address")


@contextlib.contextmanager
def bulk_records() -> Iterator[None]:
    """No cyclic garbage collection while records are made in bulk. Nothing here makes
    reference cycles, and each full collection walks every object alive, the hundreds of
    thousands a DWARF walk leaves: 21 of them took a third of the CPU time of the corpus'
    clang-nolto -> clang-thinlto diff (6.4 s with, 4.5 s without)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def take_image_census(loaded: LoadedImage, *, use_dwarf: bool = True) -> ImageCensus:
    """The census of one vmlinux or module; DWARF is read only when ``use_dwarf``."""
    with bulk_records():
        return _take_image_census(loaded, use_dwarf)


def _take_image_census(loaded: LoadedImage, use_dwarf: bool) -> ImageCensus:
    # Imported here: a census read back from the index builds no groups from a symbol table.
    from ltosyms.diff.groups import build_groups

    image, symbols = loaded.image, loaded.symbols
    dwarf, seconds, note = _dwarf(loaded, use_dwarf)
    classes = section_classes(image, symbols)
    built = build_groups(image, symbols, classes, dwarf)
    return ImageCensus(
        path=str(image.path),
        build_id=image.build_id,
        machine=image.machine,
        kind=image.kind,
        sections=tuple(listed_sections(image, classes)),
        groups=tuple(built.groups),
        empty_groups=EmptyGroups.of(built.empty_groups),
        symbol_bytes=built.symbol_bytes,
        inlined=_inlined(dwarf) if dwarf is not None else NO_INLINED,
        has_dwarf=dwarf is not None,
        dwarf_seconds=seconds,
        dwarf_note=note,
    )


def _inlined(dwarf: DwarfCensus) -> InlinedFunctions:
    return InlinedFunctions.from_records(
        (record.name, record.decl_file, record.count, record.callers)
        for record in dwarf.inlined.values()
    )


def _dwarf(
    loaded: LoadedImage, use_dwarf: bool
) -> tuple[DwarfCensus | None, float | None, str | None]:
    if not use_dwarf:
        return None, None, None
    if not loaded.image.has_dwarf():
        return None, None, f"{loaded.image.path} has no DWARF: DWARF parts skipped for it"
    # Imported here: a census read back from the index needs none of the DWARF reader.
    from ltosyms.dwarf import take_census
    from ltosyms.elf.debug_sections import dwarf_sections

    started = time.perf_counter()
    try:
        census = take_census(dwarf_sections(loaded.image))
    except InputError as error:
        return None, None, f"DWARF unusable, skipped: {error}"
    seconds = time.perf_counter() - started
    log.info("%s: DWARF census in %.1f s", loaded.image.path, seconds)
    return census, seconds, None
