"""Grammar of the lines that carry code addresses: trace entries, IP lines, registers, Code:.

Functions take the kernel message text (prefixes already removed) and return plain field
tuples or None; the parser turns them into records, adding role, section and line number.
Formats, with the code that prints them (6.1 unless said otherwise):

- x86 trace entry ``" %s%pBb"``: `` ? name+0xOFF/0xSIZE [module buildid]``
  (arch/x86/kernel/dumpstack.c ``printk_stack_address``); before 4.9 with the raw address
  first: `` [<ffffffff81234567>] ? name+0xOFF/0xSIZE``.
- arm64 ``" %pSb"`` (arch/arm64/kernel/stacktrace.c ``dump_backtrace_entry``), since 6.13 with a
  source marker `` (P)`` (pc of a pt_regs), `` (L)`` (its lr), `` (T)`` (a blocked task's saved
  pc), `` (C)``, plus ``F``/``K`` flags for ftrace/kretprobe return trampolines.
- arm ``[<c010f3b0>] (unwind_backtrace) from [<c010ba58>] (show_stack+0x10/0x14)``: the frame
  is the ``from`` part, a return address (arch/arm/kernel/traps.c ``dump_backtrace_entry``).
- powerpc ``[c000000049a87710] [c0000000000286fc] name+0xOFF/0xSIZE (unreliable)``: stack
  pointer, then the saved LR (arch/powerpc/kernel/process.c ``show_stack``).
- s390 ``([<000000000011d6b8>] show_trace+0x130/0x134)``: parenthesized entries come from a
  register, not the stack chain.
- already-symbolized text: ``name+0xOFF/0xSIZE file.c:123`` and ``name file.c:123 [inline]``
  (syzkaller), ``name+0xOFF/0xSIZE (file.c:123)`` and ``name (file.c:123)``
  (scripts/decode_stacktrace.sh output).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ltosyms.limits import MAX_DECIMAL_DIGITS
from ltosyms.oops.records import CodeBytes, SourceAnnotation
from ltosyms.oops.remembered import remembered_texts

# Symbol names: C identifiers plus the characters compilers and the kernel add (".cold",
# ".llvm.123", "$x" in some arches, C++ "_Z..." and "~").
_SYMBOL = r"[\w.$@~]+"
_HEX = r"[0-9a-fA-F]+"
_CORE = rf"(?P<symbol>{_SYMBOL})\+0x(?P<offset>{_HEX})(?:/0x(?P<size>{_HEX}))?"
# What may follow name+off/size: "[module]" or "[module buildid]", an arm64 source marker,
# a source annotation, "[inline]", powerpc "(unreliable)".
_TAIL = re.compile(
    r"(?:\s+\[(?P<module>[\w.-]+)(?:\s+(?P<build_id>[0-9a-f]{16,64}))?\])?"
    r"(?:\s+\((?P<marker>[A-Z]{1,3})\))?"
    r"(?:\s+\((?P<pfile>[^\s():]+):(?P<pline>\d+)(?::(?P<pcol>\d+))?"
    r"(?:\s*\(discriminator \d+\))?(?:\s+[^\s():]+:\d+(?::\d+)?)*\)"
    r"|\s+(?P<file>[\w.+/-]*\.[A-Za-z]{1,4}|\?\?):(?P<fline>\d+)(?::(?P<fcol>\d+))?)?"
    r"(?P<inline>\s+\[inline\])?"
    r"(?P<unreliable>\s+\(unreliable\))?"
    r"\s*$"
)
_CORE_RE = re.compile(_CORE)
_RAW_ADDRESS = re.compile(rf"0x(?P<raw>{_HEX})(?P<unreliable>\s+\(unreliable\))?\s*$")
_LEADING_ADDRESS = re.compile(rf"\[<(?P<address>{_HEX})>\]\s*")
_POWERPC = re.compile(r"\[(?P<sp>[0-9a-f]{8,16})\] \[(?P<address>[0-9a-f]{8,16})\] ")
_ARM_FROM = re.compile(
    rf"\[<(?P<where>{_HEX})>\] \((?P<callee>[^()\s]*)\) from \[<(?P<address>{_HEX})>\] "
    r"\((?P<inner>.*)\)\s*$"
)
_INLINE = re.compile(
    rf"(?P<symbol>{_SYMBOL})\s+(?P<file>[\w.+/-]*\.[A-Za-z]{{1,4}}):(?P<line>\d+)"
    rf"(?::(?P<col>\d+))?\s+\[inline\]\s*$"
)
_ANNOTATED = re.compile(
    rf"(?P<symbol>{_SYMBOL})\s+\((?P<file>[^\s():]+\.[A-Za-z]{{1,4}}):(?P<line>\d+)"
    rf"(?::(?P<col>\d+))?(?:\s*\(discriminator \d+\))?(?:\s+[^\s():]+:\d+(?::\d+)?)*\)\s*$"
)


class FrameText(NamedTuple):
    """The fields of one printed frame, before role, section and line number are known.

    (Intermediate values, not records: named tuples, cheap to make once per trace entry.)
    """

    symbol: str | None
    offset: int | None
    kallsyms_size: int | None
    module: str | None
    module_build_id: str | None
    runtime_address: int | None
    reliable: bool
    marker: str | None
    source: SourceAnnotation | None
    inline: bool


@remembered_texts(maxsize=4096)
def parse_symbolic(text: str) -> FrameText | None:
    """``name+0xOFF/0xSIZE`` with its optional tail, the whole of ``text``; None otherwise."""
    match = _CORE_RE.match(text)
    if match is None:
        return None
    tail = _TAIL.match(text, match.end())
    if tail is None:
        return None
    source: SourceAnnotation | None = None
    if tail["pfile"]:
        source = _annotation(tail["pfile"], tail["pline"], tail["pcol"])
    elif tail["file"]:
        source = _annotation(tail["file"], tail["fline"], tail["fcol"])
    size = match["size"]
    return FrameText(
        symbol=match["symbol"],
        offset=int(match["offset"], 16),
        kallsyms_size=int(size, 16) if size else None,
        module=tail["module"],
        module_build_id=tail["build_id"],
        runtime_address=None,
        reliable=tail["unreliable"] is None,
        marker=tail["marker"],
        source=source,
        inline=False,
    )


def decimal(digits: str) -> int | None:
    """A decimal number a kernel printed (CPU, PID, line number); None for a run of digits no
    kernel prints (more than a u64 holds; Python would refuse beyond 4,300 digits)."""
    return int(digits) if len(digits) <= MAX_DECIMAL_DIGITS else None


def _annotation(file: str, line: str, column: str | None) -> SourceAnnotation | None:
    number = decimal(line)
    if number is None:
        return None
    return SourceAnnotation(file=file, line=number, column=decimal(column) if column else None)


def parse_frame(text: str, *, in_trace: bool) -> FrameText | None:
    """Parse a trace-entry line (message text, leading spaces allowed).

    Symbolic entries are recognized anywhere. Forms that are too plain to be told from other
    output outside a stack walk (a bare ``0xffffffffc0123456``, ``name file.c:12 [inline]``,
    ``name (file.c:12)``) only count when ``in_trace``.
    """
    s = text.strip()
    if not s:
        return None
    reliable = True
    first = s[0]
    if first == "(" and s.endswith(")") and s.startswith("([<"):
        # s390: an entry taken from a register rather than the back chain.
        inner = parse_frame(s[1:-1], in_trace=in_trace)
        if inner is None:
            return None
        return inner._replace(reliable=False)
    if first == "?":
        reliable = False
        s = s[1:].lstrip()
    address: int | None = None
    if s.startswith("[<"):
        if " from [<" in s:
            return _parse_arm(s)
        lead = _LEADING_ADDRESS.match(s)
        if lead is None:
            return None
        address = int(lead["address"], 16)
        s = s[lead.end() :]
        if s.startswith("?"):
            reliable = False
            s = s[1:].lstrip()
        if not s and in_trace:
            return FrameText(None, None, None, None, None, address, reliable, None, None, False)
    elif first == "[":
        powerpc = _POWERPC.match(s)
        if powerpc is None:
            return None
        address = int(powerpc["address"], 16)
        s = s[powerpc.end() :]
    parsed = parse_symbolic(s)
    if parsed is not None:
        if address is None and reliable:
            return parsed
        return parsed._replace(runtime_address=address, reliable=reliable and parsed.reliable)
    if not in_trace:
        return None
    raw = _RAW_ADDRESS.match(s)
    if raw is not None:
        # An address with no symbol ("%pB" of code outside any symbol: BPF, freed modules).
        value = int(raw["raw"], 16)
        if raw["unreliable"]:
            reliable = False
        return FrameText(None, None, None, None, None, value, reliable, None, None, False)
    inline = _INLINE.match(s)
    if inline is not None:
        source = _annotation(inline["file"], inline["line"], inline["col"])
        return FrameText(
            inline["symbol"], None, None, None, None, address, reliable, None, source, True
        )
    annotated = _ANNOTATED.match(s)
    if annotated is not None:
        source = _annotation(annotated["file"], annotated["line"], annotated["col"])
        return FrameText(
            annotated["symbol"], None, None, None, None, address, reliable, None, source, False
        )
    return None


def _parse_arm(s: str) -> FrameText | None:
    match = _ARM_FROM.match(s)
    if match is None:
        return None
    address = int(match["address"], 16)
    inner = match["inner"].strip()
    parsed = parse_symbolic(inner)
    if parsed is not None:
        return _with_address(parsed, address)
    inline = _INLINE.match(inner)
    if inline is not None:
        source = _annotation(inline["file"], inline["line"], inline["col"])
        return FrameText(
            inline["symbol"], None, None, None, None, address, True, None, source, True
        )
    return FrameText(None, None, None, None, None, address, True, None, None, False)


# --- IP lines ------------------------------------------------------------------------------


class IpText(NamedTuple):
    """The fields of an IP line. ``frame`` is None for user-mode or unparsable IPs."""

    register: str
    segment: str | None
    user_mode: bool
    runtime_address: int | None
    frame: FrameText | None
    exact: bool  # pc/RIP: True; lr/LR/ra: False (a return address)


# x86 "RIP: %04x:%pS" (6.1 show_ip), with the raw address before 4.9:
# "RIP: 0010:[<ffffffff82d4e304>]  [<ffffffff82d4e304>] __memset+0x24/0x30"; the oops tail of
# old kernels "RIP  [<ffffffff82d4e304>] __memset+0x24/0x30"; 4.x "RIP: __memset+0x24/0x30
# RSP: ffff8801d9fdf270"; x86-32 "EIP: sym+off/size" and "EIP: 0060:[<c1234567>] EFLAGS: ...".
_X86_IP = re.compile(
    r"(?P<register>RIP|EIP|IP)(?::\s*|\s+)(?:(?P<segment>[0-9a-f]{4}):)?"
    r"(?:\[<(?P<address>[0-9a-f]+)>\]\s*)?(?P<rest>.*)$"
)
# arm64 "pc : %pS" / "lr : %pS" for kernel mode, "pc : %016llx" for user mode
# (arch/arm64/kernel/process.c __show_regs); riscv "epc : %pS" / " ra : %pS"; arm32 "PC is at
# %pS" / "LR is at %pS"; powerpc "NIP [%016lx] %pS" / "LR [%016lx] %pS"; s390 "Krnl PSW : mask
# addr (%pSR)".
_OTHER_IP = re.compile(
    r"(?:(?P<register>pc|lr|epc|ra)\s*:\s*|(?P<arm>PC|LR) is at\s+"
    r"|(?P<ppc>NIP|LR)\s+\[(?P<ppcaddr>[0-9a-f]+)\]\s+"
    r"|Krnl PSW\s*:\s*[0-9a-f]+\s+(?P<psw>[0-9a-f]+)\s+\()(?P<rest>.*?)\)?$"
)
_X86_TAIL = re.compile(r"\s+(?:RSP|ESP|SS:ESP|EFLAGS)[: ].*$")
_EXACT_REGISTERS = frozenset({"RIP", "EIP", "IP", "pc", "PC", "epc", "NIP", "PSW"})
# How IP lines start (after leading blanks): a cheap test before the regular expressions.
IP_LINE_STARTS = (
    "RIP",
    "EIP",
    "IP:",
    "IP ",
    "pc ",
    "pc:",
    "lr ",
    "lr:",
    "epc",
    "ra ",
    "ra:",
    "PC is",
    "LR is",
    "NIP",
    "LR ",
    "Krnl PSW",
)
_USER_SEGMENTS = frozenset({"0033", "0023", "002b", "0073", "007b"})


@remembered_texts(maxsize=4096)
def parse_ip(text: str) -> IpText | None:
    """Parse an IP line (message text with leading spaces allowed); None if it is not one."""
    s = text.strip()
    if not s:
        return None
    first = s[0]
    if first in "REI" and ("IP:" in s[:4] or s.startswith("RIP ")):
        return _parse_x86_ip(s)
    if first in "pleraPLNK":
        return _parse_other_ip(s)
    return None


def _parse_x86_ip(s: str) -> IpText | None:
    match = _X86_IP.match(s)
    if match is None:
        return None
    register = match["register"]
    segment = match["segment"]
    user_mode = segment in _USER_SEGMENTS
    address = int(match["address"], 16) if match["address"] else None
    rest = _X86_TAIL.sub("", match["rest"]).strip()
    if rest.startswith("[<"):
        lead = _LEADING_ADDRESS.match(rest)
        if lead is not None:
            address = int(lead["address"], 16)
            rest = rest[lead.end() :]
    if not rest and address is None:
        return None
    frame: FrameText | None = None
    raw = _RAW_ADDRESS.match(rest)
    if raw is not None:
        address = int(raw["raw"], 16)
        if not user_mode and address < 1 << 32 and register == "RIP":
            # A 64-bit kernel never runs below 4 GiB: this is a user address (segment lost).
            user_mode = True
        if not user_mode:
            frame = FrameText(None, None, None, None, None, address, True, None, None, False)
    elif rest:
        symbolic = _symbolic_or_inline(rest)
        if symbolic is None:
            return None
        if not user_mode:
            frame = _with_address(symbolic, address)
    elif not user_mode and address is not None:
        frame = FrameText(None, None, None, None, None, address, True, None, None, False)
    return IpText(register, segment, user_mode, address, frame, True)


def _parse_other_ip(s: str) -> IpText | None:
    match = _OTHER_IP.match(s)
    if match is None:
        return None
    register = match["register"] or match["arm"] or match["ppc"] or "PSW"
    address: int | None = None
    if match["ppcaddr"]:
        address = int(match["ppcaddr"], 16)
    elif match["psw"]:
        address = int(match["psw"], 16)
    rest = match["rest"].strip()
    exact = register in _EXACT_REGISTERS
    symbolic = _symbolic_or_inline(rest)
    if symbolic is not None:
        return IpText(register, None, False, address, _with_address(symbolic, address), exact)
    raw = re.fullmatch(r"(?:0x)?([0-9a-f]{8,16})", rest)
    if raw is None:
        return None
    value = int(raw[1], 16)
    if register in ("pc", "lr", "epc", "ra") and match["register"]:
        # arm64 and riscv print a raw pc/lr only for user mode; a kernel pc is "%pS". A raw
        # line among several registers ("epc : ffffffff80001234 ra : ... sp : ...") is a
        # register line, not an IP line.
        return IpText(register, None, True, value, None, exact)
    frame = FrameText(None, None, None, None, None, value, True, None, None, False)
    return IpText(register, None, False, value, frame, exact)


def _symbolic_or_inline(text: str) -> FrameText | None:
    # Symbolized logs print an IP's inline chain as several IP lines:
    # "RIP: 0010:[<ffffffff84352ab6>]  [<ffffffff84352ab6>] __list_del include/linux/list.h:89
    # [inline]" before the line of the function that holds the code.
    symbolic = parse_symbolic(text)
    if symbolic is not None:
        return symbolic
    inline = _INLINE.match(text)
    if inline is None:
        return None
    source = _annotation(inline["file"], inline["line"], inline["col"])
    return FrameText(inline["symbol"], None, None, None, None, None, True, None, source, True)


def _with_address(frame: FrameText, address: int | None) -> FrameText:
    return frame if address is None else frame._replace(runtime_address=address)


# --- registers -----------------------------------------------------------------------------


# "RAX: 0000000000000000 RBX: ...", "RSP: 0018:ff4da52cc040bd68 EFLAGS: 00000206",
# "FS:  000000002e7363c0(0000) GS:...", arm64 "x9 : 0000000000000001 x8 : ...", arm
# "pc : [<c0123456>]    lr : [<c0123456>]    psr: 60000013", riscv "status: ... cause: ...".
def _register_token(index: int) -> str:
    return (
        rf"(?P<n{index}>[A-Za-z][A-Za-z0-9_]{{0,11}})\s?:\s*(?:[0-9a-f]{{4}}:)?(?:\[<)?"
        rf"(?P<v{index}>[0-9a-fA-F]{{4,16}})(?:>\])?(?:\([0-9a-f]{{4}}\))?"
    )


# Up to six registers per line (x86 prints three, "CS: DS: ES: CR0:" four), read in one match.
_MAX_REGISTERS_PER_LINE = 6
_REGISTER_LINE = re.compile(
    _register_token(0)
    + "".join(rf"(?:\s+{_register_token(i)})?" for i in range(1, _MAX_REGISTERS_PER_LINE))
    + r"\s*"
)
_PSTATE = re.compile(r"pstate: (?P<value>[0-9a-f]{8,16}) \(")


@remembered_texts(maxsize=4096)
def parse_registers(text: str) -> tuple[tuple[str, int], ...] | None:
    """``(name, value)`` pairs of a register line, or None when ``text`` is not one."""
    s = text.strip()
    match = _REGISTER_LINE.fullmatch(s)
    if match is None:
        pstate = _PSTATE.match(s) if s.startswith("pstate") else None
        if pstate is None:
            return None
        return (("pstate", int(pstate["value"], 16)),)
    pairs = iter(match.groups())  # name, value, name, value...: a register line's pairs
    return tuple(
        [
            (name, int(value, 16))
            for name, value in zip(pairs, pairs, strict=True)
            if name is not None
        ]
    )


# --- Code: ---------------------------------------------------------------------------------

_NO_MARKERS = str.maketrans("", "", "<>()")
_CODE_UNAVAILABLE = re.compile(r"Unable to access opcode bytes at (?:0x)?(?P<address>[0-9a-f]+)")
# Tokens of one width, at most one of them marked: x86 "<0f>", arm64/arm/riscv "(d4210000)".
# Tokens are separated by ASCII blanks only: a Unicode space (U+2028 in a damaged capture) ends
# the readable part instead of passing into bytes.fromhex.
_CODE_BYTES = {
    width: re.compile(rf"(?:[<(]?[0-9a-fA-F]{{{width}}}[>)]?(?:[ \t]+|$))+") for width in (2, 4, 8)
}


def parse_code(text: str, number: int, arch: str | None) -> CodeBytes | None:
    """Parse a ``Code:`` line; ``arch`` is what the report's IP lines showed, if anything."""
    s = text.strip()
    if not s.startswith("Code:"):
        return None
    read = _read_code(s)
    if read is None:
        return None
    if read.unavailable:
        code_arch, token_size = arch or "unknown", 1
    else:
        code_arch, token_size = _code_arch(read.width, arch), read.width // 2
    return CodeBytes(
        line=number,
        raw_text=s,
        data=read.data,
        marker_offset=read.marker_offset,
        arch=code_arch,
        token_size=token_size,
        unavailable=read.unavailable,
        unavailable_address=read.unavailable_address,
    )


class _CodeRead(NamedTuple):
    """What a Code: line's text says, apart from where it is and which IP lines came before."""

    data: bytes
    marker_offset: int | None
    width: int  # hex digits of a token (0 when the kernel could not read the bytes)
    unavailable: bool
    unavailable_address: int | None


@remembered_texts(maxsize=1024)
def _read_code(s: str) -> _CodeRead | None:
    body = s[5:].strip()
    unavailable = _CODE_UNAVAILABLE.match(body)
    if unavailable is not None or body.lower().startswith(("bad rip value", "bad pc value")):
        address = int(unavailable["address"], 16) if unavailable is not None else None
        return _CodeRead(
            data=b"",
            marker_offset=None,
            width=0,
            unavailable=True,
            unavailable_address=address,
        )
    first_token = body.split(None, 1)[0] if body else ""
    width = len(first_token.strip("<>()"))
    pattern = _CODE_BYTES.get(width)
    if pattern is None:
        return None
    # A garbled or truncated line keeps the bytes read up to the first bad token.
    valid = pattern.match(body)
    if valid is None:
        return None
    tokens = valid.group()
    marker: int | None = None
    for bracket in "<(":
        position = tokens.find(bracket)
        if position >= 0 and (marker is None or position < marker):
            marker = position
    if marker is not None:
        marker = len(tokens[:marker].split()) * (width // 2)
    words = tokens.translate(_NO_MARKERS).split()
    if width == 2:
        data = bytes.fromhex("".join(words))
    else:
        data = b"".join(int(word, 16).to_bytes(width // 2, "little") for word in words)
    return _CodeRead(
        data=data, marker_offset=marker, width=width, unavailable=False, unavailable_address=None
    )


def _code_arch(width: int, arch: str | None) -> str:
    if width == 2:
        return arch if arch in ("x86_64", "i386") else "x86_64"
    if width == 8:
        return arch if arch in ("aarch64", "arm", "riscv64") else "aarch64"
    return arch if arch in ("arm", "riscv64") else "unknown"
