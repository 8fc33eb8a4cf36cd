"""Building the whole index in worker processes: results, failures, interruption, resumption."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import PROJECT, SAMPLES, Corpus

from ltosyms.cli import cli
from ltosyms.context import ImageContext
from ltosyms.context.build import CuCodec, IndexBuild, build_index, dwarf_codec
from ltosyms.dwarf import UnitParser
from ltosyms.elf.debug_sections import dwarf_resolver
from ltosyms.elf.image import KernelImage, open_image
from ltosyms.errors import CacheError, InputError
from ltosyms.index import Answers, kinds
from ltosyms.index.store import CacheLocation, index_file_name, open_store

VMLINUX = SAMPLES / "vmlinux-gcc"
FAKE_UNITS = range(0, 120 * 16, 16)
BROKEN_UNIT = 0x50
CRASHING_UNIT = 0x60


# -- a synthetic codec: module-level functions, so worker processes find them by name -----------


def fake_offsets(context: ImageContext) -> list[int]:
    return list(FAKE_UNITS)


def fake_blob(build_id: str | None, cu_offset: int) -> bytes:
    return f"{build_id}:{cu_offset:#x}:".encode() * (1 + cu_offset % 37)


def fake_parse(image: KernelImage, cu_offset: int) -> bytes:
    if cu_offset == BROKEN_UNIT:
        raise InputError(f"{image.path}: unit {cu_offset:#x}: unknown form 0x99")
    return fake_blob(image.build_id, cu_offset)


def crashing_parse(image: KernelImage, cu_offset: int) -> bytes:
    if cu_offset == CRASHING_UNIT:
        raise ZeroDivisionError("a bug")
    return fake_parse(image, cu_offset)


def dying_parse(image: KernelImage, cu_offset: int) -> bytes:
    if cu_offset == CRASHING_UNIT:
        os._exit(3)  # a worker killed by the OOM killer looks like this
    return fake_parse(image, cu_offset)


FAKE = CuCodec("fake-1", fake_offsets, fake_parse)


def stored_units(location: CacheLocation, codec: CuCodec = FAKE) -> dict[int, bytes]:
    with open_image(VMLINUX) as image:
        store = open_store(image, location, cu_format=codec.format)
        assert store is not None
        found = store.get_many(store.stored_cu_offsets())
        store.close()
    return found


def stored_kinds(location: CacheLocation, codec: CuCodec = FAKE) -> set[str]:
    with open_image(VMLINUX) as image:
        store = open_store(image, location, cu_format=codec.format)
        assert store is not None
        kinds = {row[0] for row in store.query("SELECT DISTINCT kind FROM derived")}
        store.close()
    return kinds


@dataclass
class FakeBuild:
    location: CacheLocation
    result: IndexBuild
    progress: list[tuple[int, int]]


@pytest.fixture(scope="module")
def fake_build(tmp_path_factory: pytest.TempPathFactory) -> FakeBuild:
    location = CacheLocation(tmp_path_factory.mktemp("fake"))
    calls: list[tuple[int, int]] = []
    codec = CuCodec("fake-1", fake_offsets, crashing_parse)
    result = build_index(
        VMLINUX, location, codec, jobs=2, progress=lambda done, total: calls.append((done, total))
    )
    return FakeBuild(location, result, calls)


def test_workers_store_every_unit(fake_build: FakeBuild) -> None:
    result = fake_build.result
    assert result.cu_total == len(FAKE_UNITS)
    assert result.cu_parsed == len(FAKE_UNITS) - 2 and result.cu_reused == 0
    assert result.symbols_stored
    with open_image(VMLINUX) as image:
        build_id = image.build_id
    assert result.index_path.name == index_file_name(build_id or "")
    # The database and its table files (the symbol table is one).
    tables = list(result.index_path.parent.glob(result.index_path.name + ".*.table"))
    assert len(tables) == 1
    assert result.size_bytes == sum(p.stat().st_size for p in [result.index_path, *tables])
    expected = {
        o: fake_blob(build_id, o) for o in FAKE_UNITS if o not in (BROKEN_UNIT, CRASHING_UNIT)
    }
    assert stored_units(fake_build.location) == expected
    # What every decode reads besides units is there too.
    kept = {kinds.PATCH_SITES.stored_name, kinds.BUILD_FACTS.stored_name}
    assert kept <= stored_kinds(fake_build.location)


def test_failed_units_are_reported_and_lose_nothing_else(fake_build: FakeBuild) -> None:
    result = fake_build.result
    failures = dict(result.cu_failed)
    assert set(failures) == {BROKEN_UNIT, CRASHING_UNIT}
    assert "unknown form 0x99" in failures[BROKEN_UNIT]
    assert failures[CRASHING_UNIT] == "internal error: ZeroDivisionError: a bug"
    assert not result.complete
    with open_image(VMLINUX) as image:
        store = open_store(image, fake_build.location, cu_format="fake-1")
        assert store is not None and not store.is_complete
        store.close()


def test_progress_counts_up_to_the_total(fake_build: FakeBuild) -> None:
    calls = fake_build.progress
    assert calls[0] == (0, len(FAKE_UNITS)) and calls[-1] == (len(FAKE_UNITS),) * 2
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_next_build_parses_only_what_is_missing(fake_build: FakeBuild) -> None:
    codec = CuCodec("fake-1", fake_offsets, crashing_parse)
    again = build_index(VMLINUX, fake_build.location, codec, jobs=1)
    assert (again.cu_parsed, again.cu_reused) == (0, len(FAKE_UNITS) - 2)
    assert {offset for offset, _ in again.cu_failed} == {BROKEN_UNIT, CRASHING_UNIT}
    assert not again.symbols_stored  # already there


def test_one_process_builds_the_same_index(fake_build: FakeBuild, tmp_path: Path) -> None:
    codec = CuCodec("fake-1", fake_offsets, crashing_parse)
    build_index(VMLINUX, CacheLocation(tmp_path), codec, jobs=1)
    assert stored_units(CacheLocation(tmp_path)) == stored_units(fake_build.location)


def test_a_dead_worker_is_an_error_not_a_hang(tmp_path: Path) -> None:
    codec = CuCodec("fake-1", fake_offsets, dying_parse)
    started = time.monotonic()
    with pytest.raises(CacheError, match="worker process died"):
        build_index(VMLINUX, CacheLocation(tmp_path), codec, jobs=2)
    assert time.monotonic() - started < 60
    # What was committed before is intact and reused by the next run.
    result = build_index(VMLINUX, CacheLocation(tmp_path), FAKE, jobs=1)
    assert result.cu_parsed + result.cu_reused == len(FAKE_UNITS) - 1


def test_cli_indexes_modules_too(tmp_path: Path) -> None:
    modules = tmp_path / "lib" / "modules"
    (modules / "kernel").mkdir(parents=True)
    for name in ("sample_mod-gcc.ko", "sample_mod-clang.ko"):
        (modules / "kernel" / name).write_bytes((SAMPLES / name).read_bytes())
    (modules / "kernel" / "broken.ko").write_bytes(b"\x7fELF truncated")
    result = CliRunner().invoke(
        cli,
        [
            "index",
            str(VMLINUX),
            "--modules",
            str(modules),
            "--cache-dir",
            str(tmp_path / "c"),
            "--jobs",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "broken.ko" in result.stderr and "1 module files could not be indexed" in result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "ltosyms.index/1"
    assert [Path(i["image"]).name for i in report["images"]] == [
        "vmlinux-gcc",
        "sample_mod-clang.ko",
        "sample_mod-gcc.ko",
    ]
    for entry in report["images"]:
        assert entry["complete"] and entry["cu_total"] >= 1
        assert entry["cu_parsed"] == entry["cu_total"]
        assert Path(entry["index"]).is_file()


def test_cli_unusable_cache_dir_is_exit_4(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["index", str(VMLINUX), "--cache-dir", str(blocker / "c")])
    assert result.exit_code == 4
    assert "cannot create it" in result.output


# -- a real kernel: kill the build twice, then finish it ------------------------------------------


@dataclass
class Interruption:
    stored_at_signal: int
    stored_after: int
    exit_code: int
    stderr: str
    seconds_to_exit: float
    integrity: str
    units_decodable: bool
    complete_flag: str | None


@dataclass
class IndexedKernel:
    vmlinux: Path
    location: CacheLocation
    killed: Interruption
    interrupted: Interruption
    final_report: dict[str, Any]


def _count(database: Path) -> int:
    try:
        connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return int(connection.execute("SELECT count(*) FROM cu").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error:
        return 0


def _inspect(image: KernelImage, location: CacheLocation) -> tuple[str, bool, str | None]:
    store = open_store(image, location, cu_format=dwarf_codec().format)
    assert store is not None
    integrity = str(store.query("PRAGMA integrity_check")[0][0])
    offsets = sorted(store.stored_cu_offsets())
    decodable = True
    for start in range(0, len(offsets), 200):
        for cu_offset, blob in store.get_many(offsets[start : start + 200]).items():
            decodable &= kinds.UNITS.decode(blob, image).cu_offset == cu_offset
    decodable &= store.discarded == 0
    complete = store.get_meta("complete")
    store.close()
    return integrity, decodable, complete


def _run_and_stop(
    vmlinux: Path, location: CacheLocation, database: Path, stop_at: int, how: signal.Signals
) -> Interruption:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ltosyms",
            "index",
            str(vmlinux),
            "--jobs",
            "2",
            "--cache-dir",
            str(location.directory),
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the signal reaches the workers too
    )
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and process.poll() is None:
        stored = _count(database)
        if stored >= stop_at:
            break
        time.sleep(0.02)
    assert process.poll() is None, f"finished before the signal: {process.communicate()}"
    signalled = time.monotonic()
    os.killpg(process.pid, how)  # like Ctrl-C in a terminal: the whole foreground group
    _, stderr = process.communicate(timeout=60)
    seconds = time.monotonic() - signalled
    with open_image(vmlinux) as image:
        integrity, decodable, complete = _inspect(image, location)
    return Interruption(
        stored,
        _count(database),
        process.returncode,
        stderr,
        seconds,
        integrity,
        decodable,
        complete,
    )


@pytest.fixture(scope="module")
def indexed_kernel(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> IndexedKernel:
    vmlinux = corpus.kernel_vmlinux("clang-nolto")
    location = CacheLocation(tmp_path_factory.mktemp("cache"))
    with open_image(vmlinux) as image:
        database = location.directory / index_file_name(image.build_id or "")
    killed = _run_and_stop(vmlinux, location, database, 100, signal.SIGKILL)
    interrupted = _run_and_stop(
        vmlinux, location, database, killed.stored_after + 150, signal.SIGINT
    )
    result = CliRunner().invoke(
        cli,
        ["index", str(vmlinux), "--jobs", "2", "--cache-dir", str(location.directory), "--json"],
    )
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.output)["images"]
    return IndexedKernel(vmlinux, location, killed, interrupted, report)


def test_killed_build_leaves_a_consistent_index(indexed_kernel: IndexedKernel) -> None:
    killed = indexed_kernel.killed
    assert killed.exit_code == -signal.SIGKILL
    assert killed.integrity == "ok" and killed.units_decodable
    assert killed.stored_after >= killed.stored_at_signal >= 100
    assert killed.complete_flag is None


def test_ctrl_c_stops_the_build_quickly_and_keeps_its_work(indexed_kernel: IndexedKernel) -> None:
    interrupted = indexed_kernel.interrupted
    assert interrupted.exit_code == 130
    assert "interrupted" in interrupted.stderr and "Traceback" not in interrupted.stderr
    assert interrupted.seconds_to_exit < 10
    assert interrupted.integrity == "ok" and interrupted.units_decodable
    assert interrupted.stored_after >= interrupted.stored_at_signal
    assert interrupted.complete_flag is None


def test_next_run_resumes_and_completes(indexed_kernel: IndexedKernel) -> None:
    report = indexed_kernel.final_report
    assert report["complete"] and not report["cu_failed"]
    assert report["cu_reused"] >= indexed_kernel.interrupted.stored_after
    assert report["cu_reused"] + report["cu_parsed"] == report["cu_total"]
    with open_image(indexed_kernel.vmlinux) as image:
        assert report["cu_total"] == len(
            list(dwarf_codec().unit_offsets(ImageContext(image=image)))
        )
        store = open_store(image, indexed_kernel.location, cu_format=dwarf_codec().format)
        assert store is not None and store.is_complete
        assert store.get_table(kinds.SYMBOLS.stored_name) is not None
        store.close()


def test_decodes_after_the_index_parse_no_dwarf(
    indexed_kernel: IndexedKernel, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = json.loads((corpus.kernels / "clang-nolto" / "expected" / "frames.json").read_text())
    addresses = sorted({int(f["lookup_address"], 16) for f in frames if f["module"] is None})
    with open_image(indexed_kernel.vmlinux) as image:
        expected = dwarf_resolver(image).locations_many(addresses)

    def no_parsing(*args: object) -> None:
        raise AssertionError("DWARF parsed although the index holds every unit")

    # Every unit and the unit map are parsed through the UnitParser.
    monkeypatch.setattr(UnitParser, "unit", no_parsing)
    monkeypatch.setattr(UnitParser, "unit_map", no_parsing)
    with open_image(indexed_kernel.vmlinux) as image:
        store = open_store(image, indexed_kernel.location, cu_format=dwarf_codec().format)
        assert store is not None
        answers = Answers(store, image)
        resolver = dwarf_resolver(
            image, units=answers.memo(kinds.UNITS), unit_map=answers.memo(kinds.UNIT_MAP)
        )
        served = resolver.locations_many(addresses)
        assert resolver.parsed_units == 0
        assert resolver.loaded_units == len({resolver.cu_for(a) for a in addresses} - {None})
        answers.close()
    assert served == expected
    assert sum(1 for chain in served.values() if chain) > 0.9 * len(addresses)
