"""The parser on the real logs of the corpus: Debian and LTO kernels, and the syzkaller corpus."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_KERNELS

from ltosyms.elf.image import open_image
from ltosyms.oops import Frame, Report, ReportKind, StackSection, Trace, iter_reports
from ltosyms.oops.headers import HEADER_RULES, HEADER_STARTS, match_header

# Every small corpus kernel: 6.12 and gcc LTO print their own report shapes (see corpus README).
KERNEL_VARIANTS = SMALL_KERNELS


def _expected_logs(corpus: Any) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """(log path, its expected/frames.json records) for every real log of the corpus."""
    sets = [(corpus.debian / "expected" / "frames.json", corpus.debian / "logs")]
    sets += [
        (corpus.kernels / variant / "expected" / "frames.json", corpus.kernels / variant)
        for variant in KERNEL_VARIANTS
    ]
    for expected, log_dir in sets:
        by_log: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in json.loads(expected.read_text()):
            by_log[record["log"]].append(record)
        for log, records in sorted(by_log.items()):
            yield log_dir / log, records


@dataclass
class ParsedLog:
    reports: list[Report]
    frame_at: dict[int, Frame]
    trace_at: dict[int, Trace]
    report_at: dict[int, Report]


def _parse(path: Path) -> ParsedLog:
    reports = list(iter_reports(path.read_bytes()))
    parsed = ParsedLog(reports, {}, {}, {})
    for report in reports:
        for trace in report.traces:
            for frame in trace.frames:
                assert frame.line not in parsed.frame_at, f"two frames on line {frame.line}"
                parsed.frame_at[frame.line] = frame
                parsed.trace_at[frame.line] = trace
                parsed.report_at[frame.line] = report
    return parsed


@pytest.fixture(scope="module")
def real_logs(corpus: Any) -> list[tuple[Path, list[dict[str, Any]], ParsedLog]]:
    return [(path, records, _parse(path)) for path, records in _expected_logs(corpus)]


def test_every_expected_frame_is_found_with_its_role_and_section(
    real_logs: list[tuple[Path, list[dict[str, Any]], ParsedLog]],
) -> None:
    checked = 0
    for path, records, parsed in real_logs:
        for record in records:
            where = f"{path.name}:{record['line_no']} {record['raw_line']!r}"
            frame = parsed.frame_at.get(record["line_no"])
            assert frame is not None, f"no frame at {where}"
            assert frame.exact_ip == (record["role"] == "ip"), where
            if "stack_section" in record:
                section = None if frame.section is StackSection.UNKNOWN else frame.section.value
                assert section == record["stack_section"], where
            printed = (frame.symbol, frame.offset, frame.kallsyms_size, frame.module)
            assert printed == (record["symbol"], record["offset"], record["size"], record["module"])
            assert frame.reliable == (not record["unreliable"]), where
            checked += 1
    # 1,333 Debian records, 332 + 320 + 315 clang/gcc x86, 426 arm64, 419 6.12, 337 gcc LTO.
    assert checked == 1333 + 332 + 320 + 315 + 426 + 419 + 337


def test_expected_traces_are_parsed_as_the_same_traces(
    real_logs: list[tuple[Path, list[dict[str, Any]], ParsedLog]],
) -> None:
    for path, records, parsed in real_logs:
        by_expected: dict[int, set[int]] = defaultdict(set)
        for record in records:
            if "trace_id" in record:
                by_expected[record["trace_id"]].add(id(parsed.trace_at[record["line_no"]]))
        if not by_expected:
            continue  # the arm64 records carry no trace ids
        assert all(len(traces) == 1 for traces in by_expected.values()), path
        assert len({next(iter(traces)) for traces in by_expected.values()}) == len(by_expected)


# What the corpus calls each trace, as report kinds.
_REPORT_KINDS = {
    "sysrq_t": {ReportKind.SYSRQ_SHOW_STATE},
    "sysrq_w": {ReportKind.SYSRQ_SHOW_BLOCKED},
    "sysrq_l": {ReportKind.NMI_BACKTRACE},
    "hung_task": {ReportKind.HUNG_TASK},
    "panic": {ReportKind.PANIC},
    "warn_alloc": {ReportKind.DUMP_STACK},
    # The corpus files lkdtm's BUG (kernel BUG at ...) under "warning".
    "warning": {ReportKind.WARNING, ReportKind.BUG},
    "oops": {ReportKind.PAGE_FAULT, ReportKind.OOPS},
}
# 6.12 follows `kernel BUG at ...` with `Oops: invalid opcode: 0000 [#1]` (die() prints the
# word "Oops: " since 6.10): its corpus files that BUG under "oops".
_REPORT_KINDS_612 = {**_REPORT_KINDS, "oops": {*_REPORT_KINDS["oops"], ReportKind.BUG}}


def test_expected_traces_belong_to_reports_of_their_kind(
    real_logs: list[tuple[Path, list[dict[str, Any]], ParsedLog]],
) -> None:
    for path, records, parsed in real_logs:
        for record in records:
            if "trace_kind" in record:
                kind = parsed.report_at[record["line_no"]].kind
                kinds = _REPORT_KINDS_612 if "6.12" in str(path) else _REPORT_KINDS
                assert kind in kinds[record["trace_kind"]], (str(path), record["line_no"])


def _log(real_logs: list[tuple[Path, list[dict[str, Any]], ParsedLog]], name: str) -> ParsedLog:
    return next(parsed for path, _, parsed in real_logs if str(path).endswith(name))


def test_debian_log_reports(real_logs: list[tuple[Path, list[dict[str, Any]], ParsedLog]]) -> None:
    parsed = _log(real_logs, "logs/console-sysrq.log")
    assert [r.kind for r in parsed.reports] == [
        ReportKind.DUMP_STACK,  # zram vmalloc failure (warn_alloc)
        ReportKind.HUNG_TASK,
        ReportKind.HUNG_TASK,
        ReportKind.SYSRQ_SHOW_STATE,
        ReportKind.NMI_BACKTRACE,
        ReportKind.NMI_BACKTRACE,
        ReportKind.SYSRQ_SHOW_BLOCKED,
        ReportKind.WARNING,
        ReportKind.PAGE_FAULT,
        ReportKind.PANIC,
    ]
    warn_alloc, *_ = parsed.reports
    assert warn_alloc.title.startswith("init: vmalloc error: size 6597069766656")
    assert not warn_alloc.is_crash
    assert warn_alloc.code is None  # its only Code: line follows the user-mode RIP: 0033


def test_debian_sysrq_t_has_one_trace_per_task(
    corpus: Any, real_logs: list[tuple[Path, list[dict[str, Any]], ParsedLog]]
) -> None:
    parsed = _log(real_logs, "logs/console-sysrq.log")
    show_state = next(r for r in parsed.reports if r.kind is ReportKind.SYSRQ_SHOW_STATE)
    lines = (corpus.debian / "logs" / "console-sysrq.log").read_bytes().split(b"\n")
    task_lines = [
        number
        for number, line in enumerate(lines, start=1)
        if show_state.first_line <= number <= show_state.last_line and b"] task:" in line
    ]
    assert [t.first_line for t in show_state.traces] == task_lines
    assert all(t.kind == "task" and t.comm and t.pid is not None for t in show_state.traces)
    init = show_state.traces[0]
    assert (init.comm, init.pid, init.task_state) == ("init", 1, "R")


def test_debian_warning_and_oops_details(
    real_logs: list[tuple[Path, list[dict[str, Any]], ParsedLog]],
) -> None:
    parsed = _log(real_logs, "logs/console-sysrq.log")
    warning = next(r for r in parsed.reports if r.kind is ReportKind.WARNING)
    assert (warning.cpu, warning.pid, warning.comm) == (0, 206, "sh")
    assert (warning.release, warning.kernel_version) == ("6.1.0-57-cloud-amd64", "#1")
    assert warning.taint == "GOE"
    assert warning.build_id is None  # Debian does not set CONFIG_STACKTRACE_BUILD_ID
    assert warning.modules_linked_in[:3] == ("tracegen", "uhid", "hid")
    assert warning.arch == "x86_64"
    header = warning.traces[0].frames[0]
    assert (header.symbol, header.module, header.exact_ip) == ("tg_check_value", "tracegen", True)
    assert header.source is not None and header.source.line == 43
    code = warning.code
    assert code is not None and code.arch == "x86_64"
    # "Code: ff 48 89 d8 ... cc <0f> 0b b8 ...": 42 bytes before the marked one, 21 after.
    assert (len(code.data), code.marker_offset, code.data[42:44]) == (64, 42, b"\x0f\x0b")
    assert dict(warning.registers)["RBX"] == 2
    oops = next(r for r in parsed.reports if r.kind is ReportKind.PAGE_FAULT)
    assert oops.title == "BUG: kernel NULL pointer dereference, address: 0000000000000000"
    assert oops.code is not None and oops.code.unavailable
    assert oops.code.unavailable_address == 0xFFFFFFFFC03A3FDB
    kernel_ips = [ip for ip in oops.ip_lines if not ip.user_mode]
    user_ips = [ip for ip in oops.ip_lines if ip.user_mode]
    assert [ip.frame.symbol for ip in kernel_ips if ip.frame] == ["tg_store", "tg_store"]
    assert [(ip.segment, ip.runtime_address, ip.frame) for ip in user_ips] == [
        ("0033", 0x47B7A0, None)
    ]
    # The RIP printed again after "---[ end trace ]---" is a trace of its own.
    assert [t.kind for t in oops.traces] == ["call_trace", "regs"]


def test_debian_panic_kaslr_offset(corpus: Any) -> None:
    log = corpus.debian / "logs" / "console-sysrq-nooops.log"
    panic = [r for r in iter_reports(log.read_bytes()) if r.kind is ReportKind.PANIC]
    assert len(panic) == 1
    assert panic[0].panic_message == "sysrq triggered crash"
    assert panic[0].kaslr_offset == 0x39200000
    assert panic[0].traces[0].frames[1].symbol == "panic"


@pytest.mark.parametrize("variant", KERNEL_VARIANTS)
def test_small_kernel_build_ids_match_the_binaries(corpus: Any, variant: str) -> None:
    reports = list(iter_reports((corpus.kernels / variant / "console.log").read_bytes()))
    with open_image(corpus.kernel_vmlinux(variant)) as vmlinux:
        vmlinux_build_id = vmlinux.build_id
    with open_image(corpus.kernels / variant / "lkdtm.ko") as module:
        module_build_id = module.build_id
    printed = {r.build_id for r in reports if r.release is not None}
    assert printed == {vmlinux_build_id}
    module_ids = {f.module_build_id for r in reports for f in r.iter_frames() if f.module_build_id}
    assert module_ids == {module_build_id}


def test_arm64_code_words_are_stored_little_endian(corpus: Any) -> None:
    text = (corpus.kernels / "arm64-clang-thinlto" / "console.log").read_text()
    bug = next(r for r in iter_reports(text) if r.kind is ReportKind.BUG)
    code = bug.code
    assert code is not None and code.arch == "aarch64" and code.token_size == 4
    # "Code: 910003fd b0000020 913ac400 97fffc81 (d4210000)": brk #0x800 is the marked word.
    words = text.split("\n")[code.line - 1].split("Code:")[1].split()
    assert code.data == b"".join(int(w.strip("()"), 16).to_bytes(4, "little") for w in words)
    assert code.marker_offset == 16 and code.data[16:20] == bytes.fromhex("000021d4")
    assert bug.arch == "aarch64"
    assert [ip.register for ip in bug.ip_lines] == ["pc", "lr"]
    lr = bug.ip_lines[1].frame
    assert lr is not None and not lr.exact_ip


# --- the syzkaller corpus -------------------------------------------------------------------


@dataclass
class SyzkallerLog:
    name: str
    headers: dict[str, list[str]]
    log: list[bytes]  # the log lines (after the headers' empty line, before "REPORT:")
    report_section: list[bytes]
    reports: list[Report]


def _split_syzkaller(data: bytes) -> tuple[dict[str, list[str]], list[bytes], list[bytes]]:
    # Format in the corpus README (pkg/report/report_test.go parseReport): "KEY: value" headers
    # up to the first empty line, the log, then optionally an empty line and "REPORT:".
    lines = data.split(b"\n")
    headers: dict[str, list[str]] = defaultdict(list)
    index = 0
    while index < len(lines) and lines[index] != b"":
        text = lines[index].decode("utf-8", "replace")
        if not text.startswith("#"):
            key, _, value = text.partition(":")
            headers[key].append(value.strip())
        index += 1
    log = lines[index + 1 :]
    report: list[bytes] = []
    for position in range(len(log) - 1):
        if log[position] == b"" and log[position + 1] == b"REPORT:":
            log, report = log[: position + 1], log[position + 2 :]
            break
    return dict(headers), log, report


@pytest.fixture(scope="module")
def syzkaller_logs(corpus: Any) -> list[SyzkallerLog]:
    logs = []
    report_dir = corpus.syzkaller / "report"
    for path in sorted(report_dir.iterdir(), key=lambda p: int(p.name)):
        headers, log, report_section = _split_syzkaller(path.read_bytes())
        reports = list(iter_reports(b"\n".join(log)))
        logs.append(SyzkallerLog(path.name, headers, log, report_section, reports))
    return logs


def test_syzkaller_all_logs_parse(syzkaller_logs: list[SyzkallerLog]) -> None:
    assert len(syzkaller_logs) == 747


def test_syzkaller_logs_without_crash_yield_no_crash_report(
    syzkaller_logs: list[SyzkallerLog],
) -> None:
    quiet = [log for log in syzkaller_logs if "TITLE" not in log.headers]
    assert len(quiet) == 34
    for log in quiet:
        assert not [r.title for r in log.reports if r.is_crash], log.name


def test_syzkaller_logs_with_a_crash_yield_a_crash_report(
    syzkaller_logs: list[SyzkallerLog],
) -> None:
    titled = [log for log in syzkaller_logs if "TITLE" in log.headers]
    missed = [log.name for log in titled if not any(r.is_crash for r in log.reports)]
    # 713 logs have a title; the 14 without a crash report hold no kernel report text:
    # syzkaller's own failures (SYZFAIL, go runtime errors), "unexpected kernel reboot", a bare
    # "WARNING: foo", a kmemleak header quoted inside a user-space log line, and similar.
    assert len(titled) == 713
    assert len(missed) <= 14, missed


# Frame lines, independently of the parser's grammar: x86 (with or without "[<addr>]" and "? "),
# arm64, riscv, s390 "([<addr>] ...)", arm "[<addr>] (f) from [<addr>] (g+0x../0x..)", powerpc
# "[sp] [addr] f+0x../0x..", and an x86 "<IRQ>" marker in front.
_INDEPENDENT_FRAME = re.compile(
    rb"^\s*(?:<[A-Z#]+>\s+)?\(?(?:\[<[0-9a-f]+>\]\s+)?(?:\?\s+)?(?:\[<[0-9a-f]+>\]\s+)?"
    rb"(?:\[<[0-9a-f]+>\] \(\w+\) from \[<[0-9a-f]+>\] \(|\[[0-9a-f]{8,16}\] \[[0-9a-f]{8,16}\] )?"
    rb"[\w.$]+\+0x[0-9a-f]+/0x[0-9a-f]+"
)
_PRINTK_PREFIX = re.compile(rb"^(?:.*?\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?)?")


def _frame_lines(lines: list[bytes]) -> list[int]:
    numbers = []
    for number, line in enumerate(lines, start=1):
        prefix = _PRINTK_PREFIX.match(line)
        body = line[prefix.end() :] if prefix else line
        if _INDEPENDENT_FRAME.match(body):
            numbers.append(number)
    return numbers


def test_syzkaller_every_frame_line_is_a_frame(syzkaller_logs: list[SyzkallerLog]) -> None:
    total = 0
    for log in syzkaller_logs:
        frames = {f.line for r in log.reports for f in r.iter_frames()}
        expected = _frame_lines(log.log)
        missing = [number for number in expected if number not in frames]
        assert not missing, (log.name, missing[:5])
        total += len(expected)
    assert total > 30000


def test_syzkaller_report_sections_parse_too(syzkaller_logs: list[SyzkallerLog]) -> None:
    # The REPORT: sections are syzkaller's extraction: no prefixes, some symbolized frames.
    sections = [log for log in syzkaller_logs if log.report_section]
    assert len(sections) == 18
    for log in sections:
        reports = list(iter_reports(b"\n".join(log.report_section)))
        frames = {f.line for r in reports for f in r.iter_frames()}
        assert set(_frame_lines(log.report_section)) <= frames, log.name


def test_syzkaller_start_and_end_markers(syzkaller_logs: list[SyzkallerLog]) -> None:
    marked = [log for log in syzkaller_logs if "START" in log.headers]
    assert len(marked) == 4
    for log in marked:
        start = log.headers["START"][0].encode()
        end = log.headers.get("END", log.headers["START"])[0].encode()
        start_line = next(n for n, line in enumerate(log.log, start=1) if start in line)
        end_line = next(
            n for n, line in enumerate(log.log, start=1) if n >= start_line and end in line
        )
        assert any(
            r.first_line == start_line and r.first_line <= end_line <= r.last_line
            for r in log.reports
        ), (log.name, start_line, end_line, [(r.first_line, r.last_line) for r in log.reports])


def test_syzkaller_symbolized_reports_have_inline_frames(corpus: Any) -> None:
    # guilty/N hold reports in syzkaller's symbolized form: "__dump_stack lib/dump_stack.c:16
    # [inline]" lines and "dump_stack+0x292/0x395 lib/dump_stack.c:52".
    # "name file.c:16 [inline]" (also after "[<addr>]", "RIP: 0010:[<a>]  [<a>]", "pc : ") and
    # arm "[<a>] (f) from [<b>] (name file.c:16 [inline])". Not: lockdep's "softirqs last
    # disabled at (210415): [<ffffffff812c1650>] invoke_softirq kernel/softirq.c:395 [inline]".
    inline_line = re.compile(
        rb"^\s*(?:(?:R?IP|pc|lr) *:? +(?:[0-9a-f]{4}:)?|(?:PC|LR) is at )?"
        rb"(?:\[<[0-9a-f]+>\]\s+)*(?:\(\w+\) from \[<[0-9a-f]+>\] \()?"
        rb"[\w.$]+ [\w.+/-]+\.[a-zA-Z]+:\d+(?::\d+)? \[inline\]\)?(?: RSP: [0-9a-f]+)?\s*$"
    )
    files = sorted((corpus.syzkaller / "guilty").iterdir())
    with_inline = 0
    for path in files:
        lines = path.read_bytes().split(b"\n")
        reports = list(iter_reports(lines))
        inline = {f.line for r in reports for f in r.iter_frames() if f.inline}
        expected = {n for n, line in enumerate(lines, start=1) if inline_line.match(line)}
        assert expected == inline, path.name
        for frame in (f for r in reports for f in r.iter_frames() if f.inline):
            assert frame.source is not None and frame.offset is None
        with_inline += bool(expected)
    assert with_inline >= 60


# A console prefix before the message text: "[   12.345678]" and "[  T123]" / "[ C1]" stamps.
_STAMPS = re.compile(r"^(?:\s*\[\s*[\dTC.]+\])*\s*")


def test_header_rules_compiled_lazily_match_what_all_compiled_match(
    syzkaller_logs: list[SyzkallerLog],
) -> None:
    """match_header compiles a rule when a text with the rule's literal start first reaches
    it: on every distinct message text of the syzkaller corpus, it finds the rule and match the
    rules compiled all at once find, first to last."""
    compiled = [re.compile(rule.pattern, rule.flags) for rule in HEADER_RULES]

    def eager(text: str) -> tuple[int, tuple[str | None, ...]] | None:
        if not text.startswith(HEADER_STARTS) and "[#" not in text:
            return None
        for position, pattern in enumerate(compiled):
            match = pattern.match(text)
            if match is not None:
                return position, match.groups()
        return None

    texts = {
        _STAMPS.sub("", line.decode("utf-8", "replace")).strip()
        for log in syzkaller_logs
        for line in log.log
    }
    found = 0
    for text in texts:
        lazy = match_header(text)
        answer = None if lazy is None else (HEADER_RULES.index(lazy[0]), lazy[1].groups())
        assert answer == eager(text), text
        found += answer is not None
    assert len(texts) == 30_011
    assert found == 708
