"""The symbol table kept in the index answers exactly as the one loaded from the ELF."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES, Corpus

from ltosyms.elf.image import KernelImage, open_image
from ltosyms.elf.symtab import SymbolTable
from ltosyms.index.store import CacheLocation, IndexStore, open_store
from ltosyms.index.symbols import (
    StoredSymbolTable,
    SymbolLookup,
    has_symbols,
    load_symbols,
    store_symbols,
)
from ltosyms.names.suffixes import parse_name


def stored_copy(image: KernelImage, directory: Path) -> tuple[SymbolTable, IndexStore]:
    table = SymbolTable(image)
    store = open_store(image, CacheLocation(directory))
    assert store is not None
    assert store_symbols(store, table)
    return table, store


def probe_addresses(table: SymbolTable, count: int) -> list[int]:
    """Starts, ends and insides of symbols, the gaps between them, and random addresses."""
    rng = random.Random(20240613)
    defined = [i for i in range(len(table)) if table.is_defined(i) and table.names[i]]
    addresses = {0, 1, (1 << 64) - 1}
    for index in rng.sample(defined, min(count, len(defined))):
        start, size = table.link_addresses[index], table.elf_sizes[index]
        kallsyms = table.kallsyms_sizes[index] or 0
        addresses.update(
            {start, start + 1, start + size - 1, start + size, start + kallsyms, start - 1}
        )
    low = min(table.link_addresses[i] for i in defined)
    high = max(table.link_addresses[i] for i in defined)
    addresses.update(rng.randrange(low, high + 1) for _ in range(count // 4))
    return sorted(a for a in addresses if 0 <= a < 1 << 64)


def assert_same_answers(
    table: SymbolTable, stored: SymbolLookup, sample: int, every_symbol: bool = True
) -> None:
    assert len(stored) == len(table)
    assert stored.kept_count == table.kept_count
    if every_symbol:
        assert list(stored) == list(table)  # type: ignore[call-overload]
    assert [stored.symbol(i) for i in range(0, len(table), 97)] == [
        table.symbol(i) for i in range(0, len(table), 97)
    ]
    rng = random.Random(7)
    names = sorted({n for n in table.names if n})
    bases = sorted({parse_name(n).base for n in names})
    suffixed = [n for n in names if "." in n[1:]]
    chosen = rng.sample(names, min(sample, len(names))) + suffixed[:sample] + ["", "no_such_fn"]
    for name in chosen:
        assert stored.by_name(name) == table.by_name(name), name
        assert stored.address_of(name) == table.address_of(name), name
    for base in rng.sample(bases, min(sample, len(bases))) + [
        parse_name(n).base for n in suffixed[:sample]
    ]:
        assert stored.by_base_name(base) == table.by_base_name(base), base
        assert stored.names_with_base(base) == table.names_with_base(base), base
    for number, address in enumerate(probe_addresses(table, sample)):
        assert stored.lookup(address) == table.lookup(address), hex(address)
        assert stored.symbols_at(address) == table.symbols_at(address), hex(address)
        if number % 3 == 0:  # SymbolTable's own walk is slow where no function is
            found = stored.function_containing(address)
            assert found == table.function_containing(address), hex(address)


@pytest.mark.parametrize("name", ["vmlinux-gcc", "vmlinux-clang-thinlto", "sample_mod-gcc.ko"])
def test_samples_answer_the_same(name: str, tmp_path: Path) -> None:
    with open_image(SAMPLES / name) as image:
        table, store = stored_copy(image, tmp_path)
        assert_same_answers(table, StoredSymbolTable(image, store), sample=400)
        store.close()


@pytest.fixture(scope="module", params=["gcc-nolto", "clang-thinlto"])
def corpus_kernel(
    request: pytest.FixtureRequest, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SymbolTable, IndexStore, KernelImage]]:
    image = open_image(corpus.kernel_vmlinux(request.param))
    table, store = stored_copy(image, tmp_path_factory.mktemp("symbols"))
    yield table, store, image
    store.close()
    image.close()


def test_real_kernels_answer_the_same(
    corpus_kernel: tuple[SymbolTable, IndexStore, KernelImage],
) -> None:
    table, store, image = corpus_kernel
    # Every record of the LTO kernel (its .llvm. names included); a sample of the other's.
    every_symbol = any(".llvm." in name for name in table.names)
    assert_same_answers(table, StoredSymbolTable(image, store), 400, every_symbol)


def test_load_symbols_uses_the_index_the_second_time(tmp_path: Path) -> None:
    with open_image(SAMPLES / "vmlinux-gcc") as image:
        store = open_store(image, CacheLocation(tmp_path))
        assert store is not None
        first = load_symbols(image, store)
        assert isinstance(first, SymbolTable) and has_symbols(store)
        second = load_symbols(image, store)
        assert isinstance(second, StoredSymbolTable)
        assert load_symbols(image, None).lookup(0) == second.lookup(0)
        store.close()


def test_broken_index_falls_back_to_the_elf(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open_image(SAMPLES / "vmlinux-clang-thinlto") as image:
        table, store = stored_copy(image, tmp_path)
        store.close()
        store = open_store(image, CacheLocation(tmp_path))
        assert store is not None
        stored = StoredSymbolTable(image, store)
        name = next(n for n in table.names if ".llvm." in n)
        assert stored.by_name(name) == table.by_name(name)
        # The file is overwritten under the open store: every later answer must still be right.
        with open(store.path, "r+b") as file:
            file.seek(0)
            file.write(os.urandom(os.path.getsize(store.path)))
        with caplog.at_level(logging.WARNING, logger="ltosyms.index"):
            assert_same_answers(table, stored, sample=100)
        assert "corrupt" in caplog.text
        assert has_symbols(store)  # written back into the rebuilt index
        store.close()
