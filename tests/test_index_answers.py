"""What a decode keeps in the index besides DWARF units, and that later runs are served from it:
call sites, instruction boundaries, boot-patch tables, build facts, inline chains by address,
Code: analyses, and the symbol table as a memory-mapped table file."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from conftest import PROJECT, SAMPLES, Corpus

from ltosyms.context import ImageContext, Session
from ltosyms.disasm import callsite
from ltosyms.disasm.callsite import CallSiteFinder
from ltosyms.disasm.patching import PatchSites
from ltosyms.elf import build_facts
from ltosyms.elf.build_facts import BuildFacts, read_build_facts
from ltosyms.elf.debug_sections import dwarf_resolver
from ltosyms.elf.image import KernelImage, open_image
from ltosyms.elf.symtab import SymbolTable
from ltosyms.index import Answers, StoredValueError, kinds
from ltosyms.index.store import CacheLocation, IndexStore, open_store
from ltosyms.stores import MemoryMemo

GCC = SAMPLES / "vmlinux-gcc"


@pytest.fixture
def image(gcc_sample: KernelImage) -> KernelImage:
    return gcc_sample


@pytest.fixture
def store(image: KernelImage, tmp_path: Path) -> Iterator[IndexStore]:
    opened = open_store(image, CacheLocation(directory=tmp_path / "cache"), cu_format="test")
    assert opened is not None
    yield opened
    opened.close()


@pytest.fixture
def location(tmp_path: Path) -> CacheLocation:
    return CacheLocation(directory=tmp_path / "index")


def answers_of(image: KernelImage, location: CacheLocation) -> Answers:
    """The image's index under ``location``, opened again (what another run reads)."""
    store = open_store(image, location, cu_format=kinds.UNIT_FORMAT)
    assert store is not None
    return Answers(store, image)


def _return_addresses(image: KernelImage, symbols: SymbolTable) -> list[tuple[int, int]]:
    """(return address, function start) of every call in the sample's functions, found by a
    finder without memos."""
    finder = CallSiteFinder(image, symbols=symbols)
    found = []
    for symbol in symbols:
        if not symbol.is_function or not symbol.elf_size:
            continue
        for end in range(symbol.link_address + 1, symbol.end_address + 1):
            site = finder.call_ending_at(end, symbol.link_address)
            if site is not None and site.is_call:
                found.append((end, symbol.link_address))
    return found


def _finder(image: KernelImage, symbols: SymbolTable, answers: Answers) -> CallSiteFinder:
    return CallSiteFinder(
        image,
        symbols=symbols,
        call_sites=answers.memo(kinds.CALL_SITES),
        sweeps=answers.memo(kinds.SWEEPS),
    )


def _no_disassembly(monkeypatch: pytest.MonkeyPatch) -> None:
    def disassembled(*args: object) -> None:
        raise AssertionError("disassembled although the index holds the answer")

    monkeypatch.setattr(callsite, "iter_instructions", disassembled)
    monkeypatch.setattr(callsite, "decode_one", disassembled)


def _stored_keys(answers: Answers, kind: kinds.Kind[object, object]) -> set[str]:
    rows = answers.store.query("SELECT key FROM derived WHERE kind = ?", (kind.stored_name,))
    return {str(row[0]) for row in rows}


def test_call_sites_come_back_from_the_index(
    image: KernelImage, location: CacheLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    symbols = SymbolTable(image)
    calls = _return_addresses(image, symbols)
    assert len(calls) > 20
    # Some addresses inside instructions too: "no instruction ends here" is an answer as well.
    queries = [*calls, *((ra + 1, start) for ra, start in calls[:10])]
    first = answers_of(image, location)
    answers = [_finder(image, symbols, first).call_ending_at(ra, start) for ra, start in queries]
    assert sum(1 for site in answers if site is None) >= 1
    first.close()

    second = answers_of(image, location)
    assert len(_stored_keys(second, kinds.CALL_SITES)) == len(set(queries))
    fresh = CallSiteFinder(image, symbols=symbols)
    assert [fresh.call_ending_at(ra, start) for ra, start in queries] == answers
    _no_disassembly(monkeypatch)
    again = _finder(image, symbols, second)
    assert [again.call_ending_at(ra, start) for ra, start in queries] == answers
    second.close()


def test_stored_sweeps_answer_other_addresses_of_the_same_functions(
    image: KernelImage, location: CacheLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    symbols = SymbolTable(image)
    calls = _return_addresses(image, symbols)
    # One call per function is asked first; the others (and every other instruction end) later.
    first_calls = {start: (ra, start) for ra, start in reversed(calls)}
    first = answers_of(image, location)
    finder = _finder(image, symbols, first)
    for ra, start in first_calls.values():
        finder.call_ending_at(ra, start)
    first.close()
    second = answers_of(image, location)
    sweeps = _stored_keys(second, kinds.SWEEPS)
    assert sweeps == {f"{start:x}" for start in first_calls}

    later = [
        (end, symbol.link_address)
        for symbol in symbols
        if symbol.is_function and f"{symbol.link_address:x}" in sweeps
        for end in range(symbol.link_address + 1, symbol.end_address + 1)
    ]
    expected = [CallSiteFinder(image, symbols=symbols).call_ending_at(*q) for q in later]
    assert sum(1 for site in expected if site is not None and site.is_call) > len(first_calls)
    monkeypatch.setattr(callsite, "iter_instructions", _disassembled)
    again = _finder(image, symbols, second)
    assert [again.call_ending_at(*q) for q in later] == expected
    second.close()


def _disassembled(*args: object) -> None:
    raise AssertionError("disassembled although the function's sweep is stored")


def test_a_memo_of_call_sites_needs_the_symbol_table(image: KernelImage) -> None:
    # Thunk calls are told apart by the callee's name: answers depend on the symbols.
    with pytest.raises(ValueError, match="symbol table"):
        CallSiteFinder(image, call_sites=MemoryMemo())


def test_inline_chains_come_back_without_loading_units(
    image: KernelImage, location: CacheLocation
) -> None:
    symbols = SymbolTable(image)
    addresses = [
        address
        for symbol in symbols
        if symbol.is_function and symbol.elf_size
        for address in range(symbol.link_address, symbol.end_address, 7)
    ]
    first = ImageContext(image=image, answers=answers_of(image, location))
    assert first.dwarf is not None
    expected = [first.dwarf.locations(address) for address in addresses]
    assert sum(1 for chain in expected if chain) > 0.9 * len(addresses)
    assert first.dwarf.parsed_units > 0
    first.close()

    answers = answers_of(image, location)
    assert len(_stored_keys(answers, kinds.CHAINS)) == len(set(addresses))
    second = ImageContext(image=image, answers=answers)
    assert second.dwarf is not None
    assert [second.dwarf.locations(address) for address in addresses] == expected
    assert second.dwarf.parsed_units == 0 and second.dwarf.loaded_units == 0
    # Without the symbol table, chains name the outermost entry from DWARF: nothing stored
    # is used for them.
    third = dwarf_resolver(
        image,
        units=answers.memo(kinds.UNITS),
        unit_map=answers.memo(kinds.UNIT_MAP),
        chains=answers.memo(kinds.CHAINS),
    )
    third.locations(addresses[0])
    assert third.loaded_units == 1
    second.close()


def _facts_stored(image: KernelImage, location: CacheLocation) -> tuple[SymbolTable, BuildFacts]:
    """The image's symbols, and its build facts as read once and stored in its index."""
    symbols = SymbolTable(image)
    first = answers_of(image, location)
    facts = read_build_facts(image, symbols, first.memo(kinds.BUILD_FACTS))
    first.close()
    return symbols, facts


def test_build_facts_come_back_from_the_index(
    image: KernelImage, location: CacheLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    symbols, facts = _facts_stored(image, location)
    assert facts.banner is not None and facts.banner.startswith("Linux version")

    def no_reading(*args: object) -> None:
        raise AssertionError("read the image although the index holds the facts")

    monkeypatch.setattr(build_facts, "_read_build_facts", no_reading)
    second = answers_of(image, location)
    assert read_build_facts(image, symbols, second.memo(kinds.BUILD_FACTS)) == facts
    second.close()


def test_a_stored_row_is_read_once_a_run(
    image: KernelImage, location: CacheLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    _symbols, facts = _facts_stored(image, location)
    second = answers_of(image, location)
    reads: list[str] = []
    get_derived = second.store.get_derived

    def counted(kind: str, key: str) -> bytes | None:
        reads.append(kind)
        return get_derived(kind, key)

    monkeypatch.setattr(second.store, "get_derived", counted)
    # A log that prints one crash again and again asks for the same rows again and again.
    assert [second.get(kinds.BUILD_FACTS, None) for _ in range(3)] == [facts] * 3
    assert reads == [kinds.BUILD_FACTS.stored_name]
    # A value put is the answer until it is written; then the index's row is read again (a
    # row is written once: the first value stays).
    other = dataclasses.replace(facts, banner="Linux version 0.0")
    second.put(kinds.BUILD_FACTS, None, other)
    assert second.get(kinds.BUILD_FACTS, None) == other
    second.save()
    assert second.get(kinds.BUILD_FACTS, None) == facts
    assert len(reads) == 2
    second.close()


def test_symbol_table_file_round_trip(image: KernelImage, location: CacheLocation) -> None:
    loaded = SymbolTable(image)
    first = answers_of(image, location)
    assert first.get(kinds.SYMBOLS, None) is None
    first.put(kinds.SYMBOLS, None, loaded)
    first.close()
    path = first.store.table_path(kinds.SYMBOLS.stored_name)
    assert path.name == f"{first.store.path.name}.symbols-{kinds.SYMBOLS.version}.table"
    second = answers_of(image, location)
    table = second.get(kinds.SYMBOLS, None)
    assert table is not None
    assert list(table) == list(loaded)
    assert list(table.names) == list(loaded.names)
    assert table.kallsyms_sizes == loaded.kallsyms_sizes
    for symbol in loaded:
        assert table.by_name(symbol.name) == loaded.by_name(symbol.name)
        assert table.by_base_name(symbol.base_name) == loaded.by_base_name(symbol.base_name)
        assert table.lookup(symbol.link_address) == loaded.lookup(symbol.link_address)
    assert table.address_of("no_such_symbol") is None
    second.close()


SYMBOLS = kinds.SYMBOLS.stored_name


def test_damaged_or_foreign_table_files_are_not_used(
    image: KernelImage, store: IndexStore, tmp_path: Path
) -> None:
    data = kinds.SYMBOLS.encode(SymbolTable(image))
    assert store.put_table(SYMBOLS, data)
    path = store.table_path(SYMBOLS)
    whole = path.read_bytes()

    path.write_bytes(whole[:-100])  # cut short
    assert store.get_table(SYMBOLS) is None
    # Another image's table under this name (a file copied by hand): its key differs.
    with open_image(SAMPLES / "vmlinux-clang") as other:
        other_store = open_store(
            other, CacheLocation(directory=tmp_path / "other"), cu_format="test"
        )
        assert other_store is not None
        assert other_store.put_table(SYMBOLS, kinds.SYMBOLS.encode(SymbolTable(other)))
        shutil.copyfile(other_store.table_path(SYMBOLS), path)
        other_store.close()
    assert store.get_table(SYMBOLS) is None

    # A flipped payload byte: the table is checked whole against its checksum when opened,
    # and the integrity check of an index build removes it.
    damaged = bytearray(whole)
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged))
    assert store.get_table(SYMBOLS) is None
    assert store.check_integrity() is False
    assert not path.exists()
    assert store.put_table(SYMBOLS, data)
    assert store.check_integrity() is True


def sums_of(monkeypatch: pytest.MonkeyPatch, *payloads: bytes) -> list[str]:
    """Filled as the CRC-32 of a buffer of one of the ``payloads``' sizes is taken: the name of
    the thread taking it, one per sum."""
    import zlib

    sizes = {len(payload) for payload in payloads}
    summed: list[str] = []
    crc32 = zlib.crc32

    def counting_crc32(data: bytes, value: int = 0) -> int:
        if len(data) in sizes:
            summed.append(threading.current_thread().name)
        return crc32(data, value)

    monkeypatch.setattr(zlib, "crc32", counting_crc32)
    return summed


def test_a_table_is_summed_again_only_when_new_or_changed(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ltosyms.index import store as store_module

    payload = bytes(range(256)) * 40
    summed = sums_of(monkeypatch, payload)
    assert store.put_table("test/1", payload)
    summed.clear()
    # Just written: its times cannot yet tell it from a write in the same clock tick.
    for _ in range(2):
        assert store.get_table("test/1") == payload
    assert len(summed) == 2

    monkeypatch.setattr(store_module, "_RACY_SECONDS", 0.0)
    summed.clear()
    assert store.get_table("test/1") == payload  # summed, found intact, stamped
    assert store.get_table("test/1") == payload  # the same file: not summed
    assert store.get_table("test/1") == payload
    assert len(summed) == 1

    # Damaged in place, same size, its mtime set back: the ctime moved, so it is summed.
    path = store.table_path("test/1")
    before = path.stat()
    time.sleep(0.05)  # past the file system's timestamp tick
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0xFF
    with open(path, "r+b") as file:
        file.write(damaged)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert store.get_table("test/1") is None
    assert len(summed) == 2


def test_a_large_table_is_summed_ahead_in_a_thread_of_its_own(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ltosyms.index import store as store_module

    large = bytes(range(256)) * 5000  # 1.22 MiB: past the size that gets a thread
    small = bytes(range(256)) * 40
    summed_by = sums_of(monkeypatch, large, small)
    monkeypatch.setattr(store_module, "_RACY_SECONDS", 0.0)
    assert store.put_table("test/1", large)
    assert store.put_table("test/2", small)
    summed_by.clear()
    store.check_tables_ahead(["test/1", "test/2", "test/3"])  # test/3: no such table
    assert store.get_table("test/1") == large
    assert store.get_table("test/2") == small
    assert store.get_table("test/3") is None
    # The large one in its thread, the small one when asked for, each once.
    assert summed_by == ["table-checksum", "MainThread"]
    # Found intact and stamped: checked ahead again, neither is summed.
    store.check_tables_ahead(["test/1", "test/2"])
    assert store.get_table("test/1") == large
    assert store.get_table("test/2") == small
    assert len(summed_by) == 2

    # Damaged in place: refused with one warning, when asked for, not when checked ahead.
    path = store.table_path("test/1")
    time.sleep(0.05)  # past the file system's timestamp tick
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0xFF
    with open(path, "r+b") as file:
        file.write(damaged)
    caplog.clear()
    store.check_tables_ahead(["test/1"])
    assert caplog.messages == []
    assert store.get_table("test/1") is None
    assert summed_by[2:] == ["table-checksum"]
    assert [m for m in caplog.messages if "damaged (checksum)" in m] == [
        f"index table {path} is damaged (checksum); it will be rewritten"
    ]

    # Rewritten after the check was started: the new table is the one handed out.
    store.check_tables_ahead(["test/1"])
    assert store.put_table("test/1", large[::-1])
    assert store.get_table("test/1") == large[::-1]


def test_a_table_checked_ahead_and_never_asked_for_is_remembered_intact(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A log with no frame to look up never asks for the address table: its sum, taken in
    # the background, is remembered when the index is closed, as a use would remember it.
    from ltosyms.index import store as store_module

    large = bytes(range(256)) * 5000
    summed = sums_of(monkeypatch, large)
    monkeypatch.setattr(store_module, "_RACY_SECONDS", 0.0)
    assert store.put_table("test/1", large)
    summed.clear()
    store.check_tables_ahead(["test/1"])
    for thread in threading.enumerate():
        if thread.name == "table-checksum":
            thread.join()
    store.stamp_tables_checked_ahead()
    assert len(summed) == 1
    store.check_tables_ahead(["test/1"])  # the same file: no sum, no thread
    assert store.get_table("test/1") == large
    assert len(summed) == 1
    assert not [t for t in threading.enumerate() if t.name == "table-checksum"]


def test_a_sum_pending_when_the_process_forks_is_taken_in_the_child(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The diff census forks its workers: a child of a process whose check was still running
    # has no such thread, and takes the sum itself when it asks for the table.
    from ltosyms.index.table_check import MappedTable

    large = bytes(range(256)) * 5000
    assert store.put_table("test/1", large)
    release = threading.Event()
    checksum = MappedTable.checksum

    def held_back(self: MappedTable) -> int:
        if threading.current_thread().name == "table-checksum":
            release.wait(10)
        return checksum(self)

    monkeypatch.setattr(MappedTable, "checksum", held_back)
    store.check_tables_ahead(["test/1"])
    child = os.fork()
    if child == 0:
        try:
            intact = store.get_table("test/1") == large
        except BaseException:
            intact = False
        os._exit(0 if intact else 1)
    release.set()
    _pid, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get_table("test/1") == large


def test_only_images_opened_to_answer_addresses_check_their_table_ahead(
    location: CacheLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[str]] = []

    def recorded(self: IndexStore, kinds: Iterable[str]) -> None:
        asked.append(list(kinds))

    monkeypatch.setattr(IndexStore, "check_tables_ahead", recorded)
    with Session(location) as session:  # decode and symbolize open their images so
        session.open_vmlinux(SAMPLES / "vmlinux-gcc")
    assert asked == [[kinds.ADDRESS_TABLE.stored_name]]
    with ImageContext.open(SAMPLES / "vmlinux-gcc", cache=location) as context:  # diff's way
        assert context.answers is not None
    assert len(asked) == 1


def test_a_table_is_summed_when_asked_for_if_no_thread_can_be_started(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    large = bytes(range(256)) * 5000
    assert store.put_table("test/1", large)
    monkeypatch.setattr(threading.Thread, "start", refused)
    store.check_tables_ahead(["test/1"])
    assert store.get_table("test/1") == large
    path = store.table_path("test/1")
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged))  # a new file's times: summed again
    store.check_tables_ahead(["test/1"])
    assert store.get_table("test/1") is None


def test_a_mapped_table_survives_its_replacement(store: IndexStore) -> None:
    # Another process writing the same table replaces the file by a rename: a reader that
    # mapped the old one keeps reading it whole, the next reader gets the new one.
    assert store.put_table("test/1", b"a" * 5000)
    old = store.get_table("test/1")
    assert store.put_table("test/1", b"b" * 6000)
    assert old is not None and bytes(old) == b"a" * 5000
    new = store.get_table("test/1")
    assert new is not None and bytes(new) == b"b" * 6000
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_discarding_an_index_removes_its_tables(image: KernelImage, tmp_path: Path) -> None:
    location = CacheLocation(directory=tmp_path / "cache")
    store = open_store(image, location, cu_format="test")
    assert store is not None and store.put_table(SYMBOLS, kinds.SYMBOLS.encode(SymbolTable(image)))
    table = store.table_path(SYMBOLS)
    database = store.path
    store.close()
    database.write_bytes(b"not a database")
    reopened = open_store(image, location, cu_format="test")
    assert reopened is not None
    assert not table.exists()  # went with the corrupt database it belonged to
    reopened.close()


def test_vmlinux_symbols_load_from_the_table_file(tmp_path: Path) -> None:
    location = CacheLocation(directory=tmp_path / "cache")
    with Session(location) as session:
        cold = list(session.open_vmlinux(GCC).symbols)
    with Session(location) as session:
        warm = session.open_vmlinux(GCC).symbols
        assert isinstance(warm.names, Sequence) and not isinstance(warm.names, list)
        assert list(warm) == cold


def test_patch_tables_round_trip(corpus: Corpus) -> None:
    with open_image(corpus.debian_vmlinux()) as image:
        read = PatchSites(image)
        assert read.available and len(read) > 50_000  # alternatives, paravirt, thunk sites
        stored = kinds.PATCH_SITES.decode(kinds.PATCH_SITES.encode(read), image)
        assert len(stored) == len(read)
        text = image.get_section(".text")
        assert text is not None
        sites = 0
        for start in range(text.link_address, text.end_address, 4099):
            found = read.overlapping(start, start + 256)
            assert stored.overlapping(start, start + 256) == found
            sites += len(found)
        assert sites > 1000
        with pytest.raises(StoredValueError, match="stored"):
            kinds.PATCH_SITES.decode(b"\x00not marshal", image)


# The command group itself, not main(): main() ends the process without running what follows.
_DECODE = """
import sys
from ltosyms.cli import cli
sys.argv = ["ltosyms", *sys.argv[1:]]
try:
    cli(prog_name="ltosyms")
finally:
    sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
"""

# What a decode of known addresses and Code: lines must not need once the index holds them.
_COLD_ONLY_MODULES = (
    "ltosyms.disasm.capstone_library",  # capstone's library (its package is not imported)
    "ltosyms.disasm.code_view",
    "ltosyms.disasm.compare",
    "ltosyms.disasm.listing",
    # The DWARF layer's parsers and unit tables: a warm decode imports its package, the
    # resolver, the records and the section types only.
    "ltosyms.dwarf.build",
    "ltosyms.dwarf.codegen",
    "ltosyms.dwarf.extract",
    "ltosyms.dwarf.forms",
    "ltosyms.dwarf.info",
    "ltosyms.dwarf.line",
    "ltosyms.dwarf.parser",
    "ltosyms.dwarf.ranges",
    "ltosyms.dwarf.unit_map",
    "ltosyms.dwarf.unit_tables",
    "ltosyms.dwarf.units",
    "ltosyms.dwarf.walk",
)


def _decode(arguments: list[str], cache: Path) -> tuple[bytes, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _DECODE, "decode", *arguments, "--cache-dir", str(cache)],
        capture_output=True,
        check=True,
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        timeout=600,
    )
    modules = result.stderr.decode().rsplit("MODULES ", 1)[1].split()
    return result.stdout, set(modules)


def test_warm_decode_of_the_debian_log_needs_no_parser_or_disassembler(
    corpus: Corpus, tmp_path: Path
) -> None:
    log = corpus.debian / "logs" / "console-sysrq.log"
    arguments = [
        str(corpus.debian_vmlinux()),
        str(log),
        "--modules",
        str(corpus.debian / "modules"),
        "--json",
    ]
    cache = tmp_path / "cache"
    cold_output, cold_modules = _decode(arguments, cache)
    warm_output, warm_modules = _decode(arguments, cache)
    assert set(_COLD_ONLY_MODULES) <= cold_modules
    assert not set(_COLD_ONLY_MODULES) & warm_modules
    assert "capstone" not in cold_modules | warm_modules
    # Only a diff stores or reads a census.
    assert "ltosyms.index.census_codec" not in cold_modules | warm_modules
    assert warm_output == cold_output
    document = json.loads(warm_output)
    frames = [f for report in document["reports"] for f in report["frames"]]
    assert len(frames) > 600
    assert sum(1 for report in document["reports"] if report.get("code")) >= 2
