"""Answers about an image kept in its index, by kind and key: asked for first, made and stored
when missing.

What a decode derives from machine code (the listing of a ``Code:`` line, its comparison with
the image) is a pure function of the image and of the printed bytes. A triage pipeline decodes
the same crash many times; with the answers stored, a warm decode needs no disassembler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ltosyms.stores import DerivedStore

log = logging.getLogger(__name__)

T = TypeVar("T")


def remembered(
    store: DerivedStore | None,
    kind: str,
    key: str,
    make: Callable[[], T],
    encode: Callable[[T], bytes],
    decode: Callable[[bytes], T],
) -> T:
    """``make()``, or what an earlier run stored for ``(kind, key)``. ``decode`` raises
    :class:`ValueError` on bytes it does not know (then the answer is made again)."""
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
