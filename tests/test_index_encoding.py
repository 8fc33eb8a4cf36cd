"""The two byte layouts of stored values: bounded marshal and packed columns."""

from __future__ import annotations

import marshal
import random
import struct
import sys

import pytest

from ltosyms.index.encoding import (
    StoredValueError,
    dumps,
    loads,
    pack_columns,
    pack_flat,
    unpack_columns,
    unpack_flat,
)

VALUES = [
    None,
    True,
    (1, 2, 3),
    [1, "a", b"x", None],
    ("x" * 300, 2**70, -(2**100), -5, 0),
    (("shared", "shared"), ("shared", "other")),  # back-references
    tuple(range(1000)),
    ["é", "ü" * 500, ""],
    (),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_values_come_back(value: object) -> None:
    assert loads(dumps(value)) == value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # A list that claims 2**31 - 1 entries: marshal would allocate 16 GiB before reading.
        (b"[" + struct.pack("<i", 0x7FFF_FFFF), "claims 2147483647 items"),
        (b"(" + struct.pack("<i", -1), "claims -1 items"),
        (b"(" + struct.pack("<i", 5) + b"N", "claims 5 items"),
        (b"(" + struct.pack("<i", 2) + b"Ni\x01", "cut short"),
        # A bytes object that claims 2 GiB.
        (b"s" + struct.pack("<i", 0x7FFF_FFFF), "cut short"),
        (b"u" + struct.pack("<i", -3), "negative length"),
        (b"", "cut short"),
        (b"NN", "bytes after"),
        (marshal.dumps(1.5), "type code"),
        (marshal.dumps({1: 2}), "type code"),
        (b"r" + struct.pack("<i", 0), "refers to nothing"),
        (b"[\x01\x00\x00\x00" * 9 + b"N", "nests too deep"),
    ],
)
def test_hostile_streams_are_refused_before_marshal_reads_them(data: bytes, message: str) -> None:
    with pytest.raises(StoredValueError, match=message):
        loads(data)


def test_damaged_streams_raise_only_the_stored_value_error() -> None:
    # Derandomized: the same 20,000 damaged copies every run.
    rng = random.Random(20260517)
    original = dumps(((1, "abc", b"xyz", None, [1, 2, (3, 2**40)]),) * 3)
    refused = 0
    for _ in range(20_000):
        damaged = bytearray(original)
        for _change in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            loads(bytes(damaged))
        except StoredValueError:
            refused += 1
    assert refused > 10_000  # most damage shows; what does not is another well-formed value


def test_columns_come_back_in_place_and_aligned() -> None:
    columns = [b"12345", struct.pack("<QQ", 7, 2**64 - 1), b""]
    data = pack_columns((1, "x", None), columns)
    fields, found = unpack_columns(data, 3)
    assert fields == (1, "x", None)
    assert [bytes(view) for view in found] == columns
    assert all(view.obj is data for view in found)  # slices, not copies
    assert found[1].cast("Q").tolist() == [7, 2**64 - 1]
    assert all(data.index(column) % 8 == 0 for column in columns if column)


def test_damaged_columns_are_refused() -> None:
    data = pack_columns((1,), [b"12345678"])
    for cut in (3, len(data) - 8):
        with pytest.raises(StoredValueError, match=r"cut short|outside"):
            unpack_columns(data[:cut], 1)
    with pytest.raises(StoredValueError, match="bytes after"):
        unpack_columns(data + bytes(8), 1)
    with pytest.raises(StoredValueError, match="of 1 columns, not 2"):
        unpack_columns(data, 2)
    foreign = "big" if sys.byteorder == "little" else "little"
    header = dumps((foreign, (1,)))
    swapped = struct.pack("<I", len(header)) + header + struct.pack("<IQ", 1, 8)
    swapped += bytes(-len(swapped) % 8) + b"12345678"
    with pytest.raises(StoredValueError, match="byte order"):
        unpack_columns(swapped, 1)


FLAT = [
    ([], [], b""),
    ([0, None, 2**64 - 1], ["a", None, "", "é"], b"\x0f\x0b"),
    ([None], [None], b""),
    ([7] * 40, ["x" * 1000], bytes(300)),
    # Nones across many flag bytes, first and last of each kind among them.
    ([None, *range(1, 20_000), None], [None, *(["s"] * 20_000), None], b""),
    (
        [None if i % 3 else i for i in range(30_001)],
        ["t" if i % 5 else None for i in range(9)],
        b"r",
    ),
]


@pytest.mark.parametrize("record", FLAT, ids=range(len(FLAT)))
def test_flat_records_come_back(record: tuple[list[int | None], list[str | None], bytes]) -> None:
    assert unpack_flat(pack_flat(*record)) == record


def test_damaged_flat_records_are_refused() -> None:
    data = pack_flat([1, 2], ["ab", "cd"], b"xyz")
    header = struct.pack("<III", 0x7FFF_FFFF, 0, 0)  # claims 2**31 - 1 numbers
    for damaged, message in [
        (data[:5], "cut short"),
        (data[:20], "cut short"),
        (header, "cut short"),
        (data[:-3], "another number of strings"),
        (data + b"\0more", "another number of strings"),
        (data[:-1] + b"\xff", "not UTF-8"),
    ]:
        with pytest.raises(StoredValueError, match=message):
            unpack_flat(damaged)
