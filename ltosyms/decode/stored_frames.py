"""Resolved frames kept in the image's index: a later decode of a frame that reads the same
takes the resolution stored instead of working it out again.

A sysrq dump or a crash printed again names the same frames run after run, and resolving a
printed ``name+offset/size`` takes most of a warm decode: the name's candidates in every
naming era, their evidence, the call ending at the return address, its target named, the
source lines, the WARN line of the bug table. What comes out depends on what the log says of
the frame, the image, the naming era the build prints and the code that resolves; the first
three make the key (:func:`frame_key`), the last the version of
:data:`ltosyms.index.kinds.RESOLVED_FRAMES`.

The index keeps a frame as one flat record of numbers and strings (:func:`frame_values`; read
back with two C calls, like a call site); :func:`frame_from_values` makes the record again,
taking the symbols back from the image's table by their ``.symtab`` index and checking every
field. :data:`RECORD_FIELDS` names every field of every record a frame holds, as the record
is written: a test holds it to the records' own fields, so that a field added to one is not
left out of what is kept.
A frame printed with ``Code:`` bytes is kept with them: they are evidence among its copies.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

from ltosyms.decode.candidates import Candidate, Evidence, EvidenceKind
from ltosyms.decode.frames import ResolvedFrame, SectionPlace
from ltosyms.disasm.records import CallSite
from ltosyms.disasm.targets import CallTarget, CodePoint, NamedCall, TargetKind
from ltosyms.dwarf import FunctionLines, SourceLocation
from ltosyms.index import StoredValueError, kinds
from ltosyms.index.fields import stored_int, stored_str

if TYPE_CHECKING:
    from ltosyms.context import ImageContext
    from ltosyms.elf.symtab import Symbol
    from ltosyms.stores import Memo

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a log says of a frame: (symbol, offset, kallsyms size, module, module build id, role,
# reliable), as the decoder reads it; then, for a frame printed with Code: bytes, the bytes
# (hex), the marker's offset and the architecture.
Said = tuple[object, ...]


def frame_key(era: str, said: Said) -> str:
    """The stored key of a frame: the naming era and what the log says of it (``repr`` of
    strings, numbers, None and booleans reads back one way only)."""
    plain = (value.value if isinstance(value, enum.Enum) else value for value in said)
    return repr((era, *plain))


class StoredFrames:
    """The resolved frames of one image's index, by :func:`frame_key`."""

    def __init__(self, context: ImageContext, era: str) -> None:
        self.context = context
        self.era = era
        self.memo: Memo[str, FlatRecord] | None = context.memo(kinds.RESOLVED_FRAMES)
        self._warned = False
        # What prefetch() read for the report: the frames found, by what was asked.
        self._fetched: dict[Said, ResolvedFrame | None] = {}

    def prefetch(self, saids: Iterable[Said]) -> None:
        """Read the frames stored for ``saids`` at once (one query, not one per frame): the
        frames of one report, which :meth:`get` then hands out (or says are not stored)."""
        self._fetched.clear()
        if self.memo is None:
            return
        keys = {frame_key(self.era, said): said for said in saids}
        self._fetched = dict.fromkeys(keys.values())
        for key, values in self.memo.get_many(keys).items():
            self._fetched[keys[key]] = self._frame(key, values)

    def get(self, said: Said) -> ResolvedFrame | None:
        """The frame stored for ``said``; None when there is none, or it does not make a
        record of this image (then it is worked out as if absent, and replaces it)."""
        if said in self._fetched or self.memo is None:
            return self._fetched.get(said)
        key = frame_key(self.era, said)
        values = self.memo.get(key)
        return None if values is None else self._frame(key, values)

    def _frame(self, key: str, values: FlatRecord) -> ResolvedFrame | None:
        try:
            return frame_from_values(values, self.context)
        except StoredValueError as error:
            assert self.memo is not None
            self.memo.refuse(key)
            if not self._warned:
                self._warned = True
                log.warning(
                    "index of %s: a stored frame is not used (%s); it is worked out again",
                    self.context.image.path,
                    error,
                )
            return None

    def put(self, said: Said, frame: ResolvedFrame) -> None:
        """Keep ``frame`` for ``said``."""
        if self.memo is not None:
            self.memo.put(frame_key(self.era, said), frame_values(frame))


# The fields of each record a frame holds, all of them kept (the call site's by CallSite.fields).
RECORD_FIELDS: dict[type, tuple[str, ...]] = {
    ResolvedFrame: (
        "module",
        "notes",
        "symbol",
        "link_address",
        "call_site",
        "lookup_address",
        "not_return_address",
        "ambiguous",
        "candidates",
        "evidence",
        "locations",
        "named_call",
        "function_pointer",
        "place",
        "candidate_places",
        "candidate_lines",
        "candidate_units",
        "candidate_function_lines",
    ),
    Candidate: ("symbol", "link_address"),
    Evidence: ("kind", "detail", "candidates_before", "candidates_after"),
    SourceLocation: (
        "function",
        "file",
        "full_path",
        "line",
        "column",
        "inlined",
        "dwarf_function",
    ),
    SectionPlace: ("section", "offset"),
    FunctionLines: ("file", "first", "last"),
    NamedCall: ("site", "mnemonic", "target"),
    CodePoint: ("symbol", "offset", "section", "link_address"),
    CallTarget: ("kind", "symbol", "offset", "link_address", "operand", "alternatives"),
    CallSite: (
        "return_address",
        "link_address",
        "length",
        "raw",
        "mnemonic",
        "op_str",
        "kind",
        "target_link_address",
        "possible_targets",
        "thunk",
        "patch",
        "method",
    ),
}

# -- the flat record ---------------------------------------------------------------------------
# Numbers: the counts of the variable parts, then the frame's own numbers, then those of each
# part in turn; strings likewise; the blob: the call instruction's bytes. Offsets may be
# negative (a call site before its symbol's start): they are stored modulo 2**64.

FlatRecord = tuple[list[int | None], list[str | None], bytes]

_MODULO = 1 << 64
_COUNTS = 8  # notes, candidates, evidence, locations, candidate places, lines, units, extents


def _signed(value: int) -> int:
    return value - _MODULO if value >= _MODULO >> 1 else value


def frame_values(frame: ResolvedFrame) -> FlatRecord:
    numbers: list[int | None] = [
        len(frame.notes),
        len(frame.candidates),
        len(frame.evidence),
        len(frame.locations),
        len(frame.candidate_places),
        len(frame.candidate_lines),
        len(frame.candidate_units),
        len(frame.candidate_function_lines),
        None if frame.symbol is None else frame.symbol.index,
        frame.link_address,
        frame.lookup_address,
        int(frame.not_return_address),
        int(frame.ambiguous),
        None if frame.function_pointer is None else frame.function_pointer.index,
    ]
    texts: list[str | None] = [frame.module, *frame.notes]
    for candidate in frame.candidates:
        numbers += [candidate.symbol.index, candidate.link_address]
    for evidence in frame.evidence:
        numbers += [evidence.candidates_before, evidence.candidates_after]
        texts += [evidence.kind.value, evidence.detail]
    for location in frame.locations:
        _location_values(location, numbers, texts)
    for place in (frame.place, *frame.candidate_places):
        numbers.append(None if place is None else place.offset % _MODULO)
        texts.append(None if place is None else place.section)
    for line in frame.candidate_lines:
        numbers.append(int(line is not None))
        if line is not None:
            _location_values(line, numbers, texts)
    texts += frame.candidate_units
    for extent in frame.candidate_function_lines:
        numbers += [None, None] if extent is None else [extent.first, extent.last]
        texts.append(None if extent is None else extent.file)
    raw = _call_values(frame.call_site, frame.named_call, numbers, texts)
    return numbers, texts, raw


def _location_values(
    location: SourceLocation, numbers: list[int | None], texts: list[str | None]
) -> None:
    location_numbers, location_texts = location.fields()
    numbers += location_numbers
    texts += location_texts


def _call_values(
    site: CallSite | None,
    call: NamedCall | None,
    numbers: list[int | None],
    texts: list[str | None],
) -> bytes:
    numbers.append(None if site is None else len(site.possible_targets))
    if site is not None:
        site_numbers, site_texts = site.fields()
        numbers += site_numbers
        texts += site_texts
    numbers.append(None if call is None else len(call.target.alternatives))
    if call is not None:
        point, target = call.site, call.target
        numbers += [
            point.offset % _MODULO,
            point.link_address,
            None if target.offset is None else target.offset % _MODULO,
            target.link_address,
        ]
        texts += [
            point.symbol,
            point.section,
            call.mnemonic,
            target.kind.value,
            target.symbol,
            target.operand,
            *target.alternatives,
        ]
    return b"" if site is None else site.raw


def frame_from_values(values: FlatRecord, context: ImageContext) -> ResolvedFrame:
    """The record :func:`frame_values` made ``values`` of; :class:`StoredValueError` for
    values that make none in this image."""
    try:
        return _Reader(values, context).frame()
    except (TypeError, ValueError, IndexError, KeyError) as error:
        raise StoredValueError(f"a stored frame: {error}") from None


def _next(values: list[T], start: int, count: int) -> list[T]:
    """The ``count`` values from ``start``; the record is cut short if there are fewer."""
    taken = values[start : start + count]
    if len(taken) != count:
        raise StoredValueError("a stored frame is cut short")
    return taken


class _Reader:
    """Reads a flat record front to back (see frame_values for the order)."""

    def __init__(self, values: FlatRecord, context: ImageContext) -> None:
        self.numbers, self.texts, self.raw = values
        self.context = context
        self.number_at = 0
        self.text_at = 0

    def take(self, count: int) -> list[int | None]:
        taken = _next(self.numbers, self.number_at, count)
        self.number_at += count
        return taken

    def take_texts(self, count: int) -> list[str | None]:
        taken = _next(self.texts, self.text_at, count)
        self.text_at += count
        return taken

    def frame(self) -> ResolvedFrame:
        counts = [stored_int(count) for count in self.take(_COUNTS)]
        notes, candidates, evidence, locations, places, lines, units, extents = counts
        symbol, link_address, lookup_address, not_return_address, ambiguous, pointer = self.take(6)
        module, *note_texts = self.take_texts(1 + notes)
        frame_candidates = tuple(self.candidate() for _ in range(candidates))
        frame_evidence = tuple(self.evidence() for _ in range(evidence))
        frame_locations = tuple(self.location() for _ in range(locations))
        place, *candidate_places = (self.place() for _ in range(1 + places))
        candidate_lines = tuple(self.location() if self.flag() else None for _ in range(lines))
        candidate_units = tuple(self.take_texts(units))
        candidate_extents = tuple(self.extent() for _ in range(extents))
        call_site = self.call_site()
        named_call = self.named_call()
        if self.number_at != len(self.numbers) or self.text_at != len(self.texts):
            raise StoredValueError("a stored frame holds more than a frame")
        return ResolvedFrame(
            module=module,
            notes=tuple(stored_str(note) for note in note_texts),
            symbol=self.symbol(symbol),
            link_address=link_address,
            call_site=call_site,
            lookup_address=lookup_address,
            not_return_address=self.boolean(not_return_address),
            ambiguous=self.boolean(ambiguous),
            candidates=frame_candidates,
            evidence=frame_evidence,
            locations=frame_locations,
            named_call=named_call,
            function_pointer=self.symbol(pointer),
            place=place,
            candidate_places=tuple(candidate_places),
            candidate_lines=candidate_lines,
            candidate_units=candidate_units,
            candidate_function_lines=candidate_extents,
        )

    @staticmethod
    def boolean(value: int | None) -> bool:
        if value not in (0, 1):
            raise StoredValueError("a stored flag is neither 0 nor 1")
        return value == 1

    def flag(self) -> bool:
        return self.boolean(self.take(1)[0])

    def symbol(self, value: int | None) -> Symbol | None:
        if value is None:
            return None
        symbols = self.context.symbols
        if value >= len(symbols):
            raise StoredValueError(f"symbol {value} is not in the image's table")
        return symbols.symbol(value)

    def candidate(self) -> Candidate:
        index, link_address = self.take(2)
        symbol = self.symbol(stored_int(index))
        assert symbol is not None
        return Candidate(symbol=symbol, link_address=stored_int(link_address))

    def evidence(self) -> Evidence:
        before, after = self.take(2)
        kind, detail = self.take_texts(2)
        return Evidence(
            kind=EvidenceKind(kind),
            detail=stored_str(detail),
            candidates_before=stored_int(before),
            candidates_after=stored_int(after),
        )

    def location(self) -> SourceLocation:
        return SourceLocation.from_fields(self.take(3), self.take_texts(4))

    def place(self) -> SectionPlace | None:
        (offset,) = self.take(1)
        (section,) = self.take_texts(1)
        if offset is None or section is None:
            return None
        return SectionPlace(section=section, offset=_signed(offset))

    def extent(self) -> FunctionLines | None:
        first, last = self.take(2)
        (file,) = self.take_texts(1)
        if first is None or last is None:
            return None
        return FunctionLines(file=file, first=first, last=last)

    def call_site(self) -> CallSite | None:
        (targets,) = self.take(1)
        if targets is None:
            return None
        return CallSite.from_fields(self.take(4 + targets), self.take_texts(6), self.raw)

    def named_call(self) -> NamedCall | None:
        (alternatives,) = self.take(1)
        if alternatives is None:
            return None
        offset, link_address, target_offset, target_address = self.take(4)
        symbol, section, mnemonic, kind, name, operand, *names = self.take_texts(6 + alternatives)
        return NamedCall(
            site=CodePoint(
                symbol=symbol,
                offset=_signed(stored_int(offset)),
                section=section,
                link_address=link_address,
            ),
            mnemonic=stored_str(mnemonic),
            target=CallTarget(
                kind=TargetKind(kind),
                symbol=name,
                offset=None if target_offset is None else _signed(target_offset),
                link_address=target_address,
                operand=operand,
                alternatives=tuple(stored_str(text) for text in names),
            ),
        )
