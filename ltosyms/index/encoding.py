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

import itertools
import marshal
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeAlias, TypeVar

from ltosyms.errors import CacheError

Buffer: TypeAlias = bytes | bytearray | memoryview
Column: TypeAlias = "Buffer | array[Any]"  # what pack_columns takes: anything with a buffer
T = TypeVar("T")


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


# -- flat records ------------------------------------------------------------------------------

_FLAT_HEADER = struct.Struct("<III")  # how many numbers, texts, and bytes of the blob


def pack_flat(
    numbers: Sequence[int | None], texts: Sequence[str | None], blob: bytes = b""
) -> bytes:
    """A record of unsigned 64-bit numbers, strings without NUL characters, and bytes, each
    number and string possibly None: what the answers asked for most often (inline chains,
    call sites) are read back with two C calls and no walk.

    Layout: the three counts, a bit per number and string that is None, the numbers
    (little-endian u64), the blob, then the strings in UTF-8 joined by NUL."""
    flags = bytearray((len(numbers) + len(texts) + 7) // 8)
    for position, value in enumerate((*numbers, *texts)):
        if value is None:
            flags[position // 8] |= 1 << (position % 8)
    return b"".join(
        [
            _FLAT_HEADER.pack(len(numbers), len(texts), len(blob)),
            flags,
            struct.pack(f"<{len(numbers)}Q", *(0 if n is None else n for n in numbers)),
            blob,
            "\0".join("" if text is None else text for text in texts).encode(),
        ]
    )


def unpack_flat(data: Buffer) -> tuple[list[int | None], list[str | None], bytes]:
    """The numbers, strings and blob :func:`pack_flat` wrote; :class:`StoredValueError` for
    anything else."""
    try:
        count, text_count, blob_size = _FLAT_HEADER.unpack_from(data)
    except struct.error:
        raise StoredValueError("a stored record is cut short") from None
    start = _FLAT_HEADER.size
    flags_size = (count + text_count + 7) // 8
    text_start = start + flags_size + 8 * count + blob_size
    if text_start > len(data):
        raise StoredValueError("a stored record is cut short")
    flags = bytes(data[start : start + flags_size])
    start += flags_size
    numbers: list[int | None] = list(struct.unpack_from(f"<{count}Q", data, start))
    start += 8 * count
    blob = bytes(data[start : start + blob_size])
    try:
        text = str(data[text_start:], "utf-8")
    except UnicodeDecodeError:
        raise StoredValueError("a stored record's text is not UTF-8") from None
    texts: list[str | None] = []
    if text_count:
        texts.extend(text.split("\0"))
    if len(texts) != text_count or (not text_count and text):
        raise StoredValueError("a stored record holds another number of strings")
    # A byte at a time: one Python int of all the flags would make each step cost its length.
    for byte_at, byte in enumerate(flags):
        if not byte:
            continue
        for bit in range(8):
            if not byte >> bit & 1:
                continue
            position = 8 * byte_at + bit
            if position < count:
                numbers[position] = None
            elif position < count + text_count:
                texts[position - count] = None
            else:
                raise StoredValueError("a stored record marks a field it does not have")
    return numbers, texts, blob


# -- columns -------------------------------------------------------------------------------------

_SIZE = struct.Struct("<I")


def pack_columns(fields: tuple[object, ...], columns: Sequence[Column]) -> bytes:
    """``fields`` (a small tuple, see :func:`dumps`) and raw ``columns``, in an order the
    caller keeps.

    Layout: the header's length, the header (byte order and ``fields``), the number of columns
    and each one's length (u64), padding to 8 bytes, then the columns, each padded to 8
    bytes: a column cast to a machine array in place is aligned for it."""
    header = dumps((sys.byteorder, fields))
    raws = [bytes(column) for column in columns]
    lengths = struct.pack(f"<I{len(raws)}Q", len(raws), *(len(raw) for raw in raws))
    prefix = _SIZE.pack(len(header)) + header + lengths
    parts = [prefix, bytes(-len(prefix) % 8)]
    for raw in raws:
        parts += [raw, bytes(-len(raw) % 8)]
    return b"".join(parts)


def unpack_columns(data: Buffer, count: int) -> tuple[tuple[object, ...], list[memoryview]]:
    """The fields and the ``count`` columns (slices of ``data``, not copies) that
    :func:`pack_columns` wrote; :class:`StoredValueError` for anything else."""
    view = memoryview(data)
    try:
        (size,) = _SIZE.unpack_from(view)
        start = _SIZE.size + size
        header = loads(view[_SIZE.size : start]) if start <= len(view) else None
        (found,) = _SIZE.unpack_from(view, start)
        if found != count:
            raise StoredValueError(f"a stored table of {found} columns, not {count}")
        lengths = struct.unpack_from(f"<{count}Q", view, start + _SIZE.size)
    except struct.error:
        raise StoredValueError("a stored table is cut short") from None
    if not isinstance(header, tuple) or len(header) != 2 or not isinstance(header[1], tuple):
        raise StoredValueError("not a stored table")
    byteorder, fields = header
    if byteorder != sys.byteorder:
        raise StoredValueError(f"a stored table in {byteorder} byte order")
    start += _SIZE.size + 8 * count
    start += -start % 8
    columns = []
    for length in lengths:
        if start + length > len(view):
            raise StoredValueError("a stored table's columns lie outside it")
        columns.append(view[start : start + length])
        start += length + -length % 8
    if start != len(view):
        raise StoredValueError("bytes after a stored table")
    return fields, columns


def cut_runs(values: Iterable[T], counts: Iterable[int]) -> Iterator[tuple[T, ...]]:
    """``values`` (a column holding the runs of many records one after the other) cut into
    consecutive tuples of ``counts`` entries each, without Python code per run; the caller
    checks that the counts add up to the column's length."""
    shared = iter(values)
    return map(tuple, map(itertools.islice, itertools.repeat(shared), counts))
