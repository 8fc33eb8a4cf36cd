"""The diff census kept in each image's index: a diff of indexed images says byte for byte
what a diff that reads both images says; ``ltosyms index`` keeps the census; a damaged one is
taken again."""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import subprocess
import zlib
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES, Corpus

from ltosyms.cli import cli
from ltosyms.diff import take_image_census
from ltosyms.diff.sections import layout_of
from ltosyms.diff.stored import census_columns, census_from_columns
from ltosyms.elf.image import open_image
from ltosyms.elf.kernel import load_any
from ltosyms.index import StoredValueError, kinds
from ltosyms.index.store import row_checksum
from ltosyms.limits import MIN_INFLATE_BYTES

FROM_INDEX = "diff census from the index"
# What a diff measures of its own run: the time its DWARF walk took.
TIMINGS = (re.compile(r"DWARF read in [0-9.]+ s"), re.compile(r'"dwarf_seconds": [0-9.]+'))


def diff(arguments: list[str], caplog: pytest.LogCaptureFixture | None = None) -> tuple[str, int]:
    """stdout of ``ltosyms diff ARGUMENTS`` and how many censuses it read from an index."""
    if caplog is not None:
        caplog.clear()
    result = CliRunner().invoke(cli, ["diff", *arguments], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    read = caplog.text.count(FROM_INDEX) if caplog is not None else 0
    return result.stdout, read


def without_timings(text: str) -> str:
    for timing in TIMINGS:
        text = timing.sub("<timing>", text)
    return text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("base", "new"), [("clang-nolto", "clang-thinlto"), ("gcc-nolto", "gcc-lto")]
)
def test_a_diff_of_indexed_images_says_what_a_fresh_diff_says(
    corpus: Corpus, base: str, new: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images = [str(corpus.kernel_vmlinux(base)), str(corpus.kernel_vmlinux(new))]
    formats: dict[str, Callable[[Path], list[str]]] = {
        "text": lambda page: [],
        "json+html": lambda page: ["--json", "--html", str(page)],
        "csv": lambda page: ["--format", "csv"],
    }
    with caplog.at_level(logging.INFO, logger="ltosyms"):
        for name, options in formats.items():
            # Each format's first run takes both censuses and leaves them in its own index;
            # its second reads them there. The times of the DWARF walks are kept with the
            # census, so even they are the same.
            cache = ["--cache-dir", str(tmp_path / name)]
            fresh, read = diff([*images, *cache, *options(tmp_path / f"{name}.fresh.html")], caplog)
            assert read == 0
            stored, read = diff([*images, *cache, *options(tmp_path / f"{name}.html")], caplog)
            assert read == 2
            assert stored == fresh
            if name == "json+html":
                page = (tmp_path / f"{name}.html").read_bytes()
                assert page == (tmp_path / f"{name}.fresh.html").read_bytes()
                assert json.loads(stored)["new"]["dwarf"] is True
    assert len(fresh.splitlines()) > 10_000  # csv: a row per change


@pytest.mark.parametrize("fmt", ["text", "bloat-o-meter"])
def test_a_module_diff_after_ltosyms_index(
    corpus: Corpus, fmt: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    modules = [str(corpus.kernels / v / "lkdtm.ko") for v in ("clang-nolto", "clang-thinlto")]
    cache = tmp_path / "cache"
    for module in modules:
        result = CliRunner().invoke(
            cli, ["index", module, "--cache-dir", str(cache), "--json"], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        assert [image["diff_census"] for image in json.loads(result.stdout)["images"]] == [True]
    options = ["--format", fmt]
    with caplog.at_level(logging.INFO, logger="ltosyms"):
        stored, read = diff([*modules, "--cache-dir", str(cache), *options], caplog)
        fresh, fresh_read = diff([*modules, "--no-cache", *options], caplog)
    assert (read, fresh_read) == (2, 0)
    # The index's worker timed its own walk.
    assert without_timings(stored) == without_timings(fresh)
    assert "lkdtm" in stored


def test_a_damaged_census_is_taken_again_and_replaced(
    corpus: Corpus, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    modules = [str(corpus.kernels / v / "lkdtm.ko") for v in ("clang-nolto", "clang-thinlto")]
    arguments = [*modules, "--json", "--cache-dir", str(tmp_path)]
    first, _read = diff(arguments)
    garbage = b"\x00garbage"
    damaged = 0
    for database in tmp_path.glob("*.sqlite"):
        with closing(sqlite3.connect(database)) as connection, connection:
            connection.create_function("row_checksum", 3, row_checksum, deterministic=True)
            damaged += connection.execute(
                "UPDATE derived SET data = ?1, crc32 = row_checksum(kind, key, ?1) WHERE kind = ?2",
                (garbage, kinds.DIFF_CENSUS.stored_name),
            ).rowcount
    assert damaged == 2  # one census (with DWARF) per module
    with caplog.at_level(logging.INFO, logger="ltosyms"):
        again, read = diff(arguments, caplog)
        assert read == 0
        assert caplog.text.count("a stored diff-census does not decode") == 2  # one per image
        third, read = diff(arguments, caplog)
        assert read == 2
    assert without_timings(again) == without_timings(first)
    assert third == again


def test_the_census_round_trips_with_and_without_dwarf() -> None:
    loaded = load_any(SAMPLES / "vmlinux-clang-thinlto")
    try:
        for use_dwarf in (True, False):
            census = take_image_census(loaded, use_dwarf=use_dwarf)
            assert census.groups and census.empty_groups is not None
            assert bool(census.inlined) is use_dwarf
            data = kinds.DIFF_CENSUS.encode(census_columns(census))
            again = census_from_columns(kinds.DIFF_CENSUS.decode(data, loaded.image), census.path)
            assert again == census
            assert again.dwarf_seconds == census.dwarf_seconds
        with pytest.raises(StoredValueError, match="another image"):
            other = load_any(SAMPLES / "vmlinux-gcc")
            try:
                kinds.DIFF_CENSUS.decode(data, other.image)
            finally:
                other.image.close()
        with pytest.raises(StoredValueError, match="cut short"):
            kinds.DIFF_CENSUS.decode(data[: len(data) // 2], loaded.image)
        # Zeros past the floor of what a stored value may inflate to: ~64 KB compressed.
        bomb = zlib.compress(bytes(MIN_INFLATE_BYTES + 1), 9)
        with pytest.raises(StoredValueError, match=f"inflates past {MIN_INFLATE_BYTES:,} bytes"):
            kinds.DIFF_CENSUS.decode(bomb, loaded.image)
    finally:
        loaded.image.close()


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="binutils objcopy not installed")
def test_a_census_with_a_note_is_not_kept(tmp_path: Path) -> None:
    stripped = tmp_path / "vmlinux-nodebug"
    subprocess.run(
        ["objcopy", "--strip-debug", str(SAMPLES / "vmlinux-gcc"), str(stripped)], check=True
    )
    loaded = load_any(stripped)
    try:
        census = take_image_census(loaded)
        assert census.dwarf_note is not None and str(stripped) in census.dwarf_note
        with pytest.raises(StoredValueError, match="note"):
            census_columns(census)
    finally:
        loaded.image.close()
    cache = tmp_path / "cache"
    arguments = [str(SAMPLES / "vmlinux-gcc"), str(stripped), "--json", "--cache-dir", str(cache)]
    first, _read = diff(arguments)
    second, _read = diff(arguments)
    assert second == first
    assert [note for note in json.loads(second)["notes"] if "has no DWARF" in note] == [
        f"NEW {stripped} has no DWARF: DWARF parts skipped for it",
        "NEW has no DWARF read: dropped functions cannot be told apart; "
        "all are shown as dropped_removed",
    ]
    # The stripped copy keeps its build id but not the file's fingerprint: it has an index of
    # its own, and only the census of the image with DWARF is kept.
    databases = sorted(cache.glob("*.sqlite"))
    assert len(databases) == 2
    rows = []
    for database in databases:
        with closing(sqlite3.connect(database)) as connection:
            rows += connection.execute(
                "SELECT key FROM derived WHERE kind = ?", (kinds.DIFF_CENSUS.stored_name,)
            ).fetchall()
    with open_image(SAMPLES / "vmlinux-gcc") as image:
        assert rows == [(f"dwarf/{layout_of(image)}",)]


def test_distinct_string_columns_round_trip_and_refuse_damage() -> None:
    """A census' text columns are stored as their distinct strings (each ended by a NUL) and a
    position per value (0: None); what does not fit is a StoredValueError, not a wrong value
    (bytes that are no UTF-8 raise ValueError, which the kind's decoder turns into one too)."""
    from ltosyms.index.fields import dictionary_column, values_of_dictionary

    values = ["kernel/a.c", None, "kernel/a.c", "", "mm/b.c", None, ""]
    text, positions = dictionary_column(values)
    assert text == b"kernel/a.c\0\0mm/b.c\0" and list(positions) == [1, 0, 1, 2, 3, 0, 2]
    view = memoryview(positions.tobytes())
    assert values_of_dictionary(memoryview(text), view, len(values)) == values
    assert dictionary_column([]) == (b"", positions[:0])
    assert values_of_dictionary(memoryview(b""), memoryview(b""), 0) == []
    assert values_of_dictionary(memoryview(b""), memoryview(bytes(8)), 2) == [None, None]
    damaged = [
        (text[:-1], view, len(values)),  # the last string cut short
        (b"kernel/a.c\0", view, len(values)),  # positions past the strings
        (text, view, len(values) + 1),  # another number of values
    ]
    for damaged_text, damaged_view, count in damaged:
        with pytest.raises(StoredValueError):
            values_of_dictionary(memoryview(damaged_text), damaged_view, count)
    with pytest.raises(StoredValueError, match="NUL"):
        dictionary_column(["a\0b", "c"])  # read back, it would be two strings
