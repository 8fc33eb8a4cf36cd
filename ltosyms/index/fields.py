"""Checked fields of stored values: what the codecs build records from.

A stored value is read back as plain Python values (marshalled tuples, packed columns). Each
helper here takes one field and gives it back only when it has the type or shape its codec
wrote, else raises :class:`~ltosyms.index.encoding.StoredValueError`; string columns are
written and read here too. :func:`checked_decoder` turns the errors a malformed field raises
elsewhere in a decoder into the same error.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING, TypeVar

from ltosyms.index.encoding import Buffer, StoredValueError

if TYPE_CHECKING:
    from ltosyms.elf.image import KernelImage

T = TypeVar("T")
Decode = Callable[[Buffer, "KernelImage"], T]


def checked_decoder(decode: Decode[T]) -> Decode[T]:
    """``decode`` with the errors a malformed field raises (a wrong type or count, an unknown
    enum value, a column of the wrong length) turned into :class:`StoredValueError`."""

    @wraps(decode)
    def checked(data: Buffer, image: KernelImage) -> T:
        try:
            return decode(data, image)
        except (TypeError, ValueError, IndexError, KeyError, OverflowError, struct.error) as error:
            raise StoredValueError(f"{decode.__name__}: {error}") from None

    return checked


def stored_int(value: object) -> int:
    if type(value) is not int:
        raise StoredValueError(f"a number was stored as {type(value).__name__}")
    return value


def stored_optional_int(value: object) -> int | None:
    return None if value is None else stored_int(value)


def stored_str(value: object) -> str:
    if type(value) is not str:
        raise StoredValueError(f"a string was stored as {type(value).__name__}")
    return value


def stored_optional_str(value: object) -> str | None:
    return None if value is None else stored_str(value)


def stored_bool(value: object) -> bool:
    if type(value) is not bool:
        raise StoredValueError(f"a flag was stored as {type(value).__name__}")
    return value


def stored_tuple(value: object, length: int | None = None) -> tuple[object, ...]:
    if type(value) is not tuple or (length is not None and len(value) != length):
        raise StoredValueError("a stored value has another shape")
    return value


def stored_pair(value: object) -> tuple[int, int]:
    first, second = stored_tuple(value, 2)
    return stored_int(first), stored_int(second)


def string_column(values: Sequence[str | None]) -> tuple[bytes, array[int]]:
    """Strings (without NUL, as DWARF and capstone give them) as one UTF-8 column, and the
    positions of the Nones among them."""
    text = "\0".join("" if value is None else value for value in values)
    return text.encode(), array("I", (i for i, value in enumerate(values) if value is None))


def strings_of_column(text: memoryview, nones: memoryview, count: int) -> tuple[str | None, ...]:
    values: list[str | None] = []
    if count:
        values.extend(str(text, "utf-8").split("\0"))
    if len(values) != count or (not count and len(text)):
        raise StoredValueError("a stored column holds another number of strings")
    for position in nones.cast("I"):
        values[position] = None
    return tuple(values)


def dictionary_column(
    values: Sequence[str | None], *, optional: bool = True
) -> tuple[bytes, array[int]]:
    """Strings (without NUL) as their distinct values, one UTF-8 column in the order first
    seen, each ended by a NUL, and per value the position of its string there: from 1 with
    0 for None in an ``optional`` column, from 0 in a column without None. A census' columns
    of units, files and nm letters hold a few hundred distinct strings among 20,000 values:
    read back, each is one string object, not one per value."""
    positions: dict[str | None, int] = {None: 0} if optional else {}
    indexes = array("I", (positions.setdefault(value, len(positions)) for value in values))
    if not optional and None in positions:
        raise StoredValueError("a None in a column of names")
    text = "".join(f"{value}\0" for value in positions if value is not None)
    if text.count("\0") != len(positions) - optional:
        raise StoredValueError("a string holding a NUL")  # read back, it would be two
    return text.encode(), indexes


def values_of_dictionary(
    text: memoryview, indexes: memoryview, count: int, *, optional: bool = True
) -> list[str | None]:
    """The ``count`` values :func:`dictionary_column` wrote, made in C (one lookup each)."""
    distinct: list[str | None] = [None] if optional else []
    distinct.extend(ended_strings(text))
    positions = indexes.cast("I")
    if len(positions) != count:
        raise StoredValueError("a stored column holds another number of strings")
    try:
        return list(map(distinct.__getitem__, positions))
    except IndexError:
        raise StoredValueError("a stored string position out of range") from None


def ended_strings(text: memoryview) -> list[str]:
    """The strings of a column each ended by a NUL."""
    strings = str(text, "utf-8").split("\0")
    if (
        strings.pop()
    ):  # what follows the last NUL: nothing, in a column :func:`dictionary_column` wrote
        raise StoredValueError("a stored column of strings is cut short")
    return strings
