"""The byte layout of a whole-image table: a header, then named columns read in place.

A table is a few dozen fixed-width integer columns (and byte strings, as ``B`` columns) that a
reader maps and casts (``memoryview.cast``): opening one parses a header of a few hundred
bytes and nothing else; no value is converted, copied or inflated. The symbol table file of
the index is laid out the same way (:meth:`ltosyms.elf.symtab.SymbolTable.to_bytes`).

Layout (integers in the header little-endian; columns in the byte order of the machine that
wrote them, which the header names: a table is a cache, never exchanged between machines)::

    offset  size
    0       8     magic b"ltosyms\\x00"
    8       2     layout version (LAYOUT_VERSION)
    10      1     byte order of the columns: 1 little, 2 big
    11      1     0
    12      4     CRC-32 (zlib) of every byte from offset 16 to the end
    16      8     total size in bytes (a truncated or extended buffer is refused)
    24      4     column count
    28      2     length of the kind, 2  length of the image key
    32      ...   kind (ASCII: what the table holds, with its format), image key (ASCII),
                  zero-padded to a multiple of 8
    then    48    per column: name (24 bytes, NUL-padded ASCII), type code (1 byte: one of
                  B H I Q), 7 zero bytes, offset from the start of the buffer (8), value count (8)
    then          the columns, each starting at a multiple of 8

The CRC covers the directory and every column, and the 16 bytes before it must be exactly
what this layout writes: a flipped byte anywhere is refused on open (ltosyms issue 17: a
damaged mapped table must never give wrong answers silently). zlib's CRC-32 runs at GB/s:
checking all 27.6 MB of the Debian 6.1 vmlinux's address table on every open takes 7-20 ms on
a loaded 2-core machine (bench/bench_table.py), next to the ~100 ms the interpreter takes to
start, so the whole table is checked each time rather than per column on first touch.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from ltosyms.errors import CacheError

__all__ = ["LAYOUT_VERSION", "Column", "StoredColumns", "pack_columns", "read_columns", "require"]

LAYOUT_VERSION = 1
_MAGIC = b"ltosyms\x00"
_FIXED = struct.Struct("<8sHBBIQIHH")  # magic .. key length: 32 bytes
_ENTRY = struct.Struct("<24sc7xQQ")  # one column of the directory: 48 bytes
_CHECKED_FROM = 16  # the CRC covers the bytes from here on
_BYTE_ORDERS = {"little": 1, "big": 2}
_TYPECODES = frozenset("BHIQ")
_NAME_BYTES = 24

# A column as a table holds it: built (array) or read from a buffer (memoryview, cast).
Column: TypeAlias = "array[int] | memoryview"


def pack_columns(kind: str, image_key: str, columns: Sequence[tuple[str, Column]]) -> bytes:
    """The bytes of a table of ``kind`` for the image ``image_key``: ``columns`` in order,
    each an array (or a memoryview cast to one of the type codes B, H, I, Q)."""
    kind_bytes = kind.encode("ascii")
    key_bytes = image_key.encode("ascii")
    names = kind_bytes + key_bytes
    names += bytes(-len(names) % 8)
    directory_start = _FIXED.size + len(names)
    cursor = directory_start + _ENTRY.size * len(columns)
    entries: list[bytes] = []
    parts: list[bytes] = []
    for name, values in columns:
        code = values.typecode if isinstance(values, array) else values.format
        encoded = name.encode("ascii")
        if code not in _TYPECODES or len(encoded) > _NAME_BYTES:
            raise ValueError(f"column {name!r} of type {code!r} cannot be stored")
        raw = values.tobytes()
        entries.append(_ENTRY.pack(encoded, code.encode("ascii"), cursor, len(values)))
        parts.append(raw + bytes(-len(raw) % 8))
        cursor += len(parts[-1])
    body = b"".join([*entries, *parts])
    unchecked = _FIXED.pack(
        _MAGIC,
        LAYOUT_VERSION,
        _BYTE_ORDERS[sys.byteorder],
        0,
        0,
        cursor,
        len(columns),
        len(kind_bytes),
        len(key_bytes),
    )
    checked = unchecked[_CHECKED_FROM:] + names + body
    crc = zlib.crc32(checked)
    return unchecked[:12] + struct.pack("<I", crc) + checked


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredColumns:
    """A table read from a buffer: the image it was made for and its columns, each a
    memoryview of the buffer cast to its type."""

    image_key: str
    columns: dict[str, memoryview]


def read_columns(
    buffer: Any, kind: str, image_key: str | None = None, *, checksum: bool = True
) -> StoredColumns:
    """The table in ``buffer`` (bytes or a memory map); nothing is copied. Raises
    :class:`CacheError` unless the buffer holds one whole, undamaged table of ``kind`` (for
    ``image_key``, when given) in this layout. ``checksum=False`` leaves the CRC-32 to a
    caller that checked these very bytes already (the index, when it maps a table file)."""
    view = memoryview(buffer)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    if len(view) < _FIXED.size:
        raise CacheError(f"{kind} table: {len(view)} bytes is too short for a table")
    fields = _FIXED.unpack_from(view)
    magic, version, order, reserved, crc, total, count, kind_length, key_length = fields
    if magic != _MAGIC:
        raise CacheError(f"{kind} table: not an ltosyms table")
    # The bytes before the checksummed part must be exactly these: any other value is refused.
    if version != LAYOUT_VERSION or order != _BYTE_ORDERS[sys.byteorder] or reserved:
        raise CacheError(
            f"{kind} table: layout {version} of byte order {order}, this ltosyms reads layout "
            f"{LAYOUT_VERSION} of byte order {_BYTE_ORDERS[sys.byteorder]}"
        )
    if total != len(view):
        raise CacheError(f"{kind} table: {len(view)} bytes where the header says {total}")
    if checksum and zlib.crc32(view[_CHECKED_FROM:]) != crc:
        raise CacheError(f"{kind} table: damaged (checksum mismatch)")
    # From here on the bytes are the ones written: what is checked is whether they are ours.
    names = bytes(view[_FIXED.size : _FIXED.size + kind_length + key_length])
    stored_kind = names[:kind_length].decode("ascii", "replace")
    stored_key = names[kind_length:].decode("ascii", "replace")
    if stored_kind != kind:
        raise CacheError(f"{kind} table: holds a {stored_kind!r} table")
    if image_key is not None and stored_key != image_key:
        raise CacheError(f"{kind} table: made for image {stored_key}, not {image_key}")
    directory = _FIXED.size + kind_length + key_length
    directory += -directory % 8
    columns: dict[str, memoryview] = {}
    for index in range(count):
        raw_name, code, start, length = _ENTRY.unpack_from(view, directory + index * _ENTRY.size)
        typecode = code.decode("ascii", "replace")
        name = raw_name.rstrip(b"\0").decode("ascii", "replace")
        end = start + length * struct.calcsize(typecode) if typecode in _TYPECODES else -1
        if typecode not in _TYPECODES or start % 8 or not 0 <= start <= end <= total:
            raise CacheError(f"{kind} table: column {name!r} does not fit the table")
        columns[name] = view[start:end].cast(typecode)
    return StoredColumns(image_key=stored_key, columns=columns)


def require(columns: Mapping[str, memoryview], kind: str, names: Sequence[str]) -> None:
    """Raise :class:`CacheError` unless ``columns`` has every one of ``names``."""
    missing = [name for name in names if name not in columns]
    if missing:
        raise CacheError(f"{kind} table: no column {', '.join(missing)}")
