"""Input text -> numbered physical lines -> kernel message text with its prefixes set aside.

A log reaches us as bytes (invalid UTF-8 allowed), text, a binary or text file object, or an
iterable of lines. Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (universal newlines, as
serial-console captures use a lone CR for progress output); numbers are 1-based and count those
physical lines, so they match what an editor shows for the raw capture. Files are read in
blocks and a line keeps at most :data:`ltosyms.limits.MAX_LINE_CHARS` characters (the rest is
counted and reported, never held): memory stays independent of the input, even for a source
without any line end such as ``/dev/zero``.

Each line may carry prefixes in front of the kernel's message, outermost first:

- mail quoting ``> `` (repeated),
- a syslog/journald prefix ``Mon DD hh:mm:ss host kernel: `` (also ISO timestamps and
  ``kern.warn`` facility tokens); lines of other programs in the same file are *foreign*,
- ``dmesg -x`` facility/level columns ``kern  :warn  : ``,
- a syslog level ``<4>``,
- the printk timestamp ``[   12.345678]`` (or ``dmesg -T`` ``[Mon Jan  2 03:04:05 2024]``),
- the printk caller id ``[  T123]`` / ``[    C0]`` (CONFIG_PRINTK_CALLER, kernel/printk/
  printk.c ``info_print_prefix``).

Console captures also glue other output in front of a kernel line (``Segmentation fault[
3.03] CPU: 0 ...``, ``** 53 printk messages dropped ** [ 57.1] ...``): a timestamp found later
in the line still starts the kernel message. Once a log has shown timestamps, a line without
one is *bare*: usually user-space output on the same console, sometimes a report pasted from
another capture. The parser uses a bare line only when it is itself a report line.
"""

from __future__ import annotations

import codecs
import io
import itertools
import logging
import re
import select
from collections.abc import Iterable, Iterator
from typing import IO, Any, NamedTuple

from ltosyms import limits

log = logging.getLogger(__name__)

# Input block size when reading a file object: large enough to amortize the per-block work,
# small enough that a 1 GB log never sits in memory.
BLOCK_SIZE = 1 << 20

# What the parser reads: a whole log (bytes or text), a file object, or an iterable of lines.
LogSource = (
    bytes | bytearray | memoryview | str | IO[bytes] | IO[str] | Iterable[bytes] | Iterable[str]
)


class LogLine(NamedTuple):
    """One physical input line split into prefix facts and the kernel message ``text``.

    ``text`` keeps the kernel's own indentation (trace entries start with a space) but not the
    separator space after a timestamp. ``foreign`` lines are syslog lines of other programs;
    ``bare`` lines lack the timestamp the rest of the log has. (A named tuple rather than a
    dataclass: one is made per input line, and tuple construction is several times faster.)
    """

    number: int
    text: str
    timestamp: str | None
    caller: str | None
    level: int | None
    foreign: bool = False
    bare: bool = False


def iter_physical_lines(source: LogSource, *, report_cuts: bool = True) -> Iterator[str]:
    """Yield the physical lines of ``source`` without their line terminators.

    A line longer than :data:`~ltosyms.limits.MAX_LINE_CHARS` is cut there; the first cut and,
    at the end, how many lines were cut are logged as warnings (``report_cuts=False`` for a
    second pass over the same input)."""
    return itertools.chain.from_iterable(iter_physical_blocks(source, report_cuts=report_cuts))


def iter_physical_blocks(source: LogSource, *, report_cuts: bool = True) -> Iterator[list[str]]:
    """:func:`iter_physical_lines` a list at a time: the lines of each block read (of about
    :data:`BLOCK_SIZE` characters; of each item for an iterable), for a consumer that loops
    over millions of lines and takes each block's lines at once."""
    cuts = _LineCuts(report_cuts)
    if isinstance(source, str):
        return _iter_blocks(io.StringIO(source), cuts)
    if isinstance(source, bytes | bytearray | memoryview):
        return _iter_blocks(io.BytesIO(source), cuts)
    if hasattr(source, "read"):
        return _iter_blocks(source, cuts)
    return _iter_items(source, cuts)


class _LineCuts:
    """Counts the lines cut at the length bound and what was dropped of them."""

    __slots__ = ("dropped", "lines", "report", "warned")

    def __init__(self, report: bool) -> None:
        self.report = report
        self.warned = not report
        self.lines = 0
        self.dropped = 0

    def cut(self, lines: list[str], first_number: int) -> None:
        """Cut every line of ``lines`` (numbered from ``first_number``) to the bound."""
        limit = limits.MAX_LINE_CHARS
        for position, line in enumerate(lines):
            if len(line) > limit:
                self.count(first_number + position, len(line) - limit)
                lines[position] = line[:limit]

    def exceeded(self, number: int) -> None:
        """Line ``number`` is over the bound (said once, when it first happens: a source
        without line ends, like /dev/zero, never finishes its line)."""
        if not self.warned:
            self.warned = True
            log.warning(
                "line %d is longer than %d characters: the rest of it is ignored "
                "(a kernel console line is at most a few hundred)",
                number,
                limits.MAX_LINE_CHARS,
            )

    def count(self, number: int, dropped: int) -> None:
        self.exceeded(number)
        self.lines += 1
        self.dropped += dropped

    def finish(self) -> None:
        if self.lines > 1 and self.report:
            log.warning(
                "%d lines were longer than %d characters; %d characters of them were ignored",
                self.lines,
                limits.MAX_LINE_CHARS,
                self.dropped,
            )


def _iter_items(source: Iterable[Any], cuts: _LineCuts) -> Iterator[list[str]]:
    number = 0
    for item in source:
        # An iterable of lines: each item is one line (its terminator, if any, is dropped);
        # an item holding several lines is split.
        text = item if isinstance(item, str) else bytes(item).decode("utf-8", "replace")
        if text.endswith("\n"):
            text = text[:-1]
        lines = _split_block(text) if "\n" in text or "\r" in text else [text]
        if len(text) > limits.MAX_LINE_CHARS:
            cuts.cut(lines, number + 1)
        number += len(lines)
        yield lines
    cuts.finish()


def _split_block(text: str) -> list[str]:
    """Lines of ``text``, which holds whole lines without the last one's terminator."""
    if "\r" not in text:
        return text.split("\n")
    # A CR before LF is part of the line end and so is a CR ending the text (the first half
    # of a CRLF cut by the block, or the last line's own); every other CR ends a line.
    if text.endswith("\r"):
        text = text[:-1]
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _iter_blocks(stream: Any, cuts: _LineCuts) -> Iterator[list[str]]:
    # Blocks of BLOCK_SIZE: bytes go through an incremental UTF-8 decoder (a character split
    # between two blocks stays whole; invalid bytes become U+FFFD). The line cut by the end of
    # a block waits in ``pending``, at most MAX_LINE_CHARS of it: beyond, it is only counted.
    # A CR ending a block waits too: it may be the first half of a CRLF.
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending: list[str] = []
    pending_chars = 0
    dropped = 0  # characters of the pending line beyond the bound
    number = 0  # lines yielded so far
    carried_cr = ""
    while True:
        block = stream.read(BLOCK_SIZE)
        if block is None:  # a stream in non-blocking mode with nothing to read yet
            select.select([stream], [], [])
            continue
        if not block:
            break
        text = block if isinstance(block, str) else decoder.decode(block)
        if carried_cr:
            text = carried_cr + text
            carried_cr = ""
        if text.endswith("\r"):
            text, carried_cr = text[:-1], "\r"
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut < 0:
            # No line end: all of the block continues the pending line.
            room = limits.MAX_LINE_CHARS - pending_chars
            if room > 0:
                pending.append(text[:room])
                pending_chars += min(room, len(text))
            if len(text) > room:
                dropped += len(text) - max(room, 0)
                cuts.exceeded(number + 1)
            continue
        # A lone CR ends the head with itself: _split_block drops one final CR (the CR of a
        # CRLF), and the CR before it, if any, is a line end of its own.
        lines = _split_block(text[: cut + 1] if text[cut] == "\r" else text[:cut])
        if pending:
            pending.append(lines[0])
            lines[0] = "".join(pending)
            pending.clear()
        if len(lines[0]) > limits.MAX_LINE_CHARS or dropped:
            cuts.count(number + 1, dropped + max(len(lines[0]) - limits.MAX_LINE_CHARS, 0))
            lines[0] = lines[0][: limits.MAX_LINE_CHARS]
        dropped = 0
        if cut > limits.MAX_LINE_CHARS and max(map(len, lines)) > limits.MAX_LINE_CHARS:
            cuts.cut(lines, number + 1)
        number += len(lines)
        yield lines
        rest = text[cut + 1 :]
        if rest:
            pending.append(rest[: limits.MAX_LINE_CHARS])
            pending_chars = min(len(rest), limits.MAX_LINE_CHARS)
            dropped = max(len(rest) - limits.MAX_LINE_CHARS, 0)
        else:
            pending_chars = 0
    tail = "".join(pending) + decoder.decode(b"", final=True) + carried_cr
    if tail:
        lines = _split_block(tail)
        if dropped:
            cuts.count(number + 1, dropped + max(len(lines[0]) - limits.MAX_LINE_CHARS, 0))
            lines[0] = lines[0][: limits.MAX_LINE_CHARS]
        cuts.cut(lines, number + 1)
        yield lines
    cuts.finish()


# --- prefixes ------------------------------------------------------------------------------

# printk timestamp and caller id: "[   12.345678]", "[   12.345678][  T123]", "[  T123]"
# (kernel/printk/printk.c print_time / print_caller, 6.1). The separator space is dropped.
CONSOLE_PREFIX = re.compile(
    r"(?:<(?P<level>\d{1,2})>)?"
    r"(?:\[\s*(?P<ts>\d+\.\d+)\]|\[(?P<wall>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d [\d:]{8} \d{4})\])"
    r"(?:\[\s*(?P<caller>[TC]\d+)\])? ?"
)
_CALLER_ONLY = re.compile(r"(?:<(?P<level>\d{1,2})>)?\[\s*(?P<caller>[TC]\d+)\] ?")
_LEVEL_ONLY = re.compile(r"<(?P<level>\d{1,2})>")
_TIMESTAMP_ANYWHERE = re.compile(r"\[\s*\d+\.\d+\]")
# syslog / journald: "Jan  2 03:04:05 host kernel: ", "2024-01-02T03:04:05.123+0000 host
# kernel: ", "Sep 23 02:31:17 host kern.err kernel: "; the program decides kernel vs foreign.
_SYSLOG = re.compile(
    r"(?:[A-Za-z]{3} [ \d]\d [\d:]{8}(?:\.\d+)?|\d{4}-\d\d-\d\d[T ][\d:]{8}(?:[.,]\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d)?) \S+ (?:[a-z]+\.[a-z]+ )?(?P<program>[^\s:\[]+)(?:\[\d+\])?: ?",
    re.IGNORECASE,
)
# dmesg -x: "kern  :warn  : " before the timestamp.
_DMESG_X = re.compile(r"[a-z]{2,8}\s*:[a-z]{3,6}\s*: ")
# Mail quoting: ">" followed by a space, another ">" or the line end ("> > ", ">> "); a ">"
# glued to other text (KASAN's ">ffff888012345678: fc fc" marker row) is not quoting.
_MAIL_QUOTE = re.compile(r"(?:>(?=[ >]|$) ?)+")
_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|[()][A-Z0-9]|[A-Za-z])")


_new_tuple = tuple.__new__  # LogLine without the NamedTuple __new__ wrapper: once per line
# CONSOLE_PREFIX's most common form alone: a timestamp, no level, no wall clock.
_PLAIN_STAMP = re.compile(r"\[\s*(\d+\.\d+)\] ?")


class PrefixSplitter:
    """Splits lines into prefix facts and message text; remembers whether the log has
    timestamps, which decides whether an unprefixed line is foreign."""

    __slots__ = ("seen_timestamps",)

    def __init__(self) -> None:
        self.seen_timestamps = False

    def split(self, number: int, raw: str) -> LogLine:
        # Fast path: the common serial/dmesg line "[   12.345678] text", by a short expression
        # (this runs for every line); a caller id after it ("[  T123]") takes the full one.
        stamp = _PLAIN_STAMP.match(raw)
        if stamp is not None:
            end = stamp.end()
            if raw[end : end + 1] != "[":
                self.seen_timestamps = True
                return _new_tuple(LogLine, (number, raw[end:], stamp[1], None, None, False, False))
            match = CONSOLE_PREFIX.match(raw)
            if match is not None:
                self.seen_timestamps = True
                _, timestamp, wall, caller = match.groups()  # positional: cheaper than names
                return _new_tuple(
                    LogLine,
                    (number, raw[match.end() :], timestamp or wall, caller, None, False, False),
                )
        return self._split_slow(number, raw)

    def _split_slow(self, number: int, raw: str) -> LogLine:
        # Each prefix form is tried only when the first characters allow it: most lines that
        # get here are plain text (pasted oopses, user-space output).
        text = raw
        if "\x1b" in text:
            text = _ANSI.sub("", text)
        if text.startswith(">"):
            quote = _MAIL_QUOTE.match(text)
            if quote is not None and quote.end() > 0:
                text = text[quote.end() :]
        if (text[3:4] == " " and text[9:10] == ":") or (text[4:5] == "-" and text[7:8] == "-"):
            syslog = _SYSLOG.match(text)
            if syslog is not None:
                if syslog["program"].lower() != "kernel":
                    return LogLine(number, text, None, None, None, True)
                text = text[syslog.end() :]
                if not text.startswith(("[", "<")):
                    # journald/syslog drop the printk timestamp: the syslog prefix marks the line.
                    return LogLine(number, text, None, None, None)
        elif text[6:7] == ":":
            dmesg_x = _DMESG_X.match(text)
            if dmesg_x is not None:
                text = text[dmesg_x.end() :]
        first = text[:1]
        if first in ("[", "<"):
            match = CONSOLE_PREFIX.match(text)
            if match is not None:
                self.seen_timestamps = True
                level = int(match["level"]) if match["level"] else None
                return LogLine(
                    number,
                    text[match.end() :],
                    match["ts"] or match["wall"],
                    match["caller"],
                    level,
                )
            caller = _CALLER_ONLY.match(text)
            if caller is not None:
                level = int(caller["level"]) if caller["level"] else None
                return LogLine(number, text[caller.end() :], None, caller["caller"], level)
            level_match = _LEVEL_ONLY.match(text)
            if level_match is not None:
                return LogLine(number, text[level_match.end() :], None, None, int(level_match[1]))
        if "] " in text or "][" in text:
            # Other output glued in front of a kernel line: the timestamp starts the message.
            anywhere = _TIMESTAMP_ANYWHERE.search(text)
            if anywhere is not None:
                match = CONSOLE_PREFIX.match(text, anywhere.start())
                if match is not None:
                    self.seen_timestamps = True
                    return LogLine(number, text[match.end() :], match["ts"], match["caller"], None)
        return LogLine(number, text, None, None, None, False, self.seen_timestamps)


# A second kernel message glued to the end of another one on the same physical line, when two
# CPUs print at once without a line break in between: "... 34359738352 bytes[   76.471107]
# BUG: unable to handle ...". printk timestamps always have six decimals.
_GLUED = re.compile(r"\[\s*\d+\.\d{6}\](?:\[\s*(?P<caller>[TC]\d+)\])? ?")


def split_glued(line: LogLine) -> tuple[LogLine, LogLine] | None:
    """Split a line holding two kernel messages; None for the usual single message."""
    text = line.text
    if "] " not in text:
        return None
    glued = _GLUED.search(text, 1)
    if glued is None or glued.start() == 0:
        return None
    first = LogLine(
        line.number,
        text[: glued.start()],
        line.timestamp,
        line.caller,
        line.level,
        line.foreign,
        line.bare,
    )
    second = LogLine(
        line.number,
        text[glued.end() :],
        None,
        glued["caller"] or line.caller,
        None,
        line.foreign,
        False,
    )
    return first, second


def iter_log_lines(source: LogSource) -> Iterator[LogLine]:
    """Numbered lines of ``source`` with their prefixes split off (glued messages apart)."""
    splitter = PrefixSplitter()
    for number, raw in enumerate(iter_physical_lines(source), start=1):
        line = splitter.split(number, raw)
        parts = split_glued(line)
        if parts is None:
            yield line
        else:
            yield from parts
