"""Hostile input (issue 17): no case may exhaust the machine, run away or end as a bug.

Every case of ``tests/hostile_inputs.py`` runs as a child process (``python -m ltosyms``) with
its memory and time watched; each must

- end with the exit code the README's table gives (0, 2, 3 or 4; never 70), stderr one line,
- stay under 1 GiB peak RSS (its VmHWM; it is killed as soon as it passes that) and 60 s,
- show no finding of its own (a file created outside the cache, answers that differ from a
  run without the cache).

An endless source (``/dev/zero``) passes by running in bounded memory until it is stopped.
A case whose fix is not in yet is marked ``xfail(strict=True)`` (``PART_TWO``: the exception
it must fail with, the reason the issue gives); ``FIXED_IN_PART_TWO`` says where each case of
the second part of the work was fixed. Below the cases, tests of the bounds themselves on the
library's functions, of the one pass decode makes over a log, and of the index cache.
"""

from __future__ import annotations

import gzip
import http.server
import io
import json
import logging
import lzma
import os
import re
import struct
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Corpus
from hostile_inputs import (
    CASES,
    GIB,
    MIB,
    SAMPLE_MODULE,
    SAMPLE_VMLINUX,
    Case,
    Outcome,
    dripping_server,
    function_frames,
    long_numbers_log,
    run_case,
    sample_oops,
    sections,
    symbols,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from ltosyms import limits
from ltosyms.cli import cli
from ltosyms.debuginfod import DebuginfodClient, DebuginfodConfig, DebuginfodError
from ltosyms.elf.image import open_image
from ltosyms.elf.symtab import SymbolTable
from ltosyms.errors import CacheError, InputError
from ltosyms.index import kinds
from ltosyms.oops import LogStretch, iter_log_stretches, iter_reports
from ltosyms.oops.lines import iter_physical_lines
from ltosyms.oops.parse import IDLE_LINES

MEMORY_BOUND = 1 * GIB
TIME_BOUND = 60.0
# How long an endless source runs before it is stopped: parse reads /dev/zero at hundreds of
# MB/s, so five seconds is gigabytes through a reader whose memory must stay flat.
ENDLESS_SECONDS = 5.0


class InternalError(AssertionError):
    """The command ended as a bug (exit 70) on input the user gave."""


class Exceeded(AssertionError):
    """The command went past the memory or time bound (it was killed there)."""


class WrongAnswer(AssertionError):
    """The command ended, but not as the README says, or with a finding of the case."""


def judge(case: Case, outcome: Outcome, note: str) -> None:
    """Raise the exception that names the first broken promise."""
    said = f"{case.name}: {outcome.describe()}, {outcome.peak_rss / MIB:.0f} MiB, "
    said += f"{outcome.seconds:.1f} s; {outcome.first_stderr_line[:200]!r}"
    if outcome.exit_code == 70:
        raise InternalError(said)
    if outcome.killed == "memory" or outcome.peak_rss > MEMORY_BOUND:
        raise Exceeded(said)
    if case.endless:
        if outcome.killed != "time":
            raise WrongAnswer(f"an endless source ended: {said}")
        return
    if outcome.killed is not None or outcome.seconds > TIME_BOUND:
        raise Exceeded(said)
    if str(outcome.exit_code) not in case.expect.split("/"):
        raise WrongAnswer(f"expected exit {case.expect}: {said}")
    if note:
        raise WrongAnswer(f"{note}: {said}")
    lines = outcome.stderr.splitlines()
    errors = [line for line in lines if line.startswith("ltosyms: error:")]
    if outcome.exit_code != 0 and (len(errors) != 1 or "Traceback" in outcome.stderr):
        raise WrongAnswer(f"not one error line: {outcome.stderr[:500]!r}")


# What part 2 must do for each case it owns (by case name), and the exception each case
# fails with today: the reason the issue gives.
PART_TWO: dict[str, tuple[type[AssertionError], str]] = {}


# Cases of part 2 that it fixed (their markers removed), and where.
FIXED_IN_PART_TWO = {
    # ltosyms.index.answers drops a stored value that does not decode; the codecs' reader
    # (ltosyms.index.encoding.loads) refuses counts the bytes cannot hold.
    "index rows damaged under a valid checksum",
    # ltosyms.index.store checks a table file whole against its CRC-32 when it opens it.
    "symbols table: number columns flipped",
    "symbols table: name order damaged",
    # ltosyms.index.store opens the lock and table files with O_NOFOLLOW, refuses journal
    # files that are not regular files and a writable cache directory of another user.
    "ltosyms cache: <key>.lock is a symlink",
    # ltosyms decode reads the log once (ltosyms.oops.iter_log_stretches): each stretch's
    # reports are decoded, then its lines printed (cli/decode.py), the JSON document written
    # a report at a time; stdin and pipes are read as they come.
    "decode 200 MB of repeated reports",
    "decode 200 MB CR-only log",
    "decode VMLINUX <pipe>",
    # ltosyms.index.store keys an index by build id and a fingerprint of the file (its size,
    # headers and .symtab), and says when a file shares another one's build id.
    "another vmlinux with the same build id",
    # A trace keeps limits.MAX_TRACE_FRAMES entries and counts the rest (ltosyms.oops.builders
    # TraceBuilder.keep): the log's 4.4 million entries are read, 16,384 of each report decoded.
    "decode 200 MB of repeated frames",
}


def _params() -> list[object]:
    params = []
    for case in CASES:
        marks: list[pytest.MarkDecorator] = []
        if case.slow or case.endless:
            marks.append(pytest.mark.slow)
        if case.part == 2 and case.name not in FIXED_IN_PART_TWO:
            raises, reason = PART_TWO[case.name]
            marks.append(pytest.mark.xfail(strict=True, raises=raises, reason=reason))
        params.append(pytest.param(case, marks=marks, id=f"{case.item}-{case.name}"))
    return params


def test_every_part_two_case_says_what_part_two_must_do() -> None:
    assert {case.name for case in CASES if case.part == 2} == set(PART_TWO) | FIXED_IN_PART_TWO
    assert not set(PART_TWO) & FIXED_IN_PART_TWO


@pytest.mark.parametrize("case", _params())
def test_hostile_case(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if case.needs_corpus:
        request.getfixturevalue("corpus")  # skips (or fails under CI) without the corpus
    outcome, note = run_case(
        case,
        tmp_path,
        time_limit=TIME_BOUND + 5,
        endless_seconds=ENDLESS_SECONDS,
        rss_limit=MEMORY_BOUND,
    )
    judge(case, outcome, note)


# -- the bounds, one by one ------------------------------------------------------------------


def test_a_line_without_end_keeps_its_first_part(caplog: pytest.LogCaptureFixture) -> None:
    endless_line = b"x" * (3 * limits.MAX_LINE_CHARS + 5) + b"\nnext\n"
    with caplog.at_level(logging.WARNING, logger="ltosyms"):
        lines = list(iter_physical_lines(io.BytesIO(endless_line)))
    assert lines == ["x" * limits.MAX_LINE_CHARS, "next"]
    assert [r.getMessage() for r in caplog.records] == [
        f"line 1 is longer than {limits.MAX_LINE_CHARS} characters: the rest of it is ignored "
        "(a kernel console line is at most a few hundred)"
    ]


@pytest.mark.parametrize("block_size", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_long_lines_are_cut_the_same_whatever_the_blocks(
    monkeypatch: pytest.MonkeyPatch, block_size: int, ending: str
) -> None:
    from ltosyms.oops import lines as lines_module

    monkeypatch.setattr(lines_module, "BLOCK_SIZE", block_size)
    monkeypatch.setattr(limits, "MAX_LINE_CHARS", 8)
    text = ending.join(["short", "exactly8", "nine char", "é" * 20, "", "a\u00e9b"]) + ending
    expected = ["short", "exactly8", "nine cha", "é" * 8, "", "a\u00e9b"]
    for source in (text, text.encode(), io.BytesIO(text.encode()), io.StringIO(text)):
        assert list(iter_physical_lines(source, report_cuts=False)) == expected
    # An iterable of lines is cut the same way.
    assert list(iter_physical_lines(text.splitlines(), report_cuts=False)) == expected


def _reference_lines(text: str, limit: int) -> list[str]:
    """Universal newlines by the definition: a line ends at CRLF, CR or LF."""
    if not text:
        return []
    lines = re.split("\r\n|\r|\n", text)
    if lines[-1] == "":
        lines.pop()  # the text ended with a line end
    return [line[:limit] for line in lines]


@settings(derandomize=True, max_examples=400)
@given(
    text=st.text(alphabet="ab\u00e9\r\n", max_size=60),
    block_size=st.integers(min_value=1, max_value=9),
    limit=st.integers(min_value=1, max_value=12),
)
def test_line_splitting_matches_the_definition(text: str, block_size: int, limit: int) -> None:
    from ltosyms.oops import lines as lines_module

    saved = lines_module.BLOCK_SIZE, limits.MAX_LINE_CHARS
    lines_module.BLOCK_SIZE, limits.MAX_LINE_CHARS = block_size, limit
    try:
        expected = _reference_lines(text, limit)
        for source in (text.encode(), io.StringIO(text)):
            assert list(iter_physical_lines(source, report_cuts=False)) == expected
    finally:
        lines_module.BLOCK_SIZE, limits.MAX_LINE_CHARS = saved


def test_cuts_are_counted_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    long_line = "y" * (limits.MAX_LINE_CHARS + 100)
    with caplog.at_level(logging.WARNING, logger="ltosyms"):
        lines = list(iter_physical_lines(f"{long_line}\nok\n{long_line}\n"))
    assert lines == ["y" * limits.MAX_LINE_CHARS, "ok", "y" * limits.MAX_LINE_CHARS]
    assert caplog.records[-1].getMessage() == (
        f"2 lines were longer than {limits.MAX_LINE_CHARS} characters; "
        "200 characters of them were ignored"
    )


def test_a_cr_only_log_is_read_line_by_line() -> None:
    text = (SAMPLE_VMLINUX.parent / "README.md").read_text()
    assert list(iter_physical_lines(text.replace("\n", "\r").encode())) == text.splitlines()


def test_a_report_longer_than_the_bound_is_handed_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(limits, "MAX_REPORT_LINES", 1000)
    (name, size), _ = function_frames(SAMPLE_VMLINUX)
    log = "WARNING: CPU: 0 PID: 1 at a.c:1 x+0x1/0x2\nCall Trace:\n"
    log += f" {name}+0x4/{size:#x}\n" * 2500
    with caplog.at_level(logging.WARNING, logger="ltosyms"):
        reports = list(iter_reports(log))
    # The bound is checked every 256 lines (the idle check's rhythm): the first report (the
    # WARNING's own frame and those of lines 3-1023) is handed out at line 1024, the next,
    # a header-less trace from line 1024, at line 2048; the last one holds lines 2048-2502.
    assert [len(r.traces[0].frames) for r in reports] == [1 + 1021, 1024, 455]
    assert reports[0].title.startswith("WARNING: CPU: 0 PID: 1")
    assert [(r.first_line, r.last_line) for r in reports] == [(1, 1023), (1024, 2047), (2048, 2502)]
    first_chars = len(log.split("\n", 1)[0]) + 1  # the header line, read when it opened
    spanned = len("".join(log.splitlines(keepends=True)[:1024])) - first_chars
    assert [r.getMessage() for r in caplog.records] == [
        f"line 1024: the report that starts at line 1 spans 1023 lines ({spanned} characters); "
        "it ends here and the lines that follow start a new one",
        f"2 reports ran past 1000 lines or {limits.MAX_REPORT_CHARS} characters and were cut there",
    ]


def test_a_trace_keeps_its_first_entries_and_counts_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(limits, "MAX_TRACE_FRAMES", 1000)
    (name, size), _ = function_frames(SAMPLE_VMLINUX)
    log = "WARNING: CPU: 0 PID: 1 at a.c:1 x+0x1/0x2\nCall Trace:\n"
    # Plain entries (the parser's fast path), then entries with an address (its grammar).
    log += f" {name}+0x4/{size:#x}\n" * 1200
    log += f" [<ffffffff81000000>] {name}+0x4/{size:#x}\n" * 300
    (report,) = iter_reports(log)
    (trace,) = report.traces
    # The WARNING's own frame and 999 entries are kept; 501 entries are counted.
    assert (len(trace.frames), trace.frames_not_kept) == (1000, 501)
    assert (trace.first_line, trace.last_line) == (1, 1502)
    log_file = tmp_path / "long-trace.log"
    log_file.write_text(log)
    args = ["decode", str(SAMPLE_VMLINUX), str(log_file), "--no-cache"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    # Every line is printed; the kept entries are decoded, the others printed as read.
    out = result.stdout.splitlines()
    assert out.count(f" {name}+0x4/{size:#x}") == 1200
    assert out.count(f" [<ffffffff81000000>] {name}+0x4/{size:#x}") == 300
    assert result.stderr.splitlines() == [
        "ltosyms: warning: line 1: trace at line 1: 501 entries past the first 1000 are "
        "printed as read, not decoded (more entries than any kernel stack holds)"
    ]
    parsed = CliRunner().invoke(cli, ["parse", str(log_file), "--json"])
    (trace_json,) = json.loads(parsed.stdout)["reports"][0]["traces"]
    assert (len(trace_json["frames"]), trace_json["frames_not_kept"]) == (1000, 501)


def test_a_report_of_more_characters_than_the_bound_is_handed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "MAX_REPORT_CHARS", 100_000)
    frame = f" {'a' * 1000}+0x4/0x10\n"  # a frame of 1,014 characters
    log = "WARNING: CPU: 0 PID: 1 at a.c:1 x+0x1/0x2\nCall Trace:\n" + frame * 600
    reports = list(iter_reports(log))
    # Checked every 256 lines: at line 256 the report has read 255 lines of ~1 KB (past the
    # bound) and is handed out; the next one, from line 256, at line 512; the last one ends
    # with the log at line 602.
    assert [(r.first_line, r.last_line) for r in reports] == [(1, 255), (256, 511), (512, 602)]
    assert sum(len(t.frames) for r in reports for t in r.traces) == 1 + 600


def test_numbers_of_thousands_of_digits_are_not_numbers(tmp_path: Path) -> None:
    warning, nmi = iter_reports(long_numbers_log(tmp_path).read_bytes())
    # CPU, PID and line numbers of 5,000 digits are no numbers a kernel prints: unknown.
    assert (warning.cpu, warning.pid, nmi.cpu) == (None, None, None)
    assert nmi.title == "NMI backtrace for cpu " + "9" * 5000
    call_trace, task = warning.traces
    assert (task.kind, task.pid) == ("task", None)
    # The header's frame and the annotated one lose their (5,000-digit) line; no frame of the
    # log keeps a source annotation.
    frames = [*call_trace.frames, *task.frames, *nmi.traces[0].frames]
    assert [frame.source for frame in frames] == [None] * 6
    # Hexadecimal has no conversion limit: a size or offset of 5,000 digits is the number it
    # says (the decoder finds no symbol that size, as for any wrong size).
    assert max(frame.kallsyms_size or 0 for frame in frames) == int("f" * 5000, 16)
    assert nmi.kaslr_offset == int("1" * 5000, 16)


# -- one pass over the log: stretches of lines with their reports --------------------------------


def _check_stretches(log: bytes, lines_per_stretch: int) -> list[LogStretch]:
    """The stretches of ``log`` hold its lines and its reports, each report no later than the
    stretch holding its first line (so before every line it annotates)."""
    stretches = list(iter_log_stretches(log, lines_per_stretch))
    lines = [line for stretch in stretches for line in stretch.lines]
    assert lines == list(iter_physical_lines(log, report_cuts=False))
    assert [r for stretch in stretches for r in stretch.reports] == list(iter_reports(log))
    next_line = 1
    for stretch in stretches:
        assert stretch.first_line == next_line
        next_line += len(stretch.lines)
        for report in stretch.reports:
            assert report.first_line >= stretch.first_line
            assert all(f.line >= stretch.first_line for f in report.iter_frames())
    return stretches


def _corpus_logs(corpus: Corpus) -> list[Path]:
    return sorted(corpus.kernels.glob("*/console.log")) + sorted(
        (corpus.debian / "logs").glob("*.log")
    )


def test_corpus_logs_in_stretches(corpus: Corpus) -> None:
    logs = _corpus_logs(corpus)
    assert len(logs) == 8
    for path in logs:
        for lines_per_stretch in (1, 7, 1024):
            _check_stretches(path.read_bytes(), lines_per_stretch)


def test_syzkaller_logs_in_stretches(corpus: Corpus) -> None:
    """The syzkaller logs interleave the reports of several tasks (printk caller ids)."""
    logs = sorted((corpus.syzkaller / "report").iterdir(), key=lambda p: int(p.name))
    assert len(logs) == 747
    for path in logs:
        _check_stretches(path.read_bytes(), 64)


def test_lines_are_held_only_while_a_report_may_reach_them() -> None:
    (name, size), _ = function_frames(SAMPLE_VMLINUX)
    report = f"WARNING: CPU: 0 PID: 1 at a.c:1 x+0x1/0x2\nCall Trace:\n {name}+0x4/{size:#x}\n"
    # A report, 5,000 lines of text, a report, 20,000 empty lines (a report goes quiet
    # after IDLE_LINES of them too), a report.
    log = (report + "text\n" * 5000 + report + "\n" * 20_000 + report).encode()
    stretches = _check_stretches(log, 256)
    assert [len(s.reports) for s in stretches if s.reports] == [1, 1, 1]
    # Stretches of 256 lines but where a report was open (it goes quiet after IDLE_LINES
    # lines, checked every 256): no stretch holds more than that.
    assert max(len(s.lines) for s in stretches) <= IDLE_LINES + 2 * 256


def test_a_title_line_is_remembered_for_idle_lines_only() -> None:
    (name, size), _ = function_frames(SAMPLE_VMLINUX)
    trace = f"Call Trace:\n {name}+0x4/{size:#x}\n"
    near = "some title\n" + "\n" * (IDLE_LINES - 1) + trace
    far = "some title\n" + "\n" * IDLE_LINES + trace
    ((titled,), (untitled,)) = (list(iter_reports(near)), list(iter_reports(far)))
    assert (titled.title, titled.first_line) == ("some title", 1)
    assert (untitled.title, untitled.first_line) == ("Call Trace:", IDLE_LINES + 2)


def test_a_log_on_stdin_is_read_as_it_comes(tmp_path: Path) -> None:
    """``decode VMLINUX -`` from a pipe prints what decoding the file prints, and leaves no
    copy of the log anywhere (TMPDIR stays empty)."""
    import subprocess
    import sys

    log = tmp_path / "oops.log"
    log.write_text("before\n" + sample_oops(SAMPLE_VMLINUX) + "after\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "LTOSYMS_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "ltosyms", "decode", str(SAMPLE_VMLINUX)]
    from_file = subprocess.run([*command, str(log)], capture_output=True, env=env, check=True)
    with subprocess.Popen(
        [*command, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    ) as process:
        assert process.stdin is not None
        for line in log.read_bytes().splitlines(keepends=True):
            process.stdin.write(line)
        process.stdin.close()
        assert process.stdout is not None
        from_pipe = process.stdout.read()
    assert process.returncode == 0
    assert from_pipe == from_file.stdout
    # The log's lines, each frame's followed by its decoding.
    assert len(from_pipe.splitlines()) > len(log.read_bytes().splitlines())
    assert list(scratch.iterdir()) == []


def test_decode_json_is_written_a_report_at_a_time(tmp_path: Path) -> None:
    """``decode --json`` prints what json.dumps prints for the whole document."""
    import json

    from click.testing import CliRunner

    from ltosyms.cli import cli
    from ltosyms.context import ModuleSet, Session
    from ltosyms.decode.decode import Decoder
    from ltosyms.render.decode_json import decode_document

    oops = sample_oops(SAMPLE_VMLINUX)
    log = tmp_path / "oops.log"
    log.write_text(oops + "some text\n" + oops)
    with Session(None) as session:
        context = session.open_vmlinux(str(SAMPLE_VMLINUX))
        decoder = Decoder(context, ModuleSet())
        decoded = [decoder.decode(report) for report in iter_reports(log.read_bytes())]
        expected = json.dumps(decode_document(context.loaded, decoded), indent=1) + "\n"
    assert len(decoded) == 2
    for text, reports in ((log.read_text(), 2), ("no report\n", 0)):
        log.write_text(text)
        result = CliRunner().invoke(
            cli, ["decode", "--no-cache", "--json", str(SAMPLE_VMLINUX), str(log)]
        )
        assert result.exit_code == 0, result.output
        assert len(json.loads(result.stdout)["reports"]) == reports
        if reports:
            assert result.stdout == expected


def _strtab_image(tmp_path: Path, extra_symbols: int) -> Path:
    from hostile_inputs import _long_names

    return _long_names(tmp_path, extra_symbols)


def test_names_past_the_bound_are_cut_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _strtab_image(tmp_path, 0)
    count = len(symbols(SAMPLE_VMLINUX.read_bytes())) - 1
    with caplog.at_level(logging.WARNING, logger="ltosyms"), open_image(path) as image:
        table = SymbolTable(image)
    assert {len(name) for name in table.names[1:]} == {limits.MAX_SYMBOL_NAME_BYTES}
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: {count} symbol names are longer than {limits.MAX_SYMBOL_NAME_BYTES} bytes "
        "and cut there (kallsyms keeps no name longer than 511)"
    ]


def test_names_that_overlap_beyond_the_bound_are_refused(tmp_path: Path) -> None:
    path = _strtab_image(tmp_path, 100_000)
    with open_image(path) as image, pytest.raises(InputError) as caught:
        SymbolTable(image)
    assert str(caught.value).startswith(f"{path}: .strtab is damaged: its ")
    assert str(caught.value).endswith(" bytes of symbol names (names overlap)")


def test_sizes_past_the_top_of_the_address_space_are_cut(tmp_path: Path) -> None:
    from hostile_inputs import top_of_address_space_image

    path = top_of_address_space_image(tmp_path)
    (first, _), (second, _) = function_frames(SAMPLE_VMLINUX)
    with open_image(path) as image:
        table = SymbolTable(image)
        (grown,) = table.by_name(first)
        (moved,) = table.by_name(second)
        assert grown.end_address == (1 << 64) - 1
        assert moved.link_address == 0xFFFF_FFFF_FFFF_FFF0
        assert moved.end_address <= (1 << 64) - 1
        # The stored form (unsigned 64-bit columns) takes every value.
        assert kinds.SYMBOLS.decode(kinds.SYMBOLS.encode(table), image) is not None


def test_real_images_keep_every_name_whole(corpus: Corpus) -> None:
    """The bounds cut nothing of a real kernel: the corpus' longest name is far below."""
    for path in (corpus.kernel_vmlinux("clang-thinlto-6.12"), SAMPLE_MODULE):
        with open_image(path) as image:
            table = SymbolTable(image)
            assert max(map(len, table.names)) < limits.MAX_SYMBOL_NAME_BYTES // 8


def _compressed(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    compress = gzip.compress if name.endswith(".gz") else lzma.compress
    path.write_bytes(compress(content))
    return path


def test_a_compressed_image_is_inflated_only_up_to_its_elf_end(tmp_path: Path) -> None:
    module = SAMPLE_MODULE.read_bytes()
    trailing = _compressed(tmp_path, "sample_mod.ko.xz", module + bytes(32 * MIB))
    with open_image(trailing) as image:
        assert image.data == module
        assert image.is_module


def test_a_compressed_elf_placing_its_headers_past_the_bound_is_refused(tmp_path: Path) -> None:
    header = bytearray(SAMPLE_MODULE.read_bytes()[:64])
    struct.pack_into("<Q", header, 0x28, limits.MAX_IMAGE_BYTES)  # e_shoff
    (section_count,) = struct.unpack_from("<H", header, 0x3C)
    path = _compressed(tmp_path, "far.ko.gz", bytes(header))
    with pytest.raises(InputError) as caught:
        open_image(path)
    claimed = limits.MAX_IMAGE_BYTES + 64 * section_count
    assert str(caught.value) == (
        f"{path}: the ELF it holds claims {claimed:,} bytes, more than the "
        f"{limits.MAX_IMAGE_BYTES:,} of the largest image ltosyms reads"
    )


def test_a_compressed_image_may_not_inflate_without_measure(tmp_path: Path) -> None:
    header = bytearray(SAMPLE_MODULE.read_bytes()[:64])
    struct.pack_into("<Q", header, 0x28, 2 * limits.MIN_INFLATE_BYTES)  # headers far in
    path = _compressed(tmp_path, "zeros.ko.xz", bytes(header) + bytes(2 * limits.MIN_INFLATE_BYTES))
    with pytest.raises(InputError, match=r"inflates to more than 64 times its [\d,]+ "):
        open_image(path)


@pytest.mark.parametrize("suffix", [".gz", ".xz"])
def test_compressed_garbage_stops_after_its_first_block(tmp_path: Path, suffix: str) -> None:
    path = _compressed(tmp_path, f"garbage.ko{suffix}", bytes(200 * MIB))
    started = time.monotonic()
    with pytest.raises(InputError, match="not an ELF file"):
        open_image(path)
    assert time.monotonic() - started < 5  # 200 MB would take seconds; one block takes none


# -- debuginfod ---------------------------------------------------------------------------------


def _client(cache: Path, url: str, **limits_: float | None) -> DebuginfodClient:
    return DebuginfodClient(DebuginfodConfig(urls=(url,), cache_dir=cache, **limits_))


@pytest.mark.parametrize("mode", ["body", "headers"])
def test_a_dripping_server_is_stopped_by_the_timeout(mode: str, tmp_path: Path) -> None:
    with dripping_server(mode) as server:
        started = time.monotonic()
        with pytest.raises(DebuginfodError) as caught:
            _client(tmp_path, server.url, timeout=1.0).fetch("ab" * 20)
        elapsed = time.monotonic() - started
    assert "timed out: less than 100 KB/s for 1 s (DEBUGINFOD_TIMEOUT)" in str(caught.value)
    assert 1.0 <= elapsed < 3.0
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == []  # no partial file stays


def test_a_fast_endless_server_is_stopped_by_the_maximum_time(tmp_path: Path) -> None:
    stop = threading.Event()

    class Fast(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            block = b"\x7fELF" + bytes(64 * 1024 - 4)
            try:
                while not stop.is_set():
                    self.wfile.write(block)  # far above 100 KB/s: only MAXTIME ends it
            except OSError:
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fast)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(DebuginfodError) as caught:
            _client(
                tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}", timeout=1, max_time=2
            ).fetch("cd" * 20)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
    assert str(caught.value).endswith("download took longer than DEBUGINFOD_MAXTIME (2 s)")
    assert 2.0 <= elapsed < 4.0
    assert not list(tmp_path.rglob("*.part"))


def test_a_cached_file_planted_as_a_symlink_is_not_read(tmp_path: Path) -> None:
    with open_image(SAMPLE_VMLINUX) as image:
        build_id = image.build_id
    assert build_id
    entry = tmp_path / "cache" / build_id / "debuginfo"
    entry.parent.mkdir(parents=True)
    entry.symlink_to(SAMPLE_VMLINUX)  # a real image with the right build id, through a link
    client = _client(tmp_path / "cache", "http://127.0.0.1:9")
    assert client.cached(build_id) is None


def test_a_cache_directory_planted_as_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ("ef" * 20)).symlink_to(elsewhere)
    with pytest.raises(CacheError) as caught:
        _client(cache, "http://127.0.0.1:9").fetch("ef" * 20)
    assert caught.value.exit_code == 4
    assert str(caught.value) == (
        f"debuginfod cache entry {cache / ('ef' * 20)} is a symbolic link, not a directory; "
        "it is not followed (remove it)"
    )
    assert list(elsewhere.iterdir()) == []


def _planted_lock(tmp_path: Path) -> tuple[Path, Path]:
    from ltosyms.index.store import image_key, index_file_name

    cache = tmp_path / "cache"
    cache.mkdir()
    target = tmp_path / "outside" / "made-through-the-link"
    target.parent.mkdir()
    with open_image(SAMPLE_VMLINUX) as image:
        key = image_key(image)
    (cache / f"{index_file_name(key)}.lock").symlink_to(target)
    return cache, target


def test_a_lock_planted_as_a_symlink_is_not_followed(tmp_path: Path) -> None:
    from ltosyms.index.store import CacheLocation, open_store

    cache, target = _planted_lock(tmp_path)
    with open_image(SAMPLE_VMLINUX) as image:
        # The default cache: decoding goes on without it (a warning says why) ...
        assert open_store(image, CacheLocation(directory=cache)) is None
        # ... a directory the user named is the cache's error, exit 4.
        with pytest.raises(CacheError) as caught:
            open_store(image, CacheLocation(directory=cache, explicit=True))
    assert caught.value.exit_code == 4
    assert str(caught.value).startswith(f"cache directory {cache}: ")
    assert str(caught.value).endswith(".lock is a symbolic link; it is not followed (remove it)")
    assert not target.exists()


def test_a_table_file_planted_as_a_symlink_is_not_read(tmp_path: Path) -> None:
    from ltosyms.index.store import CacheLocation, open_store

    location = CacheLocation(directory=tmp_path / "cache")
    with open_image(SAMPLE_VMLINUX) as image:
        store = open_store(image, location)
        assert store is not None
        with store:
            assert store.put_table("symbols-4", b"12345678")
            real = store.table_path("symbols-4")
            moved = tmp_path / "elsewhere.table"
            real.rename(moved)
            real.symlink_to(moved)  # the same bytes, valid checksum, through a link
            assert store.get_table("symbols-4") is None
            real.unlink()
            moved.rename(real)
            assert store.get_table("symbols-4") == b"12345678"


def test_a_journal_planted_as_a_symlink_is_refused(tmp_path: Path) -> None:
    from ltosyms.index.store import CacheLocation, image_key, index_file_name, open_store

    cache = tmp_path / "cache"
    with open_image(SAMPLE_VMLINUX) as image:
        store = open_store(image, CacheLocation(directory=cache))
        assert store is not None
        store.close()
        target = tmp_path / "outside-wal"
        (cache / f"{index_file_name(image_key(image))}-wal").symlink_to(target)
        with pytest.raises(CacheError, match=r"-wal exists but is not a regular file"):
            open_store(image, CacheLocation(directory=cache, explicit=True))
    assert not target.exists()


def test_another_file_with_the_same_build_id_gets_its_own_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hostile_inputs import patch_symbol

    from ltosyms.index.store import CacheLocation, image_key, open_store

    data = bytearray(SAMPLE_VMLINUX.read_bytes())
    (name, _), _ = function_frames(SAMPLE_VMLINUX)
    (symbol,) = [s for s in symbols(bytes(data)) if s.name == name]
    patch_symbol(data, symbol.index, size=symbol.size + 16)  # one symbol one size larger
    other = tmp_path / "vmlinux-same-build-id"
    other.write_bytes(bytes(data))
    location = CacheLocation(directory=tmp_path / "cache")
    with open_image(SAMPLE_VMLINUX) as image, open_image(other) as impostor:
        assert image.build_id == impostor.build_id
        assert image_key(image) != image_key(impostor)
        first = open_store(image, location)
        assert first is not None
        first.put(0x10, b"an answer for the first file")
        first.close()
        with caplog.at_level(logging.WARNING, logger="ltosyms"):
            second = open_store(impostor, location)
            assert second is not None
            assert second.path != first.path
            assert second.get(0x10) is None
            second.close()
            again = open_store(image, location)  # each file finds its own index again
            assert again is not None and again.get(0x10) == b"an answer for the first file"
            again.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"{other} has the build id of the file indexed in {first.path.name}, but not its size, "
        "section headers or symbol table: it is another build, indexed on its own"
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_writable_cache_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    from ltosyms.index.store import CacheLocation, open_store

    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    os.chown(cache, 4321, 4321)
    with open_image(SAMPLE_VMLINUX) as image, pytest.raises(CacheError) as caught:
        open_store(image, CacheLocation(directory=cache, explicit=True))
    assert str(caught.value) == (
        f"cache directory {cache}: owned by user id 4321, not by you ({os.geteuid()})"
    )
    assert list(cache.iterdir()) == []


def test_sections_helper_reads_the_sample() -> None:
    """The case builders' own ELF reader agrees with ltosyms' on the sample."""
    found = sections(SAMPLE_VMLINUX.read_bytes())
    with open_image(SAMPLE_VMLINUX) as image:
        for section in image.sections[1:]:
            assert (found[section.name].offset, found[section.name].size) == (
                section.file_offset,
                section.size,
            )
