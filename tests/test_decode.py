"""decode on the real logs of the corpus: source chains against the independent oracles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SMALL_KERNELS, Corpus

from ltosyms.context import ModuleSet, Session
from ltosyms.decode.decode import DecodedFrame, Decoder
from ltosyms.dwarf import SourceLocation
from ltosyms.names.suffixes import parse_name
from ltosyms.oops.parse import iter_reports

# Paths in the oracle answers carry the build's prefix; users see paths in the source tree.
BUILD_PREFIXES = (
    "debian/build/build_amd64_none_cloud-amd64/",
    "/build/reproducible-path/linux-6.1.192/",
    "/build/lb/kernels/src/linux-source-6.1/",
    "/build/k612/src/linux-source-6.12/",
    "/build/gcclto01/src/linux-source-6.1/",
)


def relative(path: str | None) -> str | None:
    if path is None:
        return None
    for prefix in BUILD_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


_decoded: dict[tuple[Path, Path], dict[int, DecodedFrame]] = {}


def decode_log(vmlinux: Path, log: Path, modules: Path) -> dict[int, DecodedFrame]:
    """Every decoded frame of ``log`` by input line (decoded once per test session)."""
    if (vmlinux, log) in _decoded:
        return _decoded[(vmlinux, log)]
    decoder = Decoder(Session(None).open_vmlinux(vmlinux), ModuleSet([modules]))
    by_line: dict[int, DecodedFrame] = {}
    with log.open("rb") as file:
        for report in decoder.decode_all(iter_reports(file)):
            for frame in report.iter_frames():
                by_line.setdefault(frame.frame.line, frame)
    _decoded[(vmlinux, log)] = by_line
    return by_line


def chain(locations: tuple[SourceLocation, ...], with_names: bool) -> list[tuple[object, ...]]:
    return [((loc.function if with_names else None), loc.file, loc.line) for loc in locations]


def oracle_chain(oracle: list[dict[str, object]], with_names: bool) -> list[tuple[object, ...]]:
    return [
        ((o["function"] if with_names else None), relative(str(o["file"])), o["line"])
        for o in oracle
    ]


def outer_by_base(chain_: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """Module oracles come from addr2line, which names the outermost function from DWARF
    (``tg_sleep_deep``); ltosyms, like llvm-symbolizer for vmlinux, names it by its ELF symbol
    (``tg_sleep_deep.constprop.0``). Compare that one name by its base."""
    if not chain_ or chain_[-1][0] is None:
        return chain_
    name, *rest = chain_[-1]
    return [*chain_[:-1], (parse_name(str(name)).base, *rest)]


# ltosyms.elf.bug_table.with_bug_line: at a WARN/BUG trap the innermost line is the bug
# table's (tests/test_bug_table.py checks it against what the kernel printed); DWARF's, the
# line the oracles give, is kept in this note.
_BUG_NOTE = re.compile(r"^line from the bug table .*; DWARF: (?P<file>\S+):(?P<line>\d+|\?)$")


def dwarf_line_at_bug_site(notes: tuple[str, ...], inner: tuple[object, ...]) -> tuple[object, ...]:
    """``inner`` (function, file, line) with DWARF's file and line from a bug-table note."""
    for note in notes:
        match = _BUG_NOTE.match(note)
        if match is not None:
            line = None if match["line"] == "?" else int(match["line"])
            return (inner[0], match["file"], line)
    return inner


def compare(
    decoded: dict[int, DecodedFrame], expected: list[dict[str, object]]
) -> tuple[int, list[str]]:
    checked = 0
    differences = []
    for record in expected:
        if record["oracle_class"] not in ("agree", "asm-name"):
            continue
        with_names = record["oracle_class"] == "agree"
        checked += 1
        frame = decoded.get(int(str(record["line_no"])))
        resolved = frame.resolved if frame is not None else None
        if resolved is not None and resolved.function_pointer is not None:
            # `? f+size/size`: the oracle gives f's last line (address - 1); the slot is a
            # pointer to the next function, which starts there (tests/test_frame_places.py).
            start = resolved.function_pointer.link_address
            if resolved.locations or start != resolved.link_address:
                differences.append(f"{record['log']}:{record['line_no']}: not a pointer")
            continue
        ours = chain(resolved.locations, with_names) if resolved is not None else []
        want = oracle_chain(list(record["oracle"]), with_names)  # type: ignore[arg-type]
        if resolved is not None and ours:
            ours[0] = dwarf_line_at_bug_site(resolved.notes, ours[0])
        if record["module"] is not None:
            ours, want = outer_by_base(ours), outer_by_base(want)
        if ours != want:
            differences.append(
                f"{record['log']}:{record['line_no']} {record['raw_line']!r}: "
                f"ours {ours} oracle {want}"
            )
    return checked, differences


def _run(vmlinux: Path, folder: Path, logs: list[str], modules: Path) -> tuple[int, list[str]]:
    expected: list[dict[str, object]] = json.loads(
        (folder / "expected" / "frames.json").read_text()
    )
    checked_total = 0
    all_differences: list[str] = []
    for log in logs:
        log_path = folder / "logs" / log if (folder / "logs").is_dir() else folder / log
        decoded = decode_log(vmlinux, log_path, modules)
        records = [r for r in expected if r["log"] == log]
        checked, differences = compare(decoded, records)
        checked_total += checked
        all_differences.extend(differences)
    return checked_total, all_differences


# Frames of each corpus log whose oracle chain is checked (oracle_class agree or asm-name):
# every one of them must decode to the oracle's chain.
ORACLE_FRAMES = {
    "clang-thinlto": 265,
    "clang-nolto": 256,
    "gcc-nolto": 250,
    "arm64-clang-thinlto": 424,
    "clang-thinlto-6.12": 320,
    "gcc-lto": 278,
}


@pytest.mark.parametrize("variant", SMALL_KERNELS)
def test_small_kernel_chains_equal_oracle(corpus: Corpus, variant: str) -> None:
    folder = corpus.kernels / variant
    checked, differences = _run(corpus.kernel_vmlinux(variant), folder, ["console.log"], folder)
    assert differences == []
    assert checked == ORACLE_FRAMES[variant]


def test_debian_chains_equal_oracle(corpus: Corpus) -> None:
    folder = corpus.debian
    checked, differences = _run(
        corpus.debian_vmlinux(),
        folder,
        ["console-sysrq.log", "console-sysrq-nooops.log"],
        folder / "modules",
    )
    assert differences == []
    assert checked == 1099


def _all_records(corpus: Corpus) -> list[tuple[Path, Path, Path, dict[str, object]]]:
    """(vmlinux, log, modules, expected record) for every frame of every corpus log."""
    found = []
    debian = corpus.debian
    for record in json.loads((debian / "expected" / "frames.json").read_text()):
        found.append(
            (corpus.debian_vmlinux(), debian / "logs" / record["log"], debian / "modules", record)
        )
    for variant in SMALL_KERNELS:
        folder = corpus.kernels / variant
        for record in json.loads((folder / "expected" / "frames.json").read_text()):
            found.append((corpus.kernel_vmlinux(variant), folder / "console.log", folder, record))
    return found


def test_llvm_suffix_frames_resolve_to_their_elf_symbol(corpus: Corpus) -> None:
    checked = 0
    for vmlinux, log, modules, record in _all_records(corpus):
        elf_name = record.get("elf_name")
        if not elf_name or elf_name == record["symbol"] or record["module"]:
            continue
        frame = decode_log(vmlinux, log, modules)[int(str(record["line_no"]))]
        assert frame.resolved is not None and frame.resolved.symbol is not None, record["raw_line"]
        assert frame.resolved.symbol.name == elf_name
        assert frame.resolved.symbol.link_address == int(str(record["symbol_address"]), 16)
        checked += 1
    assert checked >= 5  # try_to_wake_up, check_preempt_wakeup in the LTO logs


def test_every_frame_resolves_to_the_oracles_symbol(corpus: Corpus) -> None:
    for vmlinux, log, modules, record in _all_records(corpus):
        frame = decode_log(vmlinux, log, modules)[int(str(record["line_no"]))]
        resolved = frame.resolved
        assert resolved is not None and resolved.symbol is not None, record["raw_line"]
        assert not resolved.ambiguous
        if record["module"] is None:
            assert resolved.symbol.link_address == int(str(record["symbol_address"]), 16)


def test_offset_equal_size_maps_to_the_callers_call(corpus: Corpus) -> None:
    # `caller+0xSIZE/0xSIZE`: either a call as the caller's last instruction (noreturn callee,
    # docs/kernel-facts.md#return-addresses), mapped to that call inside the caller, or a stale `? `
    # slot holding a pointer to the next function, flagged as not a return address. Never the next
    # function's line.
    calls = 0
    for vmlinux, log, modules, record in _all_records(corpus):
        if not record.get("offset_eq_size") or record["role"] != "ret":
            continue
        resolved = decode_log(vmlinux, log, modules)[int(str(record["line_no"]))].resolved
        assert resolved is not None and resolved.symbol is not None
        if resolved.call_site is None:
            assert resolved.not_return_address, record["raw_line"]
            continue
        start = resolved.symbol.link_address
        assert start <= resolved.call_site.link_address < start + int(str(record["size"]))
        assert resolved.locations[-1].function == resolved.symbol.name
        calls += 1
    assert calls >= 5  # rest_init+0xa0/0xa0, arch_call_rest_init+0x5/0x5, ...


def test_question_mark_slots_in_padding_are_not_return_addresses(corpus: Corpus) -> None:
    # `? X+SIZE/SIZE` whose address - 1 is padding: the slot held a function pointer.
    checked = 0
    for vmlinux, log, modules, record in _all_records(corpus):
        if not str(record.get("comparison", "")).startswith("llvm-empty-function"):
            continue
        resolved = decode_log(vmlinux, log, modules)[int(str(record["line_no"]))].resolved
        assert resolved is not None and resolved.not_return_address, record["raw_line"]
        checked += 1
    assert checked >= 200


def test_exact_ips_are_not_adjusted(corpus: Corpus) -> None:
    for vmlinux, log, modules, record in _all_records(corpus):
        if record["role"] != "ip" or record["module"]:
            continue
        resolved = decode_log(vmlinux, log, modules)[int(str(record["line_no"]))].resolved
        assert resolved is not None
        assert resolved.call_site is None
        assert resolved.lookup_address == int(str(record["lookup_address"]), 16)
