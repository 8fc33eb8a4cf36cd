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
import logging
import operator
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ltosyms.diff.model import (
    InlinedInstances,
    ListedSection,
    SectionClass,
    SymbolGroup,
    SymbolKind,
)
from ltosyms.diff.sections import listed_sections, section_classes
from ltosyms.elf.image import ImageKind
from ltosyms.elf.kernel import LoadedImage
from ltosyms.errors import InputError

if TYPE_CHECKING:
    from ltosyms.dwarf import DwarfCensus

log = logging.getLogger(__name__)

InlineKey = tuple[str, str | None]  # (function name, declaring file)


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
    empty_groups: tuple[SymbolGroup, ...]  # defined symbols of size 0
    symbol_bytes: Mapping[SectionClass, int]  # distinct sized symbols per section class
    inlined: Mapping[InlineKey, InlinedInstances]
    has_dwarf: bool
    dwarf_seconds: float | None = None
    dwarf_note: str | None = None
    # Lookup tables over the fields above, filled by __post_init__ (the function table on
    # first use); not part of the record.
    _by_name: dict[str, list[InlinedInstances]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _function_starts: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    _functions: list[SymbolGroup] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for record in self.inlined.values():
            self._by_name.setdefault(record.name, []).append(record)

    def inlined_instances(self, name: str, decl_file: str | None) -> InlinedInstances | None:
        """Inlined instances of the function ``name`` declared in ``decl_file``; when the file
        is unknown or differs between builds, the name alone if it is unambiguous."""
        record = self.inlined.get((name, decl_file))
        if record is not None:
            return record
        candidates = self._by_name.get(name, ())
        return candidates[0] if len(candidates) == 1 else None

    def inlined_count(self, group: SymbolGroup) -> int | None:
        """Instances of ``group``'s function inlined in this image (None: no DWARF read)."""
        if not self.has_dwarf:
            return None
        # inlined_instances() spelled out: asked twice per function of every diff.
        name = group.dwarf_name or group.base_name
        record = self.inlined.get((name, group.decl_file))
        if record is None:
            candidates = self._by_name.get(name)
            if candidates is None or len(candidates) != 1:
                return 0
            record = candidates[0]
        return record.count

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
        empty_groups=tuple(built.empty_groups),
        symbol_bytes=built.symbol_bytes,
        inlined=_inlined(dwarf) if dwarf is not None else {},
        has_dwarf=dwarf is not None,
        dwarf_seconds=seconds,
        dwarf_note=note,
    )


def _inlined(dwarf: DwarfCensus) -> dict[InlineKey, InlinedInstances]:
    return {
        key: InlinedInstances(
            name=record.name, decl_file=record.decl_file, count=record.count, callers=record.callers
        )
        for key, record in dwarf.inlined.items()
    }


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
