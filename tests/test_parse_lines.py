"""Physical lines and printk/syslog prefixes (ltosyms.oops.lines)."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltosyms.oops import lines
from ltosyms.oops.lines import (
    CONSOLE_PREFIX,
    LogLine,
    PrefixSplitter,
    iter_log_lines,
    iter_physical_blocks,
    iter_physical_lines,
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a\nb\n", ["a", "b"]),
        ("a\r\nb\r\n", ["a", "b"]),
        ("a\rb\n", ["a", "b"]),  # a lone CR ends a line (serial consoles)
        ("a\n\nb", ["a", "", "b"]),
        ("", []),
        ("\n", [""]),
        ("last without terminator", ["last without terminator"]),
        ("cr at end\r", ["cr at end"]),
    ],
)
def test_line_terminators(source: str, expected: list[str]) -> None:
    assert list(iter_physical_lines(source)) == expected
    assert list(iter_physical_lines(source.encode())) == expected
    assert list(iter_physical_lines(io.BytesIO(source.encode()))) == expected
    assert list(iter_physical_lines(io.StringIO(source))) == expected


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert list(iter_physical_lines(b"ok\n\xff\xfebad\n")) == ["ok", "\ufffd\ufffdbad"]


def test_iterable_of_lines_keeps_one_line_per_item() -> None:
    items = [b"one\n", b"two\r\n", "three", b"four\nfive"]
    assert list(iter_physical_lines(items)) == ["one", "two", "three", "four", "five"]
    assert list(iter_physical_lines(b"x\ny".splitlines())) == ["x", "y"]


def test_blocks_do_not_split_crlf_or_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    # With 3-byte blocks, "\r\n" pairs and the 2-byte "é" fall across block boundaries.
    monkeypatch.setattr(lines, "BLOCK_SIZE", 3)
    data = "ab\r\ncd\r\né\r\nlast\rx".encode()
    assert list(iter_physical_lines(io.BytesIO(data))) == ["ab", "cd", "é", "last", "x"]


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet="a\r\né", max_size=40), block_size=st.integers(1, 8))
def test_any_mix_of_line_ends_splits_as_universal_newlines(text: str, block_size: int) -> None:
    # Blocks of 1 to 8 bytes put every CR, CRLF and two-byte character across a boundary.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lines, "BLOCK_SIZE", block_size)
        expected = text.splitlines()
        assert list(iter_physical_lines(io.BytesIO(text.encode()))) == expected
        assert list(iter_physical_lines(io.StringIO(text))) == expected
        blocks = list(iter_physical_blocks(io.BytesIO(text.encode())))
        assert [line for block in blocks for line in block] == expected


# Prefix-like text: pieces of a timestamp and a caller id in any order, or a well-formed
# timestamp, caller id, blank and message joined with some of their parts left out.
_PREFIX_LIKE = st.one_of(
    st.text(alphabet="[] 12.0\tTCx\u0663<4>a", max_size=24).map(lambda rest: "[" + rest),
    st.tuples(
        st.sampled_from(["", "<4>"]),
        st.from_regex(r"\[ {0,5}\d{1,3}(\.\d{1,6})?\]", fullmatch=True),
        st.sampled_from(["", "[  T126]", "[    C2]", "[T1]", "[ X1]", "["]),
        st.sampled_from(["", " ", "  ", "\t"]),
        st.text(alphabet="[]a :", max_size=6),
    ).map("".join),
)


@settings(max_examples=1000, deadline=None)
@given(raw=_PREFIX_LIKE)
def test_a_timestamp_splits_as_the_full_prefix_expression_says(raw: str) -> None:
    # The splitter reads the common "[   12.345678] " by a shorter expression of its own:
    # whatever the line, it must find what CONSOLE_PREFIX finds.
    full = CONSOLE_PREFIX.match(raw)
    line = _split(raw)
    if full is not None:
        level = int(full["level"]) if full["level"] else None
        expected = (raw[full.end() :], full["ts"] or full["wall"], full["caller"], level)
        assert (line.text, line.timestamp, line.caller, line.level) == expected


def _split(raw: str, *, seen_timestamps: bool = False) -> LogLine:
    splitter = PrefixSplitter()
    splitter.seen_timestamps = seen_timestamps
    return splitter.split(1, raw)


@pytest.mark.parametrize(
    ("raw", "text", "timestamp", "caller"),
    [
        ("[   12.345678] Call Trace:", "Call Trace:", "12.345678", None),
        ("[   12.345678]  dump_stack+0x44/0x5c", " dump_stack+0x44/0x5c", "12.345678", None),
        ("[   49.650190][  T126] wlan1: x", "wlan1: x", "49.650190", "T126"),
        ("[   63.198470][    C2] net_ratelimit", "net_ratelimit", "63.198470", "C2"),
        ("[  T126] no timestamp", "no timestamp", None, "T126"),
        ("<4>[    8.9] level and time", "level and time", "8.9", None),
        ("<6>text after a level", "text after a level", None, None),
        ("[Mon Jan  2 03:04:05 2024] dmesg -T", "dmesg -T", "Mon Jan  2 03:04:05 2024", None),
        ("kern  :warn  : [    1.200000] dmesg -x", "dmesg -x", "1.200000", None),
        ("> > [    1.200000] quoted twice", "quoted twice", "1.200000", None),
        (">> [    1.200000] quoted", "quoted", "1.200000", None),
        ("Jan  2 03:04:05 host kernel: BUG: x", "BUG: x", None, None),
        ("Jan 02 03:04:05.123456 host kernel: [ 1.5] y", "y", "1.5", None),
        ("2024-01-02T03:04:05+0000 host kernel: z", "z", None, None),
        ("Sep 23 02:31:17 h kern.err kernel: [ 68.9][ T2742] w", "w", "68.9", "T2742"),
        # Other output glued in front of the kernel message.
        ("Segmentation fault[    3.033209] CPU: 0 PID: 0", "CPU: 0 PID: 0", "3.033209", None),
        ("** 53 printk messages dropped ** [  1.000000]  foo", " foo", "1.000000", None),
        ("\x1b[?7l\x1b[2J[    0.000000] Linux version", "Linux version", "0.000000", None),
    ],
)
def test_prefixes(raw: str, text: str, timestamp: str | None, caller: str | None) -> None:
    line = _split(raw)
    assert (line.text, line.timestamp, line.caller) == (text, timestamp, caller)
    assert not line.foreign and not line.bare


def test_syslog_lines_of_other_programs_are_foreign() -> None:
    line = _split("Dec  4 17:33:13 syzkaller daemon.err dhcpcd[5651]: libudev: received")
    assert line.foreign


def test_kasan_marker_rows_are_not_mail_quoting() -> None:
    assert _split(">ffff888012345600: fc fc 00").text == ">ffff888012345600: fc fc 00"


def test_lines_without_timestamp_in_a_timestamped_log_are_bare() -> None:
    assert not _split("plain text").bare
    assert _split("=== sysrq t", seen_timestamps=True).bare


def test_glued_messages_are_two_lines() -> None:
    raw = "[   76.470085] vmalloc: allocation failure: 34359738352 bytes[   76.471107] BUG: x"
    first, second = iter_log_lines(raw)
    assert (first.number, first.text) == (1, "vmalloc: allocation failure: 34359738352 bytes")
    assert (second.number, second.text) == (1, "BUG: x")


def test_a_stream_in_non_blocking_mode_is_read_to_its_end() -> None:
    """A read with nothing there yet is no end of input (stdin left non-blocking by the
    program before: its reads return None until data comes)."""
    reading, writing = os.pipe()
    os.set_blocking(reading, False)

    def write() -> None:
        with open(writing, "wb", buffering=0) as out:
            for part in (b"first\n", b"second\nthi", b"rd"):
                time.sleep(0.05)  # the reader asks before anything is there
                out.write(part)

    writer = threading.Thread(target=write)
    writer.start()
    with open(reading, "rb", buffering=0) as stream:
        assert list(iter_physical_lines(stream)) == ["first", "second", "third"]
    writer.join()
