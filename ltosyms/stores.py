"""What the layers ask of a persistent store, in one place.

The on-disk index (:class:`ltosyms.index.store.IndexStore`) implements all three protocols;
the layers that keep data there (DWARF units, the symbol table, call sites, patch tables,
build facts, inline chains, ``Code:`` analyses) depend on these only, not on SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class DerivedStore(Protocol):
    """Small facts derived from one image, by kind (who wrote them, in which format, e.g.
    ``"call-site/1"``) and key. Writers compute the same bytes for a key: the first one kept
    wins."""

    def get_derived(self, kind: str, key: str) -> bytes | None: ...

    def put_derived(self, kind: str, items: Sequence[tuple[str, bytes]]) -> None: ...


class CuStore(Protocol):
    """Bytes by DWARF unit offset (negative keys: the DWARF layer's own whole-image tables)."""

    def get(self, cu_offset: int) -> bytes | None: ...

    def put(self, cu_offset: int, data: bytes) -> None: ...


class TableStore(Protocol):
    """Whole tables by kind, read back memory-mapped (the symbol table)."""

    def get_table(self, kind: str) -> memoryview | None: ...

    def put_table(self, kind: str, data: bytes) -> bool: ...


def remembered(
    store: DerivedStore | None,
    kind: str,
    key: str,
    make: Callable[[], T],
    encode: Callable[[T], bytes],
    decode: Callable[[bytes], T],
) -> T:
    """``make()``, or what an earlier run stored for ``(kind, key)``; a made answer is stored
    at once. ``decode`` raises :class:`ValueError` on bytes it does not know (then the answer
    is made again)."""
    if store is None:
        return make()
    stored = store.get_derived(kind, key)
    if stored is not None:
        try:
            return decode(stored)
        except ValueError as error:
            log.debug("stored %s %s ignored: %s", kind, key, error)
    answer = make()
    store.put_derived(kind, [(key, encode(answer))])
    return answer
