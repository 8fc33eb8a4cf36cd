"""The symbol table equals nm's, and kallsyms sizes equal what real oopses print."""

from __future__ import annotations

import bisect
import json
import shutil
import subprocess
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import KERNEL_VARIANTS, SAMPLES, Corpus, runtime_minus_link

from ltosyms.elf.image import open_image
from ltosyms.elf.kernel import load_module, load_vmlinux
from ltosyms.elf.symtab import SymbolTable
from ltosyms.index import StoredValueError, kinds

needs_nm = pytest.mark.skipif(shutil.which("nm") is None, reason="binutils nm not installed")


def nm_symbols(path: Path) -> set[tuple[str, int, int]]:
    """(name, address, size) of every defined, non-absolute symbol, as nm prints them."""
    output = subprocess.run(
        ["nm", "-S", "--defined-only", str(path)], capture_output=True, text=True, check=True
    ).stdout
    found = set()
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 4:
            address, size, letter, name = fields
        elif len(fields) == 3:
            (address, letter, name), size = fields, "0"
        else:
            continue
        if letter in "aA":
            continue
        found.add((name, int(address, 16), int(size, 16)))
    return found


def our_symbols(symbols: SymbolTable, relative: bool = False) -> set[tuple[str, int, int]]:
    sections = symbols.image.sections
    found = set()
    for symbol in symbols:
        if symbol.section in ("*UND*", "*ABS*"):
            continue
        address = symbol.link_address
        if relative:  # nm prints section offsets for relocatable objects
            section = next(s for s in sections if s.name == symbol.section)
            address -= section.link_address
        found.add((symbol.name, address, symbol.elf_size))
    return found


def sample_images() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("vmlinux-*") if p.is_file() and p.suffix == "")


@needs_nm
@pytest.mark.parametrize("path", sample_images(), ids=lambda p: p.name)
def test_sample_symbols_equal_nm(path: Path) -> None:
    loaded = load_vmlinux(path)
    assert our_symbols(loaded.symbols) == nm_symbols(path)


@needs_nm
@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.ko")), ids=lambda p: p.name)
def test_sample_module_symbols_equal_nm(path: Path) -> None:
    loaded = load_module(path)
    assert our_symbols(loaded.symbols, relative=True) == nm_symbols(path)


@needs_nm
@pytest.mark.parametrize("variant", KERNEL_VARIANTS)
def test_corpus_kernel_symbols_equal_nm(corpus: Corpus, variant: str) -> None:
    path = corpus.kernel_vmlinux(variant)
    assert our_symbols(load_vmlinux(path).symbols) == nm_symbols(path)


@needs_nm
def test_debian_symbols_equal_nm(corpus: Corpus) -> None:
    path = corpus.debian_vmlinux()
    ours = our_symbols(load_vmlinux(path).symbols)
    assert len(ours) > 100_000
    assert ours == nm_symbols(path)


def _expected_frames(path: Path) -> list[dict[str, object]]:
    frames: list[dict[str, object]] = json.loads(path.read_text())
    return [f for f in frames if f["module"] is None]


def _check_kallsyms_sizes(symbols: SymbolTable, frames: list[dict[str, object]]) -> int:
    checked = 0
    for frame in frames:
        address = int(str(frame["symbol_address"]), 16)
        name = str(frame.get("elf_name") or frame["symbol"])
        matches = [s for s in symbols.by_name(name) if s.link_address == address]
        assert matches, f"{name} at {address:#x} is not in the symbol table"
        assert matches[0].kallsyms_size == frame["size"], frame["raw_line"]
        checked += 1
    return checked


def test_debian_kallsyms_sizes_equal_printed_sizes(corpus: Corpus) -> None:
    symbols = load_vmlinux(corpus.debian_vmlinux()).symbols
    frames = _expected_frames(corpus.debian / "expected" / "frames.json")
    assert _check_kallsyms_sizes(symbols, frames) >= 1285


@pytest.mark.parametrize("variant", KERNEL_VARIANTS)
def test_kernel_kallsyms_sizes_equal_printed_sizes(corpus: Corpus, variant: str) -> None:
    symbols = load_vmlinux(corpus.kernel_vmlinux(variant)).symbols
    frames = _expected_frames(corpus.kernels / variant / "expected" / "frames.json")
    assert _check_kallsyms_sizes(symbols, frames) > 250


def test_kept_count_equals_kernel_stored_count(corpus: Corpus) -> None:
    # The kernel stores how many symbols kallsyms kept; our keep rules must agree exactly.
    loaded = load_vmlinux(corpus.debian_vmlinux())
    address = loaded.symbols.address_of("kallsyms_num_syms")
    assert address is not None
    stored = int.from_bytes(loaded.image.read(address, 4), "little")
    assert loaded.symbols.kept_count == stored
    assert loaded.symbols.rule.all_symbols  # Debian builds with CONFIG_KALLSYMS_ALL=y


def test_lookup_follows_kernel_semantics(corpus: Corpus) -> None:
    symbols = load_vmlinux(corpus.kernel_vmlinux("clang-thinlto")).symbols
    (wake,) = symbols.by_base_name("try_to_wake_up")
    assert wake.name.startswith("try_to_wake_up.llvm.")
    assert symbols.lookup(wake.link_address + 0x10) == wake
    assert wake.kallsyms_size is not None
    # the first byte past the kallsyms size belongs to the next symbol
    following = symbols.lookup(wake.link_address + wake.kallsyms_size)
    assert following is not None and following.name != wake.name
    assert [s.name for s in symbols.by_name(wake.name)] == [wake.name]


def test_aliases_are_named_as_the_kernel_prints_them(corpus: Corpus) -> None:
    # /proc/kallsyms lists a vmlinux's symbols in kallsyms order: among aliases the first is
    # the one an oops prints (get_symbol_pos() steps back to it). A module's are listed in its
    # symbol table's order, whose first at an address find_kallsyms_symbol() keeps.
    lines = (corpus.debian / "kallsyms" / "proc-kallsyms.txt").read_text().splitlines()
    at_address: dict[int, list[tuple[str, str]]] = {}
    in_module: dict[tuple[str, int], list[str]] = {}
    for line in lines:
        fields = line.split()
        if len(fields) == 3:
            at_address.setdefault(int(fields[0], 16), []).append((fields[1], fields[2]))
        elif len(fields) == 4:
            in_module.setdefault((fields[3].strip("[]"), int(fields[0], 16)), []).append(fields[2])
    loaded = load_vmlinux(corpus.debian_vmlinux())
    symbols = loaded.symbols
    startup = symbols.address_of("startup_64")
    assert startup is not None
    kaslr_offset = runtime_minus_link(lines, loaded, "startup_64")
    # Per-cpu symbols (`A`) are offsets, not moved by KASLR: no alias group has one but these.
    groups = {
        address - kaslr_offset: [name for _letter, name in named]
        for address, named in at_address.items()
        if len(named) > 1 and all(letter != "A" for letter, _name in named)
    }
    assert len(groups) == 401
    printed = {address: symbols.lookup(address) for address in groups}
    assert {a: s.name if s else None for a, s in printed.items()} == {
        a: names[0] for a, names in groups.items()
    }
    # Each rule decides some group: weak last, linker-script names last, fewer underscores,
    # then the name.
    assert groups[startup] == ["startup_64", "_stext", "_text"]
    memmove = symbols.address_of("memmove")
    assert memmove is not None and groups[memmove] == ["__memmove", "memmove"]
    pwait = symbols.address_of("do_epoll_pwait.part.0")
    assert pwait is not None
    assert groups[pwait] == ["do_compat_epoll_pwait.part.0", "do_epoll_pwait.part.0"]
    checked = 0
    for (module, _runtime), names in in_module.items():
        path = corpus.debian / "modules" / f"{module}.ko"
        if len(names) > 1 and path.exists():
            module_symbols = load_module(path).symbols
            (first,) = module_symbols.by_name(names[0])
            found = module_symbols.lookup(first.link_address)
            assert found is not None and found.name == names[0]
            checked += 1
    assert checked == 3  # tun_cleanup/cleanup_module, tracegen_exit/..., __key.100/__key.101


def test_kallsyms_sizes_equal_the_kernels_own_table(corpus: Corpus) -> None:
    # A kallsyms size is the distance to the next higher address of the kernel's table: the
    # real /proc/kallsyms of the Debian kernel gives it for every symbol, not only the printed
    # ones (per-cpu symbols are offsets into the per-cpu area, `A` there: not compared).
    lines = (corpus.debian / "kallsyms" / "proc-kallsyms.txt").read_text().splitlines()
    rows = [line.split() for line in lines]
    loaded = load_vmlinux(corpus.debian_vmlinux())
    symbols = loaded.symbols
    kaslr_offset = runtime_minus_link(lines, loaded, "startup_64")
    starts = sorted(
        {int(f[0], 16) - kaslr_offset for f in rows if len(f) == 3 and f[1] not in "aA"}
    )
    checked = 0
    for index in symbols.kept_indexes:
        symbol = symbols.symbol(index)
        if symbol.nm_type in "aA" or symbol.link_address < 0xFFFF_0000_0000_0000:
            continue
        following = bisect.bisect_right(starts, symbol.link_address)
        if following < len(starts):
            assert symbol.kallsyms_size == starts[following] - symbol.link_address, symbol
            checked += 1
    assert checked == 86_987  # every kept symbol but the per-cpu ones and the last


def test_the_widest_alias_holds_the_extent(corpus: Corpus) -> None:
    # gcc LTO's kernel starts with three names: kallsyms prints the label `_stext` (fewest
    # underscores, then by name), the code's extent is `__startup_64`'s (a function).
    symbols = load_vmlinux(corpus.kernel_vmlinux("gcc-lto")).symbols
    start = symbols.address_of("__startup_64")
    assert start is not None
    printed = symbols.lookup(start)
    assert printed is not None and printed.name == "_stext" and not printed.elf_size
    assert [s.name for s in symbols.symbols_at(start)] == ["_stext", "_text", "__startup_64"]
    widest = symbols.widest_alias(printed)
    assert widest.name == "__startup_64" and widest.is_function and widest.elf_size == 925


def test_kept_lookups_answer_as_fresh_ones(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    # lookup keeps its last answers (the stages of one answer ask for the same addresses);
    # kept or not, past the limit and after it was cleared, the answers are the same.
    from ltosyms.elf import symtab

    monkeypatch.setattr(symtab, "LOOKUPS_KEPT", 97)
    image = open_image(corpus.kernel_vmlinux("clang-thinlto"))
    kept, fresh = SymbolTable(image), SymbolTable(image)
    looked_up: list[int] = []
    lookup = kept._lookup

    def counted(address: int) -> symtab.Symbol | None:
        looked_up.append(address)
        return lookup(address)

    monkeypatch.setattr(kept, "_lookup", counted)
    # 2,258 addresses 929 bytes apart over 2 MiB of .text: 1,945 functions of the kernel
    # (the count pins what is compared, not a kallsyms rule).
    addresses = list(range(0xFFFFFFFF81000000, 0xFFFFFFFF81200000, 0x3A1))
    answers = [kept.lookup(address) for address in addresses]
    again = [kept.lookup(address) for address in reversed(addresses)][::-1]
    assert answers == again == [fresh._lookup(address) for address in addresses]
    assert len({symbol.name for symbol in answers if symbol is not None}) == 1_945
    # Cleared each time it is full, the memo held the last 2,258 mod 97 = 27 addresses of
    # the first pass: the second pass, backwards, found those without a lookup.
    assert len(looked_up) == 2 * len(addresses) - 27
    assert 0 < len(kept._looked_up) <= 97


def test_module_sections_get_distinct_addresses(corpus: Corpus) -> None:
    loaded = load_module(corpus.kernels / "clang-thinlto" / "lkdtm.ko")
    text_sections = [s for s in loaded.image.sections if s.is_exec and s.size]
    assert len(text_sections) > 10  # clang LTO modules: one .text.<fn> per function
    spans = sorted((s.link_address, s.end_address) for s in text_sections)
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))


def test_open_image_rejects_module_as_vmlinux(corpus: Corpus) -> None:
    from ltosyms.errors import InputError

    with pytest.raises(InputError, match="kernel module"):
        load_vmlinux(corpus.debian / "modules" / "tracegen.ko")
    assert open_image(corpus.debian / "modules" / "tracegen.ko").is_module


def test_stored_table_answers_as_the_loaded_one(corpus: Corpus) -> None:
    # decode keeps the loaded columns in the index (ltosyms.index.kinds.SYMBOLS) and builds
    # the table back from them (SymbolTable.from_columns).
    image = open_image(corpus.kernel_vmlinux("clang-thinlto"))
    loaded = SymbolTable(image)
    stored = kinds.SYMBOLS.decode(kinds.SYMBOLS.encode(loaded), image)
    assert list(stored) == list(loaded)
    assert stored.kept_count == loaded.kept_count and stored.rule == loaded.rule
    for name in ("try_to_wake_up", "name_show", "c_start", "_stext"):
        assert stored.by_base_name(name) == loaded.by_base_name(name)
    for address in range(0xFFFFFFFF81000000, 0xFFFFFFFF81400000, 0x1357):
        assert stored.lookup(address) == loaded.lookup(address)
    # another build's image refuses the table
    other = open_image(corpus.kernel_vmlinux("gcc-nolto"))
    with pytest.raises(StoredValueError, match="another build"):
        kinds.SYMBOLS.decode(kinds.SYMBOLS.encode(loaded), other)
    with pytest.raises(StoredValueError):
        kinds.SYMBOLS.decode(b"not a table", image)
    # columns that do not fit together are no table
    columns = loaded.columns()
    with pytest.raises(ValueError, match="differ in length"):
        SymbolTable.from_columns(image, replace(columns, elf_sizes=columns.elf_sizes[1:]))


@pytest.mark.parametrize(
    "names",
    [
        ["try_to_wake_up", "", "c_start", "_stext"],
        ["ascii", "r\u00e9sum\u00e9", "\u65e5\u672c", "z"],  # offsets count characters
        ["only"],
        [],
    ],
)
def test_name_column_reads_names_from_text_or_mapped_bytes(names: list[str]) -> None:
    from itertools import accumulate

    from ltosyms.elf.symtab import NameColumn

    offsets = list(accumulate((len(name) + 1 for name in names), initial=0))
    joined = "\0".join(names)
    for text in (joined, memoryview(joined.encode())):
        column = NameColumn(text, offsets)
        assert len(column) == len(names)
        assert [column[i] for i in range(len(names))] == names
        assert list(column) == names
        assert column[-1:] == names[-1:]


def test_name_column_reads_a_damaged_byte_as_a_replacement_character() -> None:
    from ltosyms.elf.symtab import NameColumn

    column = NameColumn(memoryview(b"abc\0d\xffe"), [0, 4, 8])
    assert column[0] == "abc"
    assert column[1] == "d\ufffde"
    assert list(column) == ["abc", "d\ufffde"]


def test_names_and_their_continuations_in_one_bisection(corpus: Corpus) -> None:
    # decode's candidates for a printed name: the name itself and the names an era cuts to it
    # (`name.<more>`, `name$<more>`), as by_name and by_name_prefix give them.
    image = open_image(corpus.kernel_vmlinux("clang-thinlto"))
    stored = kinds.SYMBOLS.decode(kinds.SYMBOLS.encode(SymbolTable(image)), image)
    printed = sorted({symbol.name.split(".")[0].split("$")[0] for symbol in stored})
    continued_names = 0
    for name in [*printed, "", "no_such_symbol", "zzzz"]:
        exact, (dotted, dollar) = stored.by_name_or_continued(name, ".$")
        assert exact == stored.by_name(name)
        assert dotted == stored.by_name_prefix(name + ".")
        assert dollar == stored.by_name_prefix(name + "$")
        continued_names += bool(dotted or dollar)
    assert (len(printed), continued_names) == (30_956, 908)
