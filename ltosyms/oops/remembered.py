"""Texts read once: a report printed again and again (a WARN in a loop, one crash logged
thousands of times) repeats its header, IP, register, ``Code:`` and frame lines to the letter,
so what a line says is worked out once per text and kept (bounded: the last ``maxsize`` texts of
each kind, each at most :data:`REMEMBERED_TEXT` characters)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TypeVar

T = TypeVar("T")

# An x86 register line is about 65 characters, an IP line about 60, a header or CPU line 60-160,
# a Code: line 200-230. A longer text is read each time and never kept, so a log of long,
# ever-new lines holds no more than the memo's count of short ones.
REMEMBERED_TEXT = 240


def remembered_texts(maxsize: int) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """``read(text)`` worked out once per text of up to REMEMBERED_TEXT characters (the last
    ``maxsize`` kept). ``read`` must be a pure function of the text and return an immutable
    value: every caller of the same text gets the same object."""

    def remember(read: Callable[[str], T]) -> Callable[[str], T]:
        kept = lru_cache(maxsize=maxsize)(read)

        @wraps(read)
        def read_once(text: str) -> T:
            return kept(text) if len(text) <= REMEMBERED_TEXT else read(text)

        return read_once

    return remember
