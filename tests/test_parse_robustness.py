"""Whatever people paste, the parser returns reports and never raises."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltosyms.oops import Report, iter_reports

# Pieces of real report lines, so that random text reaches the report code and not only the
# "not a kernel line" path.
FRAGMENTS = [
    "[   12.345678] ",
    "[   12.345678][  T123] ",
    "<4>",
    "> ",
    "Jan  2 03:04:05 host kernel: ",
    "BUG: KASAN: use-after-free in foo+0x1/0x2",
    "WARNING: CPU: 0 PID: 1 at a.c:1 foo+0x1/0x2 [mod]",
    "Oops: 0002 [#1] SMP",
    "Kernel panic - not syncing: x",
    "---[ end trace 0 ]---",
    "==================================================================",
    "CPU: 0 PID: 1 Comm: x Tainted: G W 6.1.0 #1",
    "Call Trace:",
    " <IRQ>",
    " </IRQ>",
    " <EOI>",
    " ? foo+0x1/0x2 [mod 0123456789abcdef0123456789abcdef01234567]",
    " [<ffffffff81234567>] bar+0x10/0x20",
    " __dump_stack lib/dump_stack.c:94 [inline]",
    "RIP: 0010:foo+0x1/0x2",
    "RIP: 0033:0x47b7a0",
    "pc : foo+0x1/0x2",
    "lr : bar+0x1/0x2",
    "pstate: 60000005 (nZCv",
    "RAX: 0000000000000000 RBX: 0000000000000002",
    "Code: 48 89 <0f> 0b",
    "Code: d503233f (d4210000)",
    "Code: Unable to access opcode bytes at 0xffff.",
    "task:init state:S stack:0 pid:1",
    "sysrq: Show State",
    "NMI backtrace for cpu 0 skipped: idling at foo+0x1/0x2",
    "Allocated by task 1:",
    "Modules linked in: a(OE) b",
    "Kernel Offset: 0x1000 from 0xffffffff81000000",
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\ufffd",
]


@settings(derandomize=True, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for report in iter_reports(data):
        assert isinstance(report, Report)
        assert 1 <= report.first_line <= report.last_line


@settings(derandomize=True, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=80))
def test_arbitrary_report_fragments_never_raise(pieces: list[str]) -> None:
    text = "".join(pieces)
    reports = list(iter_reports(text))
    assert reports == list(iter_reports(text.encode()))
    for report in reports:
        for frame in report.iter_frames():
            assert report.first_line <= frame.line <= report.last_line


def _real_logs(corpus: Any) -> list[bytes]:
    paths: list[Path] = sorted((corpus.debian / "logs").glob("*.log"))
    paths += sorted(corpus.kernels.glob("*/console.log"))
    return [path.read_bytes() for path in paths]


def test_truncated_and_spliced_real_logs_never_raise(corpus: Any) -> None:
    logs = _real_logs(corpus)
    syzkaller = [p.read_bytes() for p in sorted((corpus.syzkaller / "report").iterdir())]
    rng = random.Random(20261128)
    for _ in range(150):
        first = rng.choice(logs)
        start = rng.randrange(len(first))
        data = first[start : start + rng.randrange(1, 30000)]
        if rng.random() < 0.5:
            second = rng.choice(syzkaller)
            data += second[rng.randrange(len(second)) :]
        else:
            # Cut in the middle of a line, even in the middle of a UTF-8 sequence or "\r\n".
            second = rng.choice(logs)
            cut = rng.randrange(len(second))
            data = data[: rng.randrange(len(data) + 1)] + second[cut : cut + 5000]
        for report in iter_reports(data):
            assert report.first_line <= report.last_line


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_any_block_size_gives_the_same_reports(
    corpus: Any, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    import io

    from ltosyms.oops import lines

    data = (corpus.kernels / "clang-thinlto" / "console.log").read_bytes()[:60000]
    expected = list(iter_reports(data))
    monkeypatch.setattr(lines, "BLOCK_SIZE", size)
    assert list(iter_reports(io.BytesIO(data))) == expected
