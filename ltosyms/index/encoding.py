"""How stored values are laid out in bytes: the one module that imports :mod:`marshal`.

Two layouts, both read back without trusting the bytes (an index file is input: a damaged or
hostile row may pass its CRC when whoever wrote it computed the CRC too):

- :func:`dumps` / :func:`loads`: small values (tuples of numbers, strings, bytes, None) as
  :mod:`marshal` writes them. marshal allocates what a count in the stream claims before it
  reads the items (a list that claims 2**31 - 1 entries is 16 GiB), so :func:`loads` first
  walks the stream and checks that every count fits in the bytes that follow.
- :func:`pack_columns` / :func:`unpack_columns`: large values (the symbol table, DWARF units,
  patch tables) as a small marshalled header and raw machine arrays, each 8-byte aligned, read
  back in place (memoryview slices: nothing is copied until a codec casts or copies a column).

Both raise :class:`StoredValueError` for bytes they do not accept, and nothing else.
"""

from __future__ import annotations

import marshal
import struct
import sys
from collections.abc import Sequence
from typing import Any, TypeAlias

from ltosyms.errors import CacheError

Buffer: TypeAlias = bytes | bytearray | memoryview


class StoredValueError(CacheError):
    """Stored bytes that are not a value of their kind (damaged, foreign or hostile); the
    value is dropped and worked out again."""


# -- marshal, bounded --------------------------------------------------------------------------

# marshal's type codes (Python/marshal.c, format version 4). Only what the codecs write is
# accepted: no code objects, no floats, no dicts.
_FLAG_REF = 0x80
_NO_PAYLOAD = frozenset(b"NFT")  # None, False, True
_INT32 = ord("i")
_LONG = ord("l")  # a count of 15-bit digits (its sign is the number's), 2 bytes each
_SIZED = frozenset(b"stuaA")  # bytes, interned/unicode/ascii strings: int32 length
_SHORT_SIZED = frozenset(b"zZ")  # short ascii strings: one-byte length
_SEQUENCES = frozenset(b"([")  # tuple, list: int32 count
_SMALL_TUPLE = ord(")")  # one-byte count
_REFERENCE = ord("r")  # int32 index of an object read before
# Containers nest this deep at most in the values the codecs write (a Code: analysis holds a
# listing of instructions: three levels).
_MAX_DEPTH = 8
_COUNT = struct.Struct("<i")


def dumps(value: Any) -> bytes:
    """``value`` (None, bool, int, str, bytes, and tuples or lists of them) as :func:`loads`
    reads it back."""
    return marshal.dumps(value)


def loads(data: Buffer) -> object:
    """The value :func:`dumps` wrote; :class:`StoredValueError` unless ``data`` is one whole
    value of the accepted types whose every count fits in its bytes."""
    _check_stream(data)
    try:
        return marshal.loads(data)
    except (EOFError, ValueError, TypeError) as error:
        raise StoredValueError(f"not a stored value ({error})") from None


def _check_stream(data: Buffer) -> None:
    """Walk the marshal stream without building anything: every length and count must fit in
    what is left of ``data``, every back-reference must name an object already read, and the
    stream must end where ``data`` ends."""
    end = len(data)
    position = 0
    references = 0
    pending = [1]  # items still to read in each open container, outermost first
    try:
        while pending:
            if not pending[-1]:
                pending.pop()
                continue
            pending[-1] -= 1
            code = data[position]
            position += 1
            if code & _FLAG_REF:
                references += 1
                code &= ~_FLAG_REF
            if code in _NO_PAYLOAD:
                continue
            if code == _INT32:
                position += 4
            elif code == _LONG:
                (digits,) = _COUNT.unpack_from(data, position)
                position += 4 + 2 * abs(digits)
            elif code in _SIZED:
                (length,) = _COUNT.unpack_from(data, position)
                if length < 0:
                    raise StoredValueError("negative length in a stored value")
                position += 4 + length
            elif code in _SHORT_SIZED:
                position += 1 + data[position]
            elif code in _SEQUENCES or code == _SMALL_TUPLE:
                if code == _SMALL_TUPLE:
                    count = data[position]
                    position += 1
                else:
                    (count,) = _COUNT.unpack_from(data, position)
                    position += 4
                # Each item takes one byte at least: a count beyond that is a lie.
                if not 0 <= count <= end - position:
                    raise StoredValueError(f"a stored value claims {count} items")
                if len(pending) >= _MAX_DEPTH:
                    raise StoredValueError("a stored value nests too deep")
                pending.append(count)
            elif code == _REFERENCE:
                (index,) = _COUNT.unpack_from(data, position)
                position += 4
                if not 0 <= index < references:
                    raise StoredValueError("a stored value refers to nothing")
            else:
                raise StoredValueError(f"type code {code:#x} in a stored value")
            if position > end:
                raise StoredValueError("a stored value is cut short")
    except (IndexError, struct.error):
        raise StoredValueError("a stored value is cut short") from None
    if position != end:
        raise StoredValueError("bytes after a stored value")


# -- columns -------------------------------------------------------------------------------------

_HEADER_SIZE = struct.Struct("<I")


def pack_columns(fields: tuple[object, ...], columns: Sequence[tuple[str, Buffer]]) -> bytes:
    """``fields`` (a small tuple, see :func:`dumps`) and named raw ``columns``.

    Layout: a 4-byte header length, the header (byte order, ``fields``, and where each column
    lies), padding to 8 bytes, then the columns, each padded to 8 bytes: a column cast to a
    machine array in place is aligned for it."""
    places: list[tuple[str, int, int]] = []
    parts: list[bytes] = []
    cursor = 0
    for name, column in columns:
        raw = bytes(column)
        places.append((name, cursor, len(raw)))
        padding = -len(raw) % 8
        parts.append(raw + bytes(padding))
        cursor += len(raw) + padding
    header = dumps((sys.byteorder, fields, tuple(places)))
    padding = -(_HEADER_SIZE.size + len(header)) % 8
    return b"".join([_HEADER_SIZE.pack(len(header)), header, bytes(padding), *parts])


def unpack_columns(data: Buffer) -> tuple[tuple[object, ...], dict[str, memoryview]]:
    """The fields and the columns (slices of ``data``, not copies) :func:`pack_columns` wrote;
    :class:`StoredValueError` for anything else."""
    view = memoryview(data)
    try:
        (size,) = _HEADER_SIZE.unpack_from(view)
    except struct.error:
        raise StoredValueError("a stored table is cut short") from None
    start = _HEADER_SIZE.size
    if size > len(view) - start:
        raise StoredValueError("a stored table is cut short")
    header = loads(view[start : start + size])
    if not isinstance(header, tuple) or len(header) != 3:
        raise StoredValueError("not a stored table")
    byteorder, fields, places = header
    if byteorder != sys.byteorder:
        raise StoredValueError(f"a stored table in {byteorder} byte order")
    if not isinstance(fields, tuple) or not isinstance(places, tuple):
        raise StoredValueError("not a stored table")
    start += size
    body = view[start + -start % 8 :]
    columns: dict[str, memoryview] = {}
    for place in places:
        if not (isinstance(place, tuple) and len(place) == 3):
            raise StoredValueError("not a stored table")
        name, offset, length = place
        if not (
            isinstance(name, str)
            and isinstance(offset, int)
            and isinstance(length, int)
            and offset >= 0
            and length >= 0
            and offset + length <= len(body)
        ):
            raise StoredValueError("a stored table's columns lie outside it")
        columns[name] = body[offset : offset + length]
    return fields, columns
