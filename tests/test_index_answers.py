"""What a decode keeps in the index besides DWARF units, and that later runs are served from it:
call sites, instruction boundaries, boot-patch tables, build facts, inline chains by address,
Code: analyses, and the symbol table as a memory-mapped table file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import PROJECT, SAMPLES, Corpus

from ltosyms.disasm import callsite
from ltosyms.disasm.callsite import CALL_SITE_KIND, SWEEP_KIND, CallSiteFinder
from ltosyms.disasm.patching import PatchSites
from ltosyms.dwarf import LOCATIONS_KIND
from ltosyms.elf import build_facts
from ltosyms.elf.build_facts import read_build_facts
from ltosyms.elf.debug_sections import dwarf_resolver
from ltosyms.elf.image import KernelImage, open_image
from ltosyms.elf.kernel import SYMBOLS_KIND, load_vmlinux
from ltosyms.elf.symtab import SymbolTable
from ltosyms.index.store import CacheLocation, IndexStore, open_store

GCC = SAMPLES / "vmlinux-gcc"


class DictStore:
    """The derived-facts half of the index, in memory, counting what was asked and written."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], bytes] = {}
        self.reads = 0
        self.writes = 0

    def get_derived(self, kind: str, key: str) -> bytes | None:
        self.reads += 1
        return self.items.get((kind, key))

    def put_derived(self, kind: str, items: Sequence[tuple[str, bytes]]) -> None:
        self.writes += len(items)
        for key, data in items:
            self.items.setdefault((kind, key), data)


@pytest.fixture
def image(gcc_sample: KernelImage) -> KernelImage:
    return gcc_sample


@pytest.fixture
def store(image: KernelImage, tmp_path: Path) -> Iterator[IndexStore]:
    opened = open_store(image, CacheLocation(tmp_path / "cache"), cu_format="test")
    assert opened is not None
    yield opened
    opened.close()


def _return_addresses(image: KernelImage, symbols: SymbolTable) -> list[tuple[int, int]]:
    """(return address, function start) of every call in the sample's functions, found by a
    finder without a store."""
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


def test_call_sites_come_back_from_the_store(image: KernelImage) -> None:
    symbols = SymbolTable(image)
    calls = _return_addresses(image, symbols)
    assert len(calls) > 20
    # Some addresses inside instructions too: "no instruction ends here" is an answer as well.
    queries = [*calls, *((ra + 1, start) for ra, start in calls[:10])]
    store = DictStore()
    first = CallSiteFinder(image, symbols=symbols)
    first.use_store(store)
    answers = [first.call_ending_at(ra, start) for ra, start in queries]
    first.save()
    assert len({key for kind, key in store.items if kind == CALL_SITE_KIND}) == len(set(queries))

    second = CallSiteFinder(image, symbols=symbols)
    second.use_store(store)
    assert [second.call_ending_at(ra, start) for ra, start in queries] == answers
    assert not second._sweeps  # nothing was disassembled
    fresh = CallSiteFinder(image, symbols=symbols)
    assert [fresh.call_ending_at(ra, start) for ra, start in queries] == answers


def test_stored_sweeps_answer_other_addresses_of_the_same_functions(
    image: KernelImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    symbols = SymbolTable(image)
    calls = _return_addresses(image, symbols)
    # One call per function is asked first; the others (and every other instruction end) later.
    first_calls = {start: (ra, start) for ra, start in reversed(calls)}
    store = DictStore()
    first = CallSiteFinder(image, symbols=symbols)
    first.use_store(store)
    for ra, start in first_calls.values():
        first.call_ending_at(ra, start)
    first.save()
    sweeps = {key for kind, key in store.items if kind == SWEEP_KIND}
    assert sweeps == {f"{start:x}" for start in first_calls}

    later = [
        (end, symbol.link_address)
        for symbol in symbols
        if symbol.is_function and f"{symbol.link_address:x}" in sweeps
        for end in range(symbol.link_address + 1, symbol.end_address + 1)
    ]
    expected = [CallSiteFinder(image, symbols=symbols).call_ending_at(*q) for q in later]
    assert sum(1 for site in expected if site is not None and site.is_call) > len(first_calls)

    def no_disassembly(*args: object) -> None:
        raise AssertionError("disassembled although the function's sweep is stored")

    monkeypatch.setattr(callsite, "iter_instructions", no_disassembly)
    second = CallSiteFinder(image, symbols=symbols)
    second.use_store(store)
    assert [second.call_ending_at(*q) for q in later] == expected


def test_a_store_needs_the_symbol_table(image: KernelImage) -> None:
    # Thunk calls are told apart by the callee's name: answers depend on the symbols.
    with pytest.raises(ValueError, match="symbol table"):
        CallSiteFinder(image).use_store(DictStore())


def test_inline_chains_come_back_without_loading_units(
    image: KernelImage, store: IndexStore
) -> None:
    symbols = SymbolTable(image)
    addresses = [
        address
        for symbol in symbols
        if symbol.is_function and symbol.elf_size
        for address in range(symbol.link_address, symbol.end_address, 7)
    ]
    first = dwarf_resolver(image, store, symbols)
    expected = [first.locations(address) for address in addresses]
    assert sum(1 for chain in expected if chain) > 0.9 * len(addresses)
    assert first.parsed_units > 0
    first.save()
    assert store.query("SELECT COUNT(*) FROM derived WHERE kind = ?", (LOCATIONS_KIND,)) == [
        (len(set(addresses)),)
    ]

    second = dwarf_resolver(image, store, symbols)
    assert [second.locations(address) for address in addresses] == expected
    assert second.parsed_units == 0 and second.loaded_units == 0
    # Without the symbol table, chains name the outermost entry from DWARF: nothing stored
    # is used for them.
    third = dwarf_resolver(image, store)
    third.locations(addresses[0])
    assert third.loaded_units == 1


def test_build_facts_come_back_from_the_store(
    image: KernelImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    symbols = SymbolTable(image)
    store = DictStore()
    facts = read_build_facts(image, symbols, store)
    assert facts.banner is not None and facts.banner.startswith("Linux version")

    def no_reading(*args: object) -> None:
        raise AssertionError("read the image although the store holds the facts")

    monkeypatch.setattr(build_facts, "_read_build_facts", no_reading)
    assert read_build_facts(image, symbols, store) == facts


def test_symbol_table_file_round_trip(image: KernelImage, store: IndexStore) -> None:
    loaded = SymbolTable(image)
    assert store.get_table(SYMBOLS_KIND) is None
    assert store.put_table(SYMBOLS_KIND, loaded.to_bytes())
    path = store.table_path(SYMBOLS_KIND)
    assert path.name == f"{store.path.name}.symbols-{SymbolTable.FORMAT}.table"
    mapped = store.get_table(SYMBOLS_KIND)
    assert mapped is not None
    table = SymbolTable.from_bytes(image, mapped)
    assert table is not None
    assert list(table) == list(loaded)
    assert list(table.names) == list(loaded.names)
    assert table.kallsyms_sizes == loaded.kallsyms_sizes
    for symbol in loaded:
        assert table.by_name(symbol.name) == loaded.by_name(symbol.name)
        assert table.by_base_name(symbol.base_name) == loaded.by_base_name(symbol.base_name)
        assert table.lookup(symbol.link_address) == loaded.lookup(symbol.link_address)
    assert table.address_of("no_such_symbol") is None


def test_damaged_or_foreign_table_files_are_not_used(
    image: KernelImage, store: IndexStore, tmp_path: Path
) -> None:
    data = SymbolTable(image).to_bytes()
    assert store.put_table(SYMBOLS_KIND, data)
    path = store.table_path(SYMBOLS_KIND)
    whole = path.read_bytes()

    path.write_bytes(whole[:-100])  # cut short
    assert store.get_table(SYMBOLS_KIND) is None
    # Another image's table under this name (a file copied by hand): its key differs.
    with open_image(SAMPLES / "vmlinux-clang") as other:
        other_store = open_store(other, CacheLocation(tmp_path / "other"), cu_format="test")
        assert other_store is not None
        assert other_store.put_table(SYMBOLS_KIND, SymbolTable(other).to_bytes())
        shutil.copyfile(other_store.table_path(SYMBOLS_KIND), path)
        other_store.close()
    assert store.get_table(SYMBOLS_KIND) is None

    # A flipped payload byte passes the cheap checks; the integrity check finds and removes it.
    damaged = bytearray(whole)
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged))
    assert store.get_table(SYMBOLS_KIND) is not None
    assert store.check_integrity() is False
    assert not path.exists()
    assert store.put_table(SYMBOLS_KIND, data)
    assert store.check_integrity() is True


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
    location = CacheLocation(tmp_path / "cache")
    store = open_store(image, location, cu_format="test")
    assert store is not None and store.put_table(SYMBOLS_KIND, SymbolTable(image).to_bytes())
    table = store.table_path(SYMBOLS_KIND)
    database = store.path
    store.close()
    database.write_bytes(b"not a database")
    reopened = open_store(image, location, cu_format="test")
    assert reopened is not None
    assert not table.exists()  # went with the corrupt database it belonged to
    reopened.close()


def test_vmlinux_symbols_load_from_the_table_file(tmp_path: Path) -> None:
    location = CacheLocation(tmp_path / "cache")
    stores: list[IndexStore] = []

    def store_for(opened: KernelImage) -> IndexStore | None:
        store = open_store(opened, location, cu_format="test")
        if store is not None:
            stores.append(store)
        return store

    cold = load_vmlinux(GCC, store_for)
    warm = load_vmlinux(GCC, store_for)
    assert isinstance(warm.symbols.names, Sequence) and not isinstance(warm.symbols.names, list)
    assert list(warm.symbols) == list(cold.symbols)
    for store in stores:
        store.close()


def test_patch_tables_round_trip(corpus: Corpus) -> None:
    with open_image(corpus.debian_vmlinux()) as image:
        read = PatchSites(image)
        assert read.available and len(read) > 50_000  # alternatives, paravirt, thunk sites
        stored = PatchSites.from_bytes(image, read.to_bytes())
        assert len(stored) == len(read)
        text = image.get_section(".text")
        assert text is not None
        sites = 0
        for start in range(text.link_address, text.end_address, 4099):
            found = read.overlapping(start, start + 256)
            assert stored.overlapping(start, start + 256) == found
            sites += len(found)
        assert sites > 1000
        with pytest.raises(ValueError, match="patch sites"):
            PatchSites.from_bytes(image, b"\x00not marshal")


_DECODE = """
import sys
from ltosyms.cli import main
sys.argv = ["ltosyms", *sys.argv[1:]]
try:
    main()
finally:
    sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
"""

# What a decode of known addresses and Code: lines must not need once the index holds them.
_COLD_ONLY_MODULES = (
    "capstone",
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
    assert warm_output == cold_output
    document = json.loads(warm_output)
    frames = [f for report in document["reports"] for f in report["frames"]]
    assert len(frames) > 600
    assert sum(1 for report in document["reports"] if report.get("code")) >= 2
