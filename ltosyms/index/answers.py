"""The stored values of one image, by kind: the only way the rest of ltosyms uses an index.

:class:`Answers` wraps one image's :class:`~ltosyms.index.store.IndexStore` and speaks in
records: ``get(kind, key)`` decodes what is stored with the kind's codec, ``put(kind, key,
value)`` queues a record, :meth:`Answers.save` encodes everything queued and writes it in one
transaction (table files next to it), and a long stream of puts is written whenever the queue
is large, so that a run stopped early keeps what it worked out. ``memo(kind)`` hands a stage
the same as a :class:`~ltosyms.stores.Memo`.

A stored value that passes its checksum but does not decode (written by another version, by
a bug, or by hand) is dropped here, in one place: the caller is told "not stored", works the
value out again, and the new value replaces the old one on the next save.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ltosyms.index.encoding import Buffer, StoredValueError
from ltosyms.index.kinds import Kind, Placement
from ltosyms.index.store import IndexStore

if TYPE_CHECKING:
    from ltosyms.elf.image import KernelImage

log = logging.getLogger(__name__)

K = TypeVar("K")
T = TypeVar("T")

# Records queued before they are written without waiting for save(): a long stream of
# queries (symbolize reading stdin, a log of thousands of frames) keeps its answers as it goes.
FLUSH_EVERY = 512

# Stored rows kept decoded, so that a value asked for again is not read and decoded again
# (a log that prints one crash 85,000 times asks for its Code: analysis 85,000 times). The
# dict is emptied when it reaches this many, which bounds its memory on a stream of queries
# that never repeat.
DECODED_KEPT = 4096


class Answers:
    """Typed values of one image's index (see the module note)."""

    def __init__(self, store: IndexStore, image: KernelImage) -> None:
        self.store = store
        self.image = image
        # (stored kind name, key) -> (kind, key, record), in the order put.
        self._queued: dict[tuple[str, Any], tuple[Kind[Any, Any], Any, Any]] = {}
        self._replacing: set[tuple[str, Any]] = set()  # stored but undecodable: overwrite
        self._warned: set[str] = set()  # kinds already warned about
        self._decoded_kept: dict[tuple[str, Any], Any] = {}  # see DECODED_KEPT

    # -- reading -------------------------------------------------------------------------------

    def check_tables_ahead(self, kinds: Iterable[Kind[Any, Any]]) -> None:
        """Have the stored tables of ``kinds`` checked in the background, before their first
        use (see :meth:`IndexStore.check_tables_ahead`)."""
        self.store.check_tables_ahead(
            kind.stored_name for kind in kinds if kind.placement is Placement.TABLE
        )

    def get(self, kind: Kind[K, T], key: K) -> T | None:
        """The record stored for ``key`` (or queued), None when there is none (or it did not
        decode: it is then replaced by the next one put)."""
        known = self._known(kind, key)
        if known is not None:
            return known
        data = self._fetch(kind, key)
        decoded = None if data is None else self._decoded(kind, key, data)
        if decoded is not None and kind.placement is Placement.ROW:
            self._keep(kind, key, decoded)
        return decoded

    def _known(self, kind: Kind[K, T], key: K) -> T | None:
        """The record queued for ``key``, else the one kept decoded (see DECODED_KEPT)."""
        queued = self._queued.get((kind.stored_name, key))
        if queued is not None:
            value: T = queued[2]
            return value
        kept: T | None = self._decoded_kept.get((kind.stored_name, key))
        return kept

    def _keep(self, kind: Kind[K, T], key: K, value: T) -> None:
        if len(self._decoded_kept) >= DECODED_KEPT:
            self._decoded_kept.clear()
        self._decoded_kept[(kind.stored_name, key)] = value

    def get_many(self, kind: Kind[K, T], keys: Iterable[K]) -> dict[K, T]:
        """The records stored for any of ``keys``; units and rows are read in one query per
        500 (rows are then kept decoded, as :meth:`get` keeps them)."""
        if kind.placement is Placement.ROW:
            return self._get_rows(kind, keys)
        if kind.placement is not Placement.UNIT:
            found = {key: self.get(kind, key) for key in keys}
            return {key: value for key, value in found.items() if value is not None}
        wanted = list(keys)
        result: dict[K, T] = {}
        for key in wanted:
            queued = self._queued.get((kind.stored_name, key))
            if queued is not None:
                result[key] = queued[2]
        stored = self.store.get_many(_unit_offset(kind, key) for key in wanted if key not in result)
        by_offset = {_unit_offset(kind, key): key for key in wanted}
        for offset, data in stored.items():
            key = by_offset[offset]
            value = self._decoded(kind, key, data)
            if value is not None:
                result[key] = value
        return result

    def _get_rows(self, kind: Kind[K, T], keys: Iterable[K]) -> dict[K, T]:
        result: dict[K, T] = {}
        missing: dict[str, K] = {}
        for key in keys:
            known = self._known(kind, key)
            if known is not None:
                result[key] = known
            else:
                missing[_row_key(kind, key)] = key
        stored = self.store.get_derived_many(kind.stored_name, list(missing)) if missing else {}
        for row_key, data in stored.items():
            key = missing[row_key]
            value = self._decoded(kind, key, data)
            if value is not None:
                result[key] = value
                self._keep(kind, key, value)
        return result

    def _fetch(self, kind: Kind[K, T], key: K) -> Buffer | None:
        if kind.placement is Placement.UNIT:
            return self.store.get(_unit_offset(kind, key))
        if kind.placement is Placement.TABLE:
            return self.store.get_table(kind.stored_name)
        return self.store.get_derived(kind.stored_name, _row_key(kind, key))

    def _decoded(self, kind: Kind[K, T], key: K, data: Buffer) -> T | None:
        """The one place a stored value is decoded: one that does not is dropped."""
        try:
            return kind.decode(data, self.image)
        except StoredValueError as error:
            if kind.name not in self._warned:
                self._warned.add(kind.name)
                log.warning(
                    "index %s: a stored %s does not decode (%s); it is worked out again",
                    self.store.path,
                    kind.name,
                    error,
                )
            else:
                log.debug("index %s: stored %s %r dropped: %s", self.store.path, kind, key, error)
            self._replacing.add((kind.stored_name, key))
            return None

    def refuse(self, kind: Kind[K, T], key: K) -> None:
        """A stored value that decoded but its reader could not use (a stage above this layer
        makes its own record of it): it is no longer handed out, and the next put of ``key``
        replaces it, as one that does not decode is."""
        self._decoded_kept.pop((kind.stored_name, key), None)
        self._replacing.add((kind.stored_name, key))
        if kind.placement is Placement.TABLE:
            self.store.discard_table(kind.stored_name)  # a table file is read by later runs

    # -- writing -------------------------------------------------------------------------------

    def put(self, kind: Kind[K, T], key: K, value: T) -> None:
        """Queue ``value`` for ``key`` (written by :meth:`save`, or sooner when many are
        queued). Records are encoded when written: one still growing (a function's sweep) is
        written as it is then."""
        self._queued[(kind.stored_name, key)] = (kind, key, value)
        self._decoded_kept.pop((kind.stored_name, key), None)  # the value put is the one now
        if len(self._queued) >= FLUSH_EVERY:
            self.save()

    def save(self) -> None:
        """Write what is queued: rows and units in one transaction, then table files."""
        queued, self._queued = self._queued, {}
        rows: list[tuple[str, str, bytes]] = []
        units: list[tuple[int, bytes]] = []
        tables: list[tuple[str, bytes]] = []
        replacing_rows: list[tuple[str, str]] = []
        replacing_units: list[int] = []
        for (name, key), (kind, _key, value) in queued.items():
            try:
                data = kind.encode(value)
            except StoredValueError as error:
                log.debug("%s %r not stored: %s", name, key, error)
                continue
            replacing = (name, key) in self._replacing
            if kind.placement is Placement.UNIT:
                offset = _unit_offset(kind, key)
                units.append((offset, data))
                if replacing:
                    replacing_units.append(offset)
            elif kind.placement is Placement.TABLE:
                tables.append((name, data))  # a table file is always replaced whole
            else:
                row_key = _row_key(kind, key)
                rows.append((name, row_key, data))
                if replacing:
                    replacing_rows.append((name, row_key))
        self._replacing.clear()
        self.store.put_values(
            rows, units, replacing_rows=replacing_rows, replacing_units=replacing_units
        )
        for name, data in tables:
            self.store.put_table(name, data)

    def close(self) -> None:
        """Save, then close the index (the write-ahead log is folded into the file)."""
        self.save()
        self.store.stamp_tables_checked_ahead()
        self.store.close()

    def memo(self, kind: Kind[K, T]) -> KindMemo[K, T]:
        """The values of ``kind`` as a :class:`~ltosyms.stores.Memo`."""
        return KindMemo(self, kind)

    def __repr__(self) -> str:
        return f"Answers({self.store!r}, {len(self._queued)} queued)"


class KindMemo(Generic[K, T]):
    """The :class:`~ltosyms.stores.Memo` of one kind of an image's answers."""

    __slots__ = ("_answers", "_kind")

    def __init__(self, answers: Answers, kind: Kind[K, T]) -> None:
        self._answers = answers
        self._kind = kind

    def get(self, key: K) -> T | None:
        return self._answers.get(self._kind, key)

    def put(self, key: K, value: T) -> None:
        self._answers.put(self._kind, key, value)

    def get_many(self, keys: Iterable[K]) -> dict[K, T]:
        return self._answers.get_many(self._kind, keys)

    def refuse(self, key: K) -> None:
        self._answers.refuse(self._kind, key)


def _unit_offset(kind: Kind[K, T], key: K) -> int:
    offset = kind.key(key)
    assert isinstance(offset, int), f"{kind.stored_name} keys are unit offsets"
    return offset


def _row_key(kind: Kind[K, T], key: K) -> str:
    row_key = kind.key(key)
    assert isinstance(row_key, str), f"{kind.stored_name} keys are strings"
    return row_key
