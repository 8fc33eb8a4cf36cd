"""The address table answers every lookup as the per-unit resolver does, and refuses bad bytes.

For each image, the reference is today's resolver: units parsed one at a time, as asked. The
table is made from the same units (parsed once: the reference's), turned into bytes and read
back from them, and must give the same inline chain (outermost entry named from the ELF
symbols), function, function ranges, unit and compilation unit at every address of a sample:
the start of 4,000 functions spread over the image and every call's return address minus one
in them (the bl on arm64), a seeded random spread over and around the code, the edges of
1,000 ranges of the unit map; for modules and the sample images, every byte of their code.
The resolver answering from the table must never open the DWARF.
"""

from __future__ import annotations

import mmap
import random
import struct
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import capstone
import pytest
from conftest import SAMPLES, SMALL_KERNELS, Corpus

from ltosyms.disasm import CallSiteFinder, Sweep
from ltosyms.dwarf import (
    ADDRESS_TABLE_KIND,
    AddressTable,
    AddressTableBuilder,
    DwarfResolver,
    UnitParser,
    chain_map,
)
from ltosyms.dwarf.table_layout import pack_columns, read_columns
from ltosyms.dwarf.unit_map import CuMap
from ltosyms.dwarf.unit_tables import CuData
from ltosyms.elf.debug_sections import dwarf_resolver, dwarf_sections
from ltosyms.elf.image import KernelImage, open_image
from ltosyms.elf.symtab import Symbol, SymbolTable
from ltosyms.errors import CacheError
from ltosyms.stores import MemoryMemo

KEY = "image-key"


def table_of(reference: DwarfResolver, order: Iterable[int] | None = None) -> AddressTable:
    """The table of every unit the reference resolver has (parsing those it has not yet),
    added in ``order`` (default: .debug_info order), through its bytes."""
    builder = AddressTableBuilder(KEY)
    for cu_offset in order if order is not None else reference.unit_offsets():
        builder.add(reference.cu_data(cu_offset))
    return AddressTable.from_buffer(builder.table(reference.cu_map).to_bytes(), KEY)


def code_sections(image: KernelImage) -> list[tuple[int, int]]:
    return [
        (section.link_address, section.end_address)
        for section in image.sections
        if section.is_alloc and section.is_exec and section.size
    ]


def spread(values: list[int], count: int) -> list[int]:
    """At most about ``count`` of ``values``, evenly spread."""
    return values[:: max(len(values) // count, 1)]


def call_lookup_addresses(image: KernelImage, functions: list[Symbol]) -> list[int]:
    """Where a return-address frame of every call in ``functions`` is looked up: the return
    address - 1 on x86 (%pB), the bl itself on arm64 (capstone, function by function)."""
    arm64 = image.machine == "aarch64"
    disassembler = (
        capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        if arm64
        else capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    )
    found = []
    for function in functions:
        code = image.read(function.link_address, function.elf_size)
        for address, size, mnemonic, _operands in disassembler.disasm_lite(
            code, function.link_address
        ):
            if mnemonic.startswith("call") or mnemonic in ("bl", "blr"):
                found.append(address if arm64 else address + size - 1)
    return found


def sample(
    image: KernelImage, symbols: SymbolTable, reference: DwarfResolver, count: int
) -> list[int]:
    """The start of ``count`` functions and every call in them, 5,000 seeded random addresses
    over and around the code, the edges of ``count`` // 4 ranges of the unit map: each
    evenly spread over the image."""
    functions = sampled_functions(image, symbols, count)
    addresses = {s.link_address for s in functions}
    addresses.update(call_lookup_addresses(image, functions))
    sections = code_sections(image)
    low = min(start for start, _ in sections) - 0x1000
    high = max(end for _, end in sections) + 0x1000
    seeded = random.Random(15)
    addresses.update(seeded.randrange(low, high) for _ in range(5000))
    cu_map = reference.cu_map
    edges = list(zip(cu_map.starts, cu_map.ends, strict=True))
    for start, end in spread(edges, count // 4):
        addresses.update((start - 1, start, end - 1, end))
    return sorted(address for address in addresses if address >= 0)


def sampled_functions(image: KernelImage, symbols: SymbolTable, count: int) -> list[Symbol]:
    """About ``count`` functions with code, evenly spread over the image."""
    return spread(
        sorted(
            (
                s
                for s in symbols
                if s.is_function and s.elf_size and image.section_at(s.link_address) is not None
            ),
            key=lambda s: s.link_address,
        ),
        count,
    )


def calls_found_from_row_starts(
    image: KernelImage, symbols: SymbolTable, table: AddressTable, functions: list[Symbol]
) -> tuple[int, int]:
    """Find the call ending at the return address of every call in ``functions`` twice: by
    the sweep from its function's start, and from the start of the table's line-table row
    that holds it (``CallSiteFinder``'s ``row_start``); each must be the same call site.
    (calls compared, functions the second finder swept from their start after all)."""
    swept = CallSiteFinder(image, symbols=symbols)
    sweeps: MemoryMemo[int, Sweep] = MemoryMemo()
    from_rows = CallSiteFinder(image, symbols=symbols, sweeps=sweeps, row_start=table.row_start)
    calls = 0
    for function in functions:
        for lookup in call_lookup_addresses(image, [function]):
            return_address, start = lookup + 1, function.link_address
            expected = swept.call_ending_at(return_address, start)
            got = from_rows.call_ending_at(return_address, start)
            assert got == expected, f"{return_address:#x}: {got} != {expected}"
            calls += 1
    return calls, len(sweeps.records)


def every_code_byte(image: KernelImage) -> list[int]:
    return [address for start, end in code_sections(image) for address in range(start - 1, end + 1)]


def differences(reference: DwarfResolver, table: AddressTable, addresses: list[int]) -> list[str]:
    """Each address where the resolver answering from ``table`` differs from ``reference``."""
    answering = DwarfResolver(reference.sections, outer_name=reference.outer_name, table=table)
    found = []
    for address in addresses:
        expected = (
            reference.locations(address),
            reference.function_at(address),
            reference.function_ranges(address),
            reference.cu_for(address),
        )
        got = (
            answering.locations(address),
            answering.function_at(address),
            answering.function_ranges(address),
            answering.cu_for(address),
        )
        if got != expected:
            found.append(f"{address:#x}: {got} != {expected}")
    many = answering.locations_many(addresses)
    found.extend(
        f"{address:#x}: locations_many differs"
        for address in addresses
        if many[address] != reference.locations(address)
    )
    for start in reference.cu_map.starts:
        if answering.compile_unit(start) != reference.compile_unit(start):
            found.append(f"compile unit at {start:#x}: {answering.compile_unit(start)}")
    assert not answering.dwarf_opened
    return found


def same_units(reference: DwarfResolver, table: AddressTable) -> list[str]:
    """Units whose every column, name and path in the table differs from the parsed unit."""
    found = []
    for cu_offset in reference.unit_offsets():
        parsed, stored = reference.cu_data(cu_offset), table.unit(cu_offset)
        fields = ("name", "comp_dir", "producer_is_clang", "address_base")
        sequences = ("full_paths", "relative_paths", "file_numbers", "names", *CuData.ARRAY_FIELDS)
        if any(getattr(parsed, f) != getattr(stored, f) for f in fields) or any(
            not same_values(getattr(parsed, f), getattr(stored, f)) for f in sequences
        ):
            found.append(f"{cu_offset:#x}")
    return found


def same_values(one: Sequence[object], two: Sequence[object]) -> bool:
    """Two columns hold the same values: arrays of one item type compared as bytes (in C; a
    Debian vmlinux has millions of entries), anything else value by value."""
    if isinstance(one, array | memoryview) and isinstance(two, array | memoryview):
        first, second = memoryview(one), memoryview(two)
        if first.format == second.format:
            return first.tobytes() == second.tobytes()
    return list(one) == list(two)


@dataclass(frozen=True, kw_only=True)
class Checked:
    """What :func:`check_image` compared."""

    addresses: int  # looked up in the table and by the per-unit resolver
    with_lines: int  # of them, those with source lines
    calls: int  # x86: calls whose site was found from row starts too
    swept: int  # of their functions, those swept from the start all the same


def check_image(path: Path, exhaustive: bool, count: int = 4_000) -> Checked:
    """Compare the table of the image at ``path`` with its per-unit resolver, and the call
    sites found from its row starts with those of function sweeps (every function of an
    ``exhaustive`` check, else those of the sample)."""
    with open_image(path) as image:
        symbols = SymbolTable(image)
        reference = dwarf_resolver(image, symbols)
        addresses = (
            every_code_byte(image) if exhaustive else sample(image, symbols, reference, count)
        )
        table = table_of(reference)
        assert table.unit_offsets() == reference.unit_offsets()
        assert same_units(reference, table) == []
        assert differences(reference, table, addresses) == []
        calls = swept = 0
        if image.machine == "x86_64":
            functions = sampled_functions(image, symbols, len(symbols) if exhaustive else count)
            calls, swept = calls_found_from_row_starts(image, symbols, table, functions)
        return Checked(
            addresses=len(addresses),
            with_lines=sum(1 for address in addresses if reference.locations(address)),
            calls=calls,
            swept=swept,
        )


SAMPLE_IMAGES = sorted(
    p.name for p in SAMPLES.iterdir() if p.name.startswith("vmlinux-") or p.suffix == ".ko"
)


# Calls of every function of each sample image: each found from its line-table row start as
# the function sweep finds it (no function swept from its start).
SAMPLE_CALLS = {
    "sample_mod-clang.ko": 10,
    "sample_mod-gcc.ko": 13,
    "vmlinux-clang": 67,
    "vmlinux-clang-lto": 54,
    "vmlinux-clang-thinlto": 62,
    "vmlinux-gcc": 62,
    "vmlinux-gcc-lto": 55,
}


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_sample_images_answer_alike_at_every_code_byte(name: str) -> None:
    checked = check_image(SAMPLES / name, exhaustive=True)
    assert checked.with_lines > checked.addresses // 2
    assert (checked.calls, checked.swept) == (SAMPLE_CALLS[name], 0)


# (calls of the sampled functions, functions swept from their start because a call's row
# starts before the function: gcc's `.cold` parts continue the row of the code before them)
KERNEL_CALLS = {
    "clang-thinlto": (16_182, 0),
    "clang-nolto": (17_019, 0),
    "gcc-nolto": (16_675, 6),
    "arm64-clang-thinlto": (0, 0),  # fixed width: the word before the return address
    "clang-thinlto-6.12": (17_419, 0),
    "gcc-lto": (15_424, 5),
}


@pytest.mark.slow
@pytest.mark.parametrize("kernel", SMALL_KERNELS)
def test_corpus_kernels_answer_alike(corpus: Corpus, kernel: str) -> None:
    checked = check_image(corpus.kernel_vmlinux(kernel), exhaustive=False)
    assert checked.addresses > 20_000 and checked.with_lines > checked.addresses // 2
    assert (checked.calls, checked.swept) == KERNEL_CALLS[kernel]


def corpus_modules(corpus: Corpus) -> list[Path]:
    return [corpus.kernels / kernel / "lkdtm.ko" for kernel in SMALL_KERNELS] + sorted(
        (corpus.debian / "modules").glob("*.ko")
    )


@pytest.mark.slow
def test_corpus_modules_answer_alike_at_every_code_byte(corpus: Corpus) -> None:
    modules = corpus_modules(corpus)
    assert len(modules) == 11
    calls = swept = 0
    for path in modules:
        checked = check_image(path, exhaustive=True)
        assert checked.with_lines > checked.addresses // 2, path
        calls, swept = calls + checked.calls, swept + checked.swept
    assert (calls, swept) == (3_838, 0)  # arm64's lkdtm.ko: none compared


@pytest.mark.slow
def test_debian_vmlinux_answers_alike(corpus: Corpus) -> None:
    # Half the small kernels' count of functions: 19,255 addresses on this vmlinux (every
    # call of 2,000 functions among them), where 4,000 functions gave 34,570; the 10,121
    # calls of those functions found from their row starts as the function sweeps find them.
    checked = check_image(corpus.debian_vmlinux(), exhaustive=False, count=2_000)
    assert checked == Checked(addresses=19_255, with_lines=15_278, calls=10_121, swept=19)


# -- the bytes ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gcc_lto_module() -> tuple[DwarfResolver, bytes]:
    """A sample module's resolver (every unit parsed) and its table's bytes."""
    image = open_image(SAMPLES / "vmlinux-gcc-lto")
    reference = dwarf_resolver(image, SymbolTable(image))
    return reference, table_of(reference).to_bytes()


def test_bytes_do_not_depend_on_the_order_units_come_in(
    gcc_lto_module: tuple[DwarfResolver, bytes],
) -> None:
    reference, data = gcc_lto_module
    offsets = reference.unit_offsets()
    assert len(offsets) == 29
    shuffled = list(offsets)
    random.Random(15).shuffle(shuffled)
    assert table_of(reference, shuffled).to_bytes() == data
    parsed = UnitParser(dwarf_sections(open_image(SAMPLES / "vmlinux-gcc-lto"))).address_table(KEY)
    assert parsed.to_bytes() == data
    # A table read from bytes writes the same bytes.
    assert AddressTable.from_buffer(data).to_bytes() == data
    # Chain maps worked out elsewhere (an index build's workers) make the same table.
    builder = AddressTableBuilder(KEY)
    for cu_offset in offsets:
        unit = reference.cu_data(cu_offset)
        builder.add(unit, chain_map(unit))
    assert builder.table(reference.cu_map).to_bytes() == data


def test_columns_are_read_in_place_from_a_memory_map(
    gcc_lto_module: tuple[DwarfResolver, bytes], tmp_path: Path
) -> None:
    reference, data = gcc_lto_module
    path = tmp_path / "table"
    path.write_bytes(data)
    with open(path, "rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    table = AddressTable.from_buffer(mapped, KEY)
    with open_image(SAMPLES / "vmlinux-gcc-lto") as image:
        addresses = every_code_byte(image)
    assert differences(reference, table, addresses) == []
    # The columns are views of the map, not copies: it cannot be closed under them.
    with pytest.raises(BufferError):
        mapped.close()


def test_a_builder_refuses_a_unit_map_naming_units_it_lacks(
    gcc_lto_module: tuple[DwarfResolver, bytes],
) -> None:
    reference, _data = gcc_lto_module
    builder = AddressTableBuilder(KEY)
    for cu_offset in reference.unit_offsets()[1:]:
        builder.add(reference.cu_data(cu_offset))
    with pytest.raises(CacheError, match="1 units of the unit map were not added"):
        builder.table(reference.cu_map)


def test_every_damaged_byte_is_refused(gcc_lto_module: tuple[DwarfResolver, bytes]) -> None:
    _reference, data = gcc_lto_module
    # Every byte of the header and directory, and a spread over the columns: one bit flipped.
    header = len(data) - sum(
        len(column) * column.itemsize
        for column in read_columns(data, ADDRESS_TABLE_KIND).columns.values()
    )
    positions = [*range(min(header + 64, len(data))), *range(header, len(data), 97)]
    for position in positions:
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        with pytest.raises(CacheError):
            AddressTable.from_buffer(bytes(damaged), KEY)
    assert len(positions) > 500


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda data: data[:-1], "bytes where the header says"),
        (lambda data: data[: len(data) // 2], "bytes where the header says"),
        (lambda data: data[:20], "too short"),
        (lambda data: b"", "too short"),
        (lambda data: data + b"\0" * 8, "bytes where the header says"),
        (lambda data: b"\x7fELF" + data[4:], "not an ltosyms table"),
        (lambda data: data[:8] + struct.pack("<H", 2) + data[10:], "layout 2"),
    ],
)
def test_truncated_extended_and_foreign_buffers_are_refused(
    gcc_lto_module: tuple[DwarfResolver, bytes], cut: object, message: str
) -> None:
    _reference, data = gcc_lto_module
    assert callable(cut)
    with pytest.raises(CacheError, match=message):
        AddressTable.from_buffer(cut(data), KEY)


def test_a_table_of_another_image_or_kind_is_refused(
    gcc_lto_module: tuple[DwarfResolver, bytes],
) -> None:
    _reference, data = gcc_lto_module
    with pytest.raises(CacheError, match="made for image image-key, not other-key"):
        AddressTable.from_buffer(data, "other-key")
    stored = read_columns(data, ADDRESS_TABLE_KIND)
    other = pack_columns("dwarf-addresses/0", KEY, list(stored.columns.items()))
    with pytest.raises(CacheError, match="holds a 'dwarf-addresses/0' table"):
        AddressTable.from_buffer(other, KEY)


def test_columns_that_do_not_fit_together_are_refused_despite_a_good_checksum(
    gcc_lto_module: tuple[DwarfResolver, bytes],
) -> None:
    # A writer with a bug (or a hostile one) computes a right checksum over wrong columns:
    # bounds past their columns would make a unit's slices read another unit's values.
    _reference, data = gcc_lto_module
    columns: dict[str, array[int] | memoryview] = dict(
        read_columns(data, ADDRESS_TABLE_KIND).columns
    )
    row_bounds = columns["row_bounds"]
    bounds = array("Q", row_bounds)
    bounds[-1] += 1
    columns["row_bounds"] = bounds
    rewritten = pack_columns(ADDRESS_TABLE_KIND, KEY, list(columns.items()))
    assert zlib.crc32(rewritten[16:]) == struct.unpack_from("<I", rewritten, 12)[0]
    with pytest.raises(CacheError, match="do not fit together"):
        AddressTable.from_buffer(rewritten, KEY)
    columns["row_bounds"] = row_bounds  # as written: the table opens again
    AddressTable.from_buffer(pack_columns(ADDRESS_TABLE_KIND, KEY, list(columns.items())), KEY)
    # A unit map naming a unit the table does not hold.
    map_units = array("Q", columns["map_units"])
    map_units[0] = 5
    columns["map_units"] = map_units
    with pytest.raises(CacheError, match="do not fit together"):
        AddressTable.from_buffer(pack_columns(ADDRESS_TABLE_KIND, KEY, list(columns.items())), KEY)
    del columns["node_names"]
    with pytest.raises(CacheError, match="no column node_names"):
        AddressTable.from_buffer(pack_columns(ADDRESS_TABLE_KIND, KEY, list(columns.items())), KEY)


def test_overlapping_unit_ranges_choose_the_unit_the_unit_map_chooses(
    gcc_lto_module: tuple[DwarfResolver, bytes],
) -> None:
    # No corpus image has overlapping unit ranges, gcc LTO and duplicated inline copies could:
    # a unit map with a range nested in another's, one sharing its start, an empty one and
    # touching ones must choose in the table as CuMap.unit_at chooses.
    reference, _data = gcc_lto_module
    offsets = reference.unit_offsets()
    low = min(reference.cu_map.starts)
    high = max(reference.cu_map.ends)
    entries = sorted(
        [
            (low, high, offsets[0]),
            (low, low + 0x20, offsets[1]),
            (low + 0x10, low + 0x40, offsets[2]),
            (low + 0x40, low + 0x40, offsets[3]),
            (low + 0x40, low + 0x80, offsets[4]),
            (low + 0x80, high - 0x10, offsets[5]),
        ]
    )
    crafted = CuMap(
        starts=array("Q", [e[0] for e in entries]),
        ends=array("Q", [e[1] for e in entries]),
        units=array("Q", [e[2] for e in entries]),
        unit_count=reference.cu_map.unit_count,
    )
    builder = AddressTableBuilder(KEY)
    for cu_offset in offsets:
        builder.add(reference.cu_data(cu_offset))
    table = AddressTable.from_buffer(builder.table(crafted).to_bytes(), KEY)
    chosen = [crafted.unit_at(address) for address in range(low - 1, high + 1)]
    assert [table.cu_for(address) for address in range(low - 1, high + 1)] == chosen
    # offsets[1] shares its start with the whole-span range, which sorts after it and wins;
    # offsets[3]'s range is empty; in the last 0x10 bytes CuMap's look-back (4 entries) ends
    # before the whole-span range: no unit. So: None, offsets[0], [2], [4], [5].
    assert set(chosen) == {None, offsets[0], offsets[2], offsets[4], offsets[5]}
    for address, cu_offset in zip(range(low - 1, high + 1), chosen, strict=True):
        expected = () if cu_offset is None else reference.cu_data(cu_offset).locations(address)
        assert table.locations(address) == expected
