"""What the stages ask of whatever keeps their answers: a typed memo, and nothing of bytes.

A stage that works out something expensive and fixed for a given image (a DWARF unit's
tables, the call instruction ending at a return address, an inline chain) is handed a
:class:`Memo` of its records and asks it first. The on-disk index gives each image's stages
memos over its stored kinds (:meth:`ltosyms.index.Answers.memo`); :class:`MemoryMemo` keeps
records in a dict for the life of the process. The stages never see a key encoding, a byte,
a kind name or SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K")
T = TypeVar("T")


class Memo(Protocol[K, T]):
    """Records of type ``T`` by key ``K``. Writers make the same record for a key: the first
    one kept wins. A memo may forget (or never keep) anything: None means "work it out"."""

    def get(self, key: K) -> T | None:
        """The record kept for ``key``, None when there is none."""
        ...

    def put(self, key: K, value: T) -> None:
        """Keep ``value`` for ``key`` (unless one is kept already)."""
        ...

    def get_many(self, keys: Iterable[K]) -> dict[K, T]:
        """The records kept for any of ``keys`` (the others are left out)."""
        ...

    def refuse(self, key: K) -> None:
        """The record kept for ``key`` could not be used by its reader (it made no record of
        the stage's own): the next :meth:`put` replaces it."""
        ...


class MemoryMemo(Generic[K, T]):
    """A :class:`Memo` in a dict: records kept for the life of the process; with ``limit``,
    emptied when it holds that many (memory bounded on a stream of keys that never repeat)."""

    def __init__(self, limit: int | None = None) -> None:
        self.records: dict[K, T] = {}
        self.limit = limit

    def get(self, key: K) -> T | None:
        return self.records.get(key)

    def put(self, key: K, value: T) -> None:
        if self.limit is not None and len(self.records) >= self.limit:
            self.records.clear()
        self.records.setdefault(key, value)

    def get_many(self, keys: Iterable[K]) -> dict[K, T]:
        records = self.records
        return {key: records[key] for key in keys if key in records}

    def refuse(self, key: K) -> None:
        self.records.pop(key, None)


def remembered(memo: Memo[K, T] | None, key: K, make: Callable[[], T]) -> T:
    """The record ``memo`` keeps for ``key``, else ``make()`` (then kept there)."""
    if memo is None:
        return make()
    value = memo.get(key)
    if value is None:
        value = make()
        memo.put(key, value)
    return value
