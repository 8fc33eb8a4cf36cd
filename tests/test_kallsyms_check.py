"""kallsyms-check analysis: ambiguous printed names, lossy names, build facts, dump checks.

The ambiguous groups of the clang ThinLTO kernel are recomputed here from ``nm`` output with
the kernel's rules written out by hand (scripts/mksysmap, scripts/kallsyms.c, kernel/kallsyms.c
6.1.192 cleanup_symbol_name()); dumps are the corpus' real /proc/kallsyms copies and System.maps.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import SMALL_KERNELS, Corpus, runtime_minus_link

from ltosyms.elf.kernel import LoadedImage, load_vmlinux
from ltosyms.elf.symtab import Symbol
from ltosyms.errors import InputError
from ltosyms.kallsyms_check import (
    DumpKind,
    FailCondition,
    KallsymsCheck,
    Verdict,
    check_kallsyms,
    dwarf_files_of,
    parse_dump,
    read_dump,
    verify_dump,
)
from ltosyms.kallsyms_check.names import removed_clone_kinds
from ltosyms.names.suffixes import SuffixKind
from ltosyms.render.kallsyms_check_text import check_text

needs_nm = pytest.mark.skipif(shutil.which("nm") is None, reason="binutils nm not installed")

# scripts/mksysmap 6.1 and scripts/kallsyms.c 6.1 is_ignored_symbol() for an x86-64 kernel.
MKSYSMAP_TYPES = set("aNUw")
MKSYSMAP_PREFIXES = ("$", ".L", "__crc_", "__kstrtab_", "__kstrtabns_")
KALLSYMS_NAMES = {
    "kallsyms_addresses",
    "kallsyms_offsets",
    "kallsyms_relative_base",
    "kallsyms_num_syms",
    "kallsyms_names",
    "kallsyms_markers",
    "kallsyms_token_table",
    "kallsyms_token_index",
    "kallsyms_seqs_of_names",
}


def nm_kept(path: Path) -> list[tuple[int, str, str]]:
    """(address, type, name) of what kallsyms keeps, from `nm -S --defined-only`."""
    output = subprocess.run(
        ["nm", "-S", "--defined-only", str(path)], capture_output=True, text=True, check=True
    ).stdout
    kept = []
    for line in output.splitlines():
        fields = line.split()
        address, letter, name = (fields[0], fields[2], fields[3]) if len(fields) == 4 else fields
        if letter in MKSYSMAP_TYPES or name.startswith(MKSYSMAP_PREFIXES) or name == "L0":
            continue
        if name in KALLSYMS_NAMES or letter in "UuNnA":
            continue
        kept.append((int(address, 16), letter, name))
    return kept


def nm_address(path: Path, name: str) -> int:
    output = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return next(
        int(line.split()[0], 16) for line in output.splitlines() if line.endswith(" " + name)
    )


def kallsyms_sizes(kept: list[tuple[int, str, str]], end: int) -> dict[int, int]:
    """kernel/kallsyms.c get_symbol_pos(): distance to the next kept symbol above."""
    addresses = sorted({address for address, _, _ in kept})
    following = [*addresses[1:], end]
    return dict(
        zip(addresses, (b - a for a, b in zip(addresses, following, strict=True)), strict=True)
    )


# kernel/kallsyms.c 6.1.192 cleanup_symbol_name(): `res = strstr(s, ".llvm."); *res = '\0'`
def cleaned_611(name: str) -> str:
    return name.split(".llvm.", 1)[0]


@pytest.fixture(scope="module")
def thinlto(corpus: Corpus) -> LoadedImage:
    return load_vmlinux(corpus.kernel_vmlinux("clang-thinlto"))


@pytest.fixture(scope="module")
def thinlto_check(thinlto: LoadedImage) -> KallsymsCheck:
    return check_kallsyms(thinlto)


@pytest.fixture(scope="module")
def debian(corpus: Corpus) -> LoadedImage:
    return load_vmlinux(corpus.debian_vmlinux())


@needs_nm
def test_thinlto_ambiguous_groups_equal_independent_computation(
    corpus: Corpus, thinlto_check: KallsymsCheck
) -> None:
    path = corpus.kernel_vmlinux("clang-thinlto")
    kept = nm_kept(path)
    sizes = kallsyms_sizes(kept, nm_address(path, "_end"))
    groups: dict[str, set[tuple[str, int, int]]] = {}
    for address, _, name in kept:
        groups.setdefault(cleaned_611(name), set()).add((name, address, sizes[address]))
    expected = {
        printed: members
        for printed, members in groups.items()
        if len({address for _, address, _ in members}) > 1
    }
    separated = {
        printed
        for printed, members in expected.items()
        if len({(a, s) for _, a, s in members}) == len({s for _, _, s in members})
    }

    assert thinlto_check.choice.rule.name == "llvm-suffix"
    ours = {
        group.printed_name: {
            (m.symbol.name, m.symbol.link_address, m.symbol.kallsyms_size) for m in group.members
        }
        for group in thinlto_check.selected.ambiguous
    }
    assert ours == expected
    assert {g.printed_name for g in thinlto_check.selected.ambiguous if g.size_separates} == (
        separated
    )
    assert len(expected) > 100  # .str.N string literals of many modules, and functions

    # The report names the groups the rule itself made: functions whose ELF names differ.
    functions = {(name, address) for address, letter, name in kept if letter in "tT"}
    by_rule = {
        printed: members
        for printed, members in expected.items()
        if len({name for name, _, _ in members}) > 1
        and any((name, address) in functions for name, address, _ in members)
    }
    assert by_rule
    report = "\n".join(check_text(thinlto_check, limit=0))
    for printed, members in by_rule.items():
        assert f"\n  {printed}: {len({a for _, a, _ in members})} addresses" in report
        for name, _, _ in members:
            assert f" {name}\n" in report + "\n"


def test_thinlto_rules_side_by_side(thinlto_check: KallsymsCheck) -> None:
    rules = {summary.rule.name: summary for summary in thinlto_check.rules}
    assert list(rules) == ["none", "gcc-lto-numeric", "cfi-hash", "first-dot", "llvm-suffix"]
    assert len({s.kept_count for s in rules.values()}) == 1  # cleanup does not change the set
    none, llvm, first = rules["none"], rules["llvm-suffix"], rules["first-dot"]
    assert none.renamed == 0 and none.made_by_cleanup == 0
    # clang 14 ThinLTO without CFI makes no `$<hash>` names: the 5.13 rule renames none.
    assert rules["cfi-hash"].renamed == 0
    assert llvm.renamed == thinlto_check.build.llvm_symbols == 945  # corpus README: 945
    # The older rule cuts everything `.llvm.` cuts and more, so it merges at least as much.
    assert first.renamed > llvm.renamed
    assert first.ambiguous_text >= llvm.ambiguous_text > none.ambiguous_text
    assert llvm.ambiguous == llvm.size_separated + llvm.unresolvable
    groups = thinlto_check.selected.ambiguous
    assert llvm.ambiguous == len(groups)
    assert llvm.ambiguous_symbols == sum(len(g.members) for g in groups)
    assert llvm.unresolvable_text == sum(1 for g in groups if g.is_text and not g.size_separates)


def test_build_facts(thinlto_check: KallsymsCheck, corpus: Corpus, debian: LoadedImage) -> None:
    facts = thinlto_check.build
    assert facts.version == (6, 1, 192)
    assert facts.compiler == "clang" and facts.lto_note is True and facts.clang_lto
    assert facts.banner is not None and facts.banner.startswith("Linux version 6.1.192")

    nolto = check_kallsyms(load_vmlinux(corpus.kernel_vmlinux("clang-nolto")))
    assert nolto.build.compiler == "clang" and nolto.build.lto_note is False
    assert not nolto.build.clang_lto and nolto.choice.rule.name == "none"

    gcc = check_kallsyms(debian)
    assert gcc.build.compiler == "gcc" and not gcc.build.clang_lto
    assert gcc.build.version == (6, 1, 192)  # from "Debian 6.1.192-3" in the banner
    assert gcc.choice.rule.name == "none" and gcc.choice.automatic


def test_debian_kept_count_and_first_dot_merges(debian: LoadedImage) -> None:
    check = check_kallsyms(debian, rule="first-dot")
    table = debian.symbols
    stored = int.from_bytes(
        table.image.read(table.address_of("kallsyms_num_syms") or 0, 4), "little"
    )
    assert check.kept_count == check.stored_count == stored

    kept_names = [table.names[i] for i in table.kept_indexes]
    kept_set = set(kept_names)
    colds = [n for n in kept_names if ".cold" in n]
    by_kind = dict(check.selected.summary.lossy_by_kind)
    assert by_kind[SuffixKind.COLD] == len(colds) > 2000
    assert by_kind[SuffixKind.CONSTPROP] == sum(1 for n in kept_names if ".constprop." in n)
    # Every kept `X.cold` whose parent X is kept prints as X under the first-dot rule: merged.
    merges = {n.symbol.name: n for n in check.selected.lossy if n.merged}
    for name in colds:
        parent = name.split(".", 1)[0]
        if parent in kept_set:
            assert merges[name].printed_name == parent
    constprop_merges = [n for n in merges if ".constprop." in n]
    assert constprop_merges

    report = "\n".join(check_text(check, limit=20))
    assert "  cold under first-dot:" in report and "  constprop under first-dot:" in report
    assert ".cold -> " in report and ".constprop.0 -> " in report

    # The build's own rule (gcc: none) loses nothing.
    own = next(s for s in check.rules if s.rule.name == "none")
    assert own.lossy == 0 and own.renamed == 0


def test_files_are_asked_once_for_function_groups(thinlto: LoadedImage) -> None:
    calls: list[list[Symbol]] = []

    def files_of(symbols: Sequence[Symbol]) -> list[str]:
        calls.append(list(symbols))
        return [f"src/{symbol.name}.c" for symbol in symbols]

    check = check_kallsyms(thinlto, files_of=files_of)
    (asked,) = calls
    for group in check.selected.ambiguous:
        for member in group.members:
            expected = f"src/{member.symbol.name}.c" if group.is_text else None
            assert member.file == expected
    assert (
        len(asked)
        == len({s.index for s in asked})
        == sum(len(g.members) for g in check.selected.ambiguous if g.is_text)
    )


@needs_nm
def test_dwarf_files_are_the_units_of_the_copies(
    corpus: Corpus, thinlto: LoadedImage, thinlto_check: KallsymsCheck
) -> None:
    # Statics of the same name live in different units; llvm-symbolizer's answer for each
    # copy's address names the file the function is in (for these .c-file statics).
    files_of = dwarf_files_of(thinlto.image)
    assert files_of is not None
    groups = [g for g in thinlto_check.selected.ambiguous if g.is_text and g.made_by_cleanup]
    symbols = [m.symbol for g in groups for m in g.members]
    files = files_of(symbols)
    oracle = symbolizer_files(corpus.kernel_vmlinux("clang-thinlto"), symbols)
    assert files == oracle
    assert all(f is not None and not f.startswith("/") for f in files)


def symbolizer_files(path: Path, symbols: Sequence[Symbol]) -> list[str | None]:
    tool = shutil.which("llvm-symbolizer")
    if tool is None:
        pytest.skip("llvm-symbolizer not installed")
    query = "".join(f"{s.link_address:#x}\n" for s in symbols)
    output = subprocess.run(
        [tool, "--obj", str(path), "--no-inlines"],
        input=query,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    answers = [block.splitlines() for block in output.strip().split("\n\n")]
    root = "/build/lb/kernels/src/linux-source-6.1/"  # corpus README: the source tree
    return [lines[1].rsplit(":", 2)[0].removeprefix(root) for lines in answers]


# -- dumps --------------------------------------------------------------------------------------


def test_debian_proc_kallsyms_matches_with_its_kaslr_offset(
    corpus: Corpus, debian: LoadedImage
) -> None:
    path = corpus.debian / "kallsyms" / "proc-kallsyms.txt"
    dump = verify_dump(debian.symbols, read_dump(path, DumpKind.KALLSYMS))
    assert dump.verdict is Verdict.MATCH, dump.reason
    lines = path.read_text().splitlines()
    assert dump.kaslr_offset == runtime_minus_link(lines, debian)
    assert dump.kaslr_offset % 0x200000 == 0  # x86-64 KASLR moves the kernel in 2 MB steps
    assert dump.matched == dump.compared == debian.symbols.kept_count
    modules = Counter(line.split("[")[1].rstrip("]") for line in lines if "\t[" in line)
    assert set(dump.modules) == set(modules) and dump.module_entries == sum(modules.values())


def test_hidden_addresses_of_a_partial_copy(corpus: Corpus, debian: LoadedImage) -> None:
    # The first 2000 lines of the right kernel's /proc/kallsyms, addresses hidden: every name
    # is the vmlinux's, but most are not there; names are all that can be checked.
    path = corpus.debian / "kallsyms" / "proc-kallsyms-kptr_restrict2-first2000.txt"
    dump = verify_dump(debian.symbols, read_dump(path, DumpKind.KALLSYMS))
    assert dump.addresses_hidden and dump.kaslr_offset is None
    assert dump.verdict is Verdict.MISMATCH and "partial copy" in dump.reason
    assert not dump.extra  # every name it lists is a vmlinux name
    assert dump.vmlinux_entries == 2000 and len(dump.missing) == dump.compared - 2000


def hidden_copy(lines: list[str], target: Path) -> Path:
    """``lines`` of a /proc/kallsyms copy as kptr_restrict prints them: every address zero."""
    target.write_text("".join("0" * 16 + line[16:] + "\n" for line in lines))
    return target


def arm64_kallsyms(corpus: Corpus) -> list[str]:
    lines = (corpus.kernels / "arm64-clang-thinlto" / "console.log").read_text().splitlines()
    return lines[lines.index("=== KALLSYMS BEGIN") + 1 : lines.index("=== KALLSYMS END")]


def test_hidden_addresses_of_the_right_kernel(corpus: Corpus, tmp_path: Path) -> None:
    loaded = load_vmlinux(corpus.kernel_vmlinux("arm64-clang-thinlto"))
    dump_path = hidden_copy(arm64_kallsyms(corpus), tmp_path / "kallsyms")
    check = check_kallsyms(loaded, dump=read_dump(dump_path, DumpKind.KALLSYMS))
    assert check.dump is not None
    assert check.dump.verdict is Verdict.HIDDEN and check.dump.addresses_hidden
    assert not check.dump.missing and not check.dump.extra
    assert check.holds(FailCondition.HIDDEN) and not check.holds(FailCondition.MISMATCH)


@needs_nm
def test_hidden_addresses_of_another_kernel_are_a_mismatch(
    corpus: Corpus, thinlto: LoadedImage
) -> None:
    # Debian's kernel, addresses hidden, against the corpus' clang kernel: the names differ.
    path = corpus.debian / "kallsyms" / "proc-kallsyms-kptr_restrict2-first2000.txt"
    check = check_kallsyms(thinlto, dump=read_dump(path, DumpKind.KALLSYMS))
    assert check.dump is not None and check.dump.addresses_hidden
    assert check.dump.verdict is Verdict.MISMATCH and "another kernel" in check.dump.reason
    assert check.holds(FailCondition.MISMATCH) and check.holds(FailCondition.HIDDEN)
    # The names that are too many: the dump's multiset less what kallsyms keeps (nm).
    kept = Counter(name for _a, _t, name in nm_kept(corpus.kernel_vmlinux("clang-thinlto")))
    listed = Counter(line.split()[2] for line in path.read_text().splitlines() if "\t[" not in line)
    surplus = listed - kept
    assert Counter(entry.name for entry in check.dump.extra) == surplus
    assert len(check.dump.missing) == sum((kept - listed).values())


def percpu_range(path: Path) -> tuple[int, int]:
    return nm_address(path, "__per_cpu_start"), nm_address(path, "__per_cpu_end")


@needs_nm
def test_an_arm64_dump_against_an_x86_vmlinux(corpus: Corpus, thinlto: LoadedImage) -> None:
    dump_lines = arm64_kallsyms(corpus)
    dump = parse_dump(dump_lines, "arm64-kallsyms", DumpKind.KALLSYMS)
    check = verify_dump(thinlto.symbols, dump)
    assert check.verdict is Verdict.MISMATCH and check.dump_machine == "aarch64"
    wrappers = {
        fields[2]
        for line in dump_lines
        if len(fields := line.split()) == 3 and fields[2].startswith("__arm64_sys_")
    }
    assert f"architecture mismatch: the dump is of an aarch64 kernel ({len(wrappers)} " in (
        check.reason
    )
    assert "the vmlinux is x86_64" in check.reason
    # x86-64 per-cpu symbols are where they are linked whatever the KASLR offset: the dump's
    # per-cpu entries are expected at the link address.
    start, end = percpu_range(corpus.kernel_vmlinux("clang-thinlto"))
    percpu = [m for m in check.moved if start <= m.link_address <= end]
    assert len(percpu) > 50
    assert all(m.expected_address == m.link_address for m in percpu)
    others = [m for m in check.moved if not start <= m.link_address <= end]
    assert all(m.expected_address != m.link_address for m in others)


@needs_nm
def test_per_cpu_symbols_are_not_moved_whatever_their_letter(
    corpus: Corpus, debian: LoadedImage, tmp_path: Path
) -> None:
    # Debian's real dump, per-cpu symbols given System.map's letters instead of `A`: they are
    # still at their link address, and the KASLR offset still does not apply to them.
    path = corpus.debian / "kallsyms" / "proc-kallsyms.txt"
    letters = {name: letter for _address, letter, name in nm_kept(corpus.debian_vmlinux())}
    lines = []
    relettered = 0
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] == "A" and letters.get(fields[2], "A") != "A":
            lines.append(f"{fields[0]} {letters[fields[2]]} {fields[2]}")
            relettered += 1
        else:
            lines.append(line)
    assert relettered > 300
    (tmp_path / "kallsyms").write_text("\n".join(lines) + "\n")
    dump = verify_dump(debian.symbols, read_dump(tmp_path / "kallsyms", DumpKind.KALLSYMS))
    assert dump.verdict is Verdict.MATCH, dump.reason
    assert dump.matched == dump.compared == debian.symbols.kept_count


def test_arm64_console_kallsyms_matches(corpus: Corpus, tmp_path: Path) -> None:
    lines = (corpus.kernels / "arm64-clang-thinlto" / "console.log").read_text().splitlines()
    begin, end = lines.index("=== KALLSYMS BEGIN"), lines.index("=== KALLSYMS END")
    dump_path = tmp_path / "kallsyms"
    dump_path.write_text("\n".join(lines[begin + 1 : end]) + "\n")
    loaded = load_vmlinux(corpus.kernel_vmlinux("arm64-clang-thinlto"))
    check = check_kallsyms(loaded, dump=read_dump(dump_path, DumpKind.KALLSYMS))
    assert check.dump is not None
    assert check.dump.verdict is Verdict.MATCH, check.dump.reason
    assert check.dump.kaslr_offset == runtime_minus_link(lines[begin + 1 : end], loaded)
    assert check.dump.modules == ("lkdtm",)


@pytest.mark.parametrize("variant", SMALL_KERNELS)
def test_system_map_matches_at_offset_zero(corpus: Corpus, variant: str) -> None:
    loaded = load_vmlinux(corpus.kernel_vmlinux(variant))
    path = corpus.kernels / variant / "System.map"
    check = check_kallsyms(loaded, dump=read_dump(path, DumpKind.SYSTEM_MAP))
    assert check.dump is not None
    assert check.dump.verdict is Verdict.MATCH, check.dump.reason
    assert check.dump.kaslr_offset == 0
    assert check.dump.compared == len(path.read_text().splitlines())


def test_dump_of_another_kernel_is_a_mismatch(corpus: Corpus, thinlto: LoadedImage) -> None:
    path = corpus.debian / "kallsyms" / "proc-kallsyms.txt"
    check = check_kallsyms(thinlto, dump=read_dump(path, DumpKind.KALLSYMS))
    assert check.dump is not None
    assert check.dump.verdict is Verdict.MISMATCH
    assert "another build" in check.dump.reason and check.dump.kaslr_offset is None
    assert check.dump.missing and check.dump.extra and check.dump.moved


def test_edited_system_map_shows_each_difference(
    corpus: Corpus, thinlto: LoadedImage, tmp_path: Path
) -> None:
    lines = (corpus.kernels / "clang-thinlto" / "System.map").read_text().splitlines()
    names = Counter(line.split()[2] for line in lines)
    unique = [i for i, line in enumerate(lines) if names[line.split()[2]] == 1 and " t " in line]
    moved_at, dropped_at = unique[100], unique[200]
    address, letter, moved_name = lines[moved_at].split()
    lines[moved_at] = f"{int(address, 16) + 0x40:016x} {letter} {moved_name}"
    dropped_name = lines[dropped_at].split()[2]
    del lines[dropped_at]
    lines.append("ffffffff81000000 T not_in_this_kernel")
    lines.append("this line is not a symbol line")
    edited = tmp_path / "System.map"
    edited.write_text("\n".join(lines) + "\n")

    dump = check_kallsyms(thinlto, dump=read_dump(edited, DumpKind.SYSTEM_MAP)).dump
    assert dump is not None and dump.verdict is Verdict.MISMATCH
    assert "differs from this vmlinux" in dump.reason
    assert [m.name for m in dump.moved] == [moved_name]
    assert dump.moved[0].runtime_address - dump.moved[0].expected_address == 0x40
    assert [s.name for s in dump.missing] == [dropped_name]
    assert [e.name for e in dump.extra] == ["not_in_this_kernel"]
    assert dump.skipped_lines == 1 and dump.kaslr_offset == 0


def test_duplicate_names_are_matched_by_address(
    corpus: Corpus, thinlto: LoadedImage, tmp_path: Path
) -> None:
    lines = (corpus.kernels / "clang-thinlto" / "System.map").read_text().splitlines()
    positions: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        positions.setdefault(line.split()[2], []).append(i)
    name, (first, second, *_) = next(
        (n, p) for n, p in positions.items() if len(p) > 1 and " t " in lines[p[0]]
    )
    # Listed in the other order, the duplicates still match by address ...
    lines[first], lines[second] = lines[second], lines[first]
    swapped = tmp_path / "swapped.map"
    swapped.write_text("\n".join(lines) + "\n")
    dump = check_kallsyms(thinlto, dump=read_dump(swapped, DumpKind.SYSTEM_MAP)).dump
    assert dump is not None and dump.verdict is Verdict.MATCH, dump.reason
    # ... and when one of them is elsewhere, exactly that one has moved.
    address, letter, _ = lines[second].split()
    lines[second] = f"{int(address, 16) + 8:016x} {letter} {name}"
    shifted = tmp_path / "shifted.map"
    shifted.write_text("\n".join(lines) + "\n")
    dump = check_kallsyms(thinlto, dump=read_dump(shifted, DumpKind.SYSTEM_MAP)).dump
    assert dump is not None
    assert [(m.name, m.link_address) for m in dump.moved] == [(name, int(address, 16))]
    assert not dump.missing and not dump.extra


def test_kallsyms_line_forms() -> None:
    text = [
        "ffffffff81000010 t type_show",
        "ffffffffc03b7160 t tun_get_tx_ring\t[tun]",
        "0000000000001000 A cpu_debug_store\r",
        "",
        "[   18.206365]  el0t_64_sync+0x148/0x14c",
    ]
    dump = parse_dump(text, "x", DumpKind.KALLSYMS)
    assert [(e.name, e.module, e.nm_type) for e in dump.entries] == [
        ("type_show", None, "t"),
        ("tun_get_tx_ring", "tun", "t"),
        ("cpu_debug_store", None, "A"),
    ]
    assert dump.entries[0].runtime_address == 0xFFFFFFFF81000010
    assert dump.skipped_lines == 1 and dump.entries[2].line_no == 3


def test_unusable_dump_is_an_input_error(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello\nworld\n")
    with pytest.raises(InputError, match="no symbol lines"):
        read_dump(garbage, DumpKind.KALLSYMS)
    with pytest.raises(InputError):
        read_dump(tmp_path / "absent", DumpKind.KALLSYMS)


@pytest.mark.parametrize(
    ("elf_name", "printed", "removed"),
    [
        ("foo.part.0.cold", "foo", (SuffixKind.PART, SuffixKind.COLD)),
        ("NF_HOOK.constprop.0.isra.0", "NF_HOOK", (SuffixKind.CONSTPROP, SuffixKind.ISRA)),
        ("foo.cold.llvm.123", "foo.cold", ()),  # only the promotion went: nothing hidden
        ("try_to_wake_up.llvm.147", "try_to_wake_up", ()),
        ("head64.c.552cf5a6", "head64", ()),  # not a suffix chain: no clone kind
    ],
)
def test_removed_clone_kinds(elf_name: str, printed: str, removed: tuple[SuffixKind, ...]) -> None:
    assert removed_clone_kinds(elf_name, printed) == removed
