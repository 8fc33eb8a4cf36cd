"""decode and symbolize print the same bytes whether the image's address table answers or
its units do (issue 15 item 2), on every small corpus kernel, its log and its module; the
index writes the table once and again when it is damaged or foreign (item 4)."""

from __future__ import annotations

import json
import logging
import re
import shutil
from array import array
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES, SMALL_KERNELS, Corpus

from ltosyms import Decoder, ImageContext, ModuleSet, Session, iter_reports
from ltosyms.cli import cli
from ltosyms.context.build import IndexBuild, build_index, dwarf_codec
from ltosyms.dwarf import ADDRESS_TABLE_KIND, AddressTable, SourceLocation
from ltosyms.dwarf.table_layout import pack_columns, read_columns
from ltosyms.index import kinds
from ltosyms.index.store import TABLE_SUFFIX, CacheLocation

# name+0xOFF/0xSIZE [module], as a trace prints a frame.
FRAME = re.compile(r"([\w.$]+\+0x[0-9a-f]+/0x[0-9a-f]+)(?: \[(\w+)[^\]]*\])?")
# Every so many text symbols of System.map, one address inside it is asked.
SYMBOL_STRIDE = 97


def printed_frames(log: Path) -> list[str]:
    found: dict[str, None] = {}
    for line in log.read_text("utf-8", "replace").splitlines():
        for match in FRAME.finditer(line):
            frame, module = match.groups()
            found[f"{frame} [{module}]" if module else frame] = None
    return list(found)


def text_addresses(system_map: Path) -> list[str]:
    """Addresses inside every SYMBOL_STRIDE-th code symbol of System.map: 3 bytes and 0x10
    bytes past its start (inside or past a short function)."""
    starts = [
        int(fields[0], 16)
        for fields in (line.split() for line in system_map.read_text().splitlines())
        if len(fields) == 3 and fields[1] in "tT"
    ]
    return [f"{start + delta:x}" for start in starts[::SYMBOL_STRIDE] for delta in (3, 0x10)]


def run(*arguments: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(arguments), input=stdin)
    assert result.exit_code in (0, 1, 3), (arguments, result.output)
    return f"exit {result.exit_code}\n{result.output}"


def outputs(vmlinux: Path, folder: Path, cache: list[str]) -> dict[str, str]:
    log = str(folder / "console.log")
    frames = "\n".join(printed_frames(folder / "console.log")) + "\n"
    addresses = "\n".join(text_addresses(folder / "System.map")) + "\n"
    common = (str(vmlinux), "--modules", str(folder / "lkdtm.ko"), *cache)
    return {
        "decode": run("decode", str(vmlinux), log, "--modules", str(folder), *cache),
        "decode --json": run(
            "decode", str(vmlinux), log, "--modules", str(folder), "--json", *cache
        ),
        "symbolize -R frames": run("symbolize", *common, "-R", stdin=frames),
        "symbolize frames --json": run("symbolize", *common, "--json", stdin=frames),
        "symbolize addresses": run("symbolize", *common, stdin=addresses),
        "symbolize -R addresses": run("symbolize", *common, "-R", stdin=addresses),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kernel", SMALL_KERNELS)
def test_decode_and_symbolize_print_the_same_with_the_table(
    corpus: Corpus, kernel: str, tmp_path: Path
) -> None:
    vmlinux = corpus.kernel_vmlinux(kernel)
    folder = corpus.kernels / kernel
    cache = tmp_path / "cache"
    indexed = run(
        "index", str(vmlinux), "--modules", str(folder / "lkdtm.ko"), "--jobs", "2",
        "--cache-dir", str(cache), "--json",
    )  # fmt: skip
    images = json.loads(indexed.split("\n", 1)[1])["images"]
    assert [image["complete"] for image in images] == [True, True]
    assert all(image["table_bytes"] > 0 and image["table_written"] for image in images)
    tables = sorted(cache.glob(f"*.address-table-*{TABLE_SUFFIX}"))
    assert len(tables) == 2

    # With the table, the vmlinux's units are neither loaded nor parsed to decode the log.
    with (
        Session(CacheLocation(directory=cache)) as session,
        open(folder / "console.log", "rb") as log,
    ):
        context = session.open_vmlinux(vmlinux)
        decoder = Decoder(context, ModuleSet([str(folder)], session))
        reports = list(decoder.decode_all(iter_reports(log)))
        assert reports
        assert context.dwarf is not None and context.dwarf.table is not None
        assert context.dwarf.parsed_units == context.dwarf.loaded_units == 0

    with_table = outputs(vmlinux, folder, ["--cache-dir", str(cache)])
    without_index = outputs(vmlinux, folder, ["--no-cache"])
    # The same index without its tables: units loaded from it (and chains stored).
    units_only = tmp_path / "units-only"
    shutil.copytree(cache, units_only)
    for table in units_only.glob(f"*.address-table-*{TABLE_SUFFIX}"):
        table.unlink()
    from_units = outputs(vmlinux, folder, ["--cache-dir", str(units_only)])
    assert sum(output.count("\n") for output in with_table.values()) > 500
    for name, output in with_table.items():
        assert output == without_index[name], name
        assert output == from_units[name], name


# -- the table in the index: written once, refused when damaged or foreign, written again ------


def index_sample(name: str, location: CacheLocation) -> IndexBuild:
    return build_index(SAMPLES / name, location, dwarf_codec(), jobs=1)


def chains_everywhere(context: ImageContext) -> list[tuple[SourceLocation, ...]]:
    """The inline chain at every code byte of the image (its executable sections)."""
    assert context.dwarf is not None
    return [
        context.dwarf.locations(address)
        for section in context.image.sections
        if section.is_alloc and section.is_exec
        for address in range(section.link_address, section.end_address)
    ]


def test_the_index_keeps_one_table_and_writes_it_again_when_damaged_or_foreign(
    tmp_path: Path,
) -> None:
    location = CacheLocation(directory=tmp_path)
    first = index_sample("vmlinux-gcc-lto", location)
    assert first.complete and first.table_written and first.table_bytes > 0
    (table_file,) = tmp_path.glob(f"*.address-table-*{TABLE_SUFFIX}")
    written = table_file.read_bytes()
    assert len(written) == first.table_bytes

    with ImageContext.open(SAMPLES / "vmlinux-gcc-lto", cache=location) as context:
        assert context.address_table is not None
        from_table = chains_everywhere(context)
        assert context.dwarf is not None and context.dwarf.parsed_units == 0
    with ImageContext.open(SAMPLES / "vmlinux-gcc-lto") as context:
        assert context.address_table is None  # no index: units parsed
        parsed = chains_everywhere(context)
    assert sum(1 for chain in parsed if chain) > 1_000
    assert from_table == parsed

    # A second index leaves a whole table alone.
    again = index_sample("vmlinux-gcc-lto", location)
    assert again.cu_parsed == 0 and not again.table_written and again.table_bytes == len(written)

    damaged = bytearray(written)
    damaged[len(damaged) // 2] ^= 0x40
    table_file.write_bytes(bytes(damaged))
    with ImageContext.open(SAMPLES / "vmlinux-gcc-lto", cache=location) as context:
        assert context.address_table is None  # refused: units answer
        assert chains_everywhere(context) == parsed
    rebuilt = index_sample("vmlinux-gcc-lto", location)
    assert rebuilt.table_written and table_file.read_bytes() == written

    # Another image's table in its place (a whole, undamaged table file) is refused too.
    other = CacheLocation(directory=tmp_path / "other")
    index_sample("vmlinux-gcc", other)
    (other_table,) = (tmp_path / "other").glob(f"*.address-table-*{TABLE_SUFFIX}")
    shutil.copyfile(other_table, table_file)
    with ImageContext.open(SAMPLES / "vmlinux-gcc-lto", cache=location) as context:
        assert context.address_table is None
    assert index_sample("vmlinux-gcc-lto", location).table_written
    assert table_file.read_bytes() == written


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("node_names", -1),  # string ids past the string table (its type's largest)
        ("row_files", 200),  # file numbers past each unit's files
        ("call_files", 200),  # inlined calls' files past each unit's files
    ],
)
def test_a_table_whose_values_point_outside_it_is_refused_on_first_use(
    column: str, value: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Damage under a valid checksum and a valid shape (a writer with a bug, or a hostile
    # one): the first lookup that meets it drops the table, the units answer alike, the
    # file is removed, and the next index writes it again.
    location = CacheLocation(directory=tmp_path)
    index_sample("vmlinux-gcc-lto", location)
    (table_file,) = tmp_path.glob(f"*.address-table-*{TABLE_SUFFIX}")
    written = table_file.read_bytes()
    with ImageContext.open(SAMPLES / "vmlinux-gcc-lto") as context:
        parsed = chains_everywhere(context)
    with ImageContext.open(SAMPLES / "vmlinux-gcc-lto", cache=location) as context:
        table = context.address_table
        memo = context.memo(kinds.ADDRESS_TABLE)
        assert table is not None and memo is not None
        columns = dict(read_columns(table.to_bytes(), ADDRESS_TABLE_KIND).columns)
        damaged = array(columns[column].format)
        if value < 0:
            value = (1 << (8 * damaged.itemsize)) - 1
            assert value >= len(table.strings)  # no such string id
        damaged.extend([value] * len(columns[column]))
        columns[column] = damaged
        data = pack_columns(ADDRESS_TABLE_KIND, table.image_key, list(columns.items()))
        memo.put(None, AddressTable.from_buffer(data, table.image_key))
    assert table_file.read_bytes() != written
    with (
        caplog.at_level(logging.WARNING, logger="ltosyms"),
        ImageContext.open(SAMPLES / "vmlinux-gcc-lto", cache=location) as context,
    ):
        assert context.address_table is not None  # whole, of this image: it opens
        assert chains_everywhere(context) == parsed
        assert context.address_table is None and context.dwarf is not None
        assert context.dwarf.table is None
    assert caplog.text.count("holds a value that points outside it") == 1
    assert not table_file.exists()
    rebuilt = index_sample("vmlinux-gcc-lto", location)
    assert rebuilt.table_written and table_file.read_bytes() == written
