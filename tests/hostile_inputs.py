"""Hostile inputs of issue 17, built from the sample images and the corpus, and a runner that
keeps the machine safe while ``ltosyms`` chews on them.

:data:`CASES` lists one or more cases per item of the issue. A case builds its files in a
scratch folder and returns the command to run (:class:`Command`); :func:`run_bounded` runs it
in a child process with an address-space limit, kills it when its resident memory or its time
goes over a limit, and reports the exit code, peak RSS (the child's own high-water mark),
seconds and the first line of stderr. ``tools/hostile_cases.py`` prints the table of every case;
``tests/test_hostile.py`` asserts the README's answer for each.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import lzma
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from leb128 import uleb

PROJECT = Path(__file__).resolve().parent.parent
SAMPLES = PROJECT / "testdata" / "vmlinux-samples"
SAMPLE_VMLINUX = SAMPLES / "vmlinux-gcc"
SAMPLE_MODULE = SAMPLES / "sample_mod-gcc.ko"

GIB = 1 << 30
MIB = 1 << 20

# -- running a command with its resources bounded ----------------------------------------------


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None  # None: killed by us
    killed: str | None  # why it was killed: "time" or "memory"
    peak_rss: int  # bytes: the child's VmHWM at exit, or the most we sampled (its workers too)
    seconds: float
    stderr: str
    stdout: bytes  # empty unless asked for

    @property
    def first_stderr_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[0] if lines else ""

    def describe(self) -> str:
        if self.killed is not None:
            return f"killed ({self.killed})"
        return str(self.exit_code)


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants (``index --jobs`` forks workers)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += _status_kib(current, "VmRSS:") * 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue
    return total


# The child limits its own address space before it runs ``python -m ltosyms`` (a preexec_fn
# would do it in the fork, which is unsafe while this process runs server threads), and says
# its peak RSS when it ends: VmHWM, the high-water mark of its own memory since exec. (Its
# rusage ru_maxrss would not do: Linux carries the forking parent's peak across exec, and a
# test process may be larger than any child.)
_BOOTSTRAP = """
import os, resource, runpy, sys
resource.setrlimit(resource.RLIMIT_AS, ({0}, {0}))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
sys.argv[0] = "ltosyms"
try:
    runpy.run_module("ltosyms", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status, open({1!r}, "w") as peak:
        peak.write(next(line for line in status if line.startswith("VmHWM:")))
"""


def run_bounded(
    arguments: list[str],
    *,
    env: dict[str, str] | None = None,
    stdin: Path | None = None,
    time_limit: float = 60.0,
    rss_limit: int = 3 * GIB,
    address_space: int = 4 * GIB,
    keep_stdout: bool = False,
    cwd: Path | None = None,
    code: Path | None = None,
) -> Outcome:
    """Run ``python -m ltosyms ARGUMENTS`` in its own session; SIGKILL it (and its workers)
    when its memory passes ``rss_limit`` or its time ``time_limit``. ``address_space`` is set
    as RLIMIT_AS in the child, so even an allocation we do not see in time fails there.
    ``code`` is the folder holding the ``ltosyms`` package to run (default: this project;
    ``$LTOSYMS_HOSTILE_CODE`` overrides it, e.g. an export of another branch)."""

    environment = {**os.environ, **(env or {})}
    # -S: no site hooks, so an editable install of this project cannot shadow ``code``; the
    # dependencies come from this interpreter's site-packages, named explicitly.
    import site

    code = code or Path(os.environ.get("LTOSYMS_HOSTILE_CODE") or PROJECT)
    environment["PYTHONPATH"] = os.pathsep.join([str(code), *site.getsitepackages()])
    with contextlib.ExitStack() as stack:
        stdin_file = stack.enter_context(open(stdin, "rb")) if stdin else subprocess.DEVNULL
        stdout_file = stack.enter_context(_scratch_file()) if keep_stdout else subprocess.DEVNULL
        stderr_file = stack.enter_context(_scratch_file())
        peak_file = stack.enter_context(tempfile.NamedTemporaryFile("r", suffix=".peak"))
        started = time.monotonic()
        # Popen returns once the child has exec'd: every sample below is of its own memory.
        process = subprocess.Popen(
            [
                *(sys.executable, "-S", "-c"),
                _BOOTSTRAP.format(address_space, peak_file.name),
                *arguments,
            ],
            stdin=stdin_file,
            stdout=stdout_file,
            stderr=stderr_file,
            env=environment,
            # Not the project folder: ``-m`` puts the working directory first on sys.path.
            cwd=cwd or tempfile.gettempdir(),
            start_new_session=True,
        )
        killed = None
        sampled = 0
        while True:
            pid, status, _usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            rss = _tree_rss(process.pid)
            with contextlib.suppress(OSError, ValueError):
                rss = max(rss, _status_kib(process.pid, "VmHWM:") * 1024)
            sampled = max(sampled, rss)
            elapsed = time.monotonic() - started
            if rss > rss_limit or elapsed > time_limit:
                killed = "memory" if rss > rss_limit else "time"
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                _pid, status, _usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # workers left behind by a killed parent
        stderr_file.seek(0)
        stderr = stderr_file.read().decode("utf-8", "replace")
        stdout = b""
        if keep_stdout:
            stdout_file.seek(0)
            stdout = stdout_file.read()
        reported = peak_file.read().split()
    exit_code = None if killed else process.returncode
    peak = max(int(reported[1]) * 1024 if len(reported) > 1 else 0, sampled)
    return Outcome(exit_code, killed, peak, seconds, stderr, stdout)


def _scratch_file() -> contextlib.AbstractContextManager[object]:
    return tempfile.TemporaryFile()


# -- ELF surgery ---------------------------------------------------------------------------------

_SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym
_CHDR = struct.Struct("<IIQQ")  # Elf64_Chdr
SHF_COMPRESSED = 0x800


@dataclass
class Section:
    index: int
    name: str
    header_at: int  # file offset of its section header
    type: int
    flags: int
    offset: int
    size: int
    link: int


def sections(data: bytes) -> dict[str, Section]:
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    rows = [_SHDR.unpack_from(data, shoff + i * _SHDR.size) for i in range(shnum)]
    names_at = rows[shstrndx][4]
    found = {}
    for index, row in enumerate(rows):
        start = names_at + row[0]
        name = data[start : data.index(b"\0", start)].decode()
        found[name] = Section(
            index=index,
            name=name,
            header_at=shoff + index * _SHDR.size,
            type=row[1],
            flags=row[2],
            offset=row[4],
            size=row[5],
            link=row[6],
        )
    return found


def replace_sections(
    data: bytes, contents: dict[str, bytes], *, flags: dict[str, int] | None = None
) -> bytes:
    """``data`` with the named sections' bytes replaced: new bytes go to the end of the file
    and the section headers point there (sh_offset, sh_size, and sh_flags when given)."""
    out = bytearray(data)
    found = sections(data)
    for name, content in contents.items():
        section = found[name]
        out += bytes(-len(out) % 16)
        offset = len(out)
        out += content
        new_flags = (flags or {}).get(name, section.flags)
        struct.pack_into("<Q", out, section.header_at + 8, new_flags)
        struct.pack_into("<QQ", out, section.header_at + 24, offset, len(content))
    return bytes(out)


@dataclass(frozen=True)
class ElfSymbol:
    index: int
    name: str
    value: int
    size: int
    info: int
    shndx: int


def symbols(data: bytes) -> list[ElfSymbol]:
    found = sections(data)
    symtab = found[".symtab"]
    strtab = next(s for s in found.values() if s.index == symtab.link)
    result = []
    for index in range(symtab.size // _SYM.size):
        name_at, info, _other, shndx, value, size = _SYM.unpack_from(
            data, symtab.offset + index * _SYM.size
        )
        start = strtab.offset + name_at
        name = data[start : data.index(b"\0", start)].decode("utf-8", "replace")
        result.append(ElfSymbol(index, name, value, size, info, shndx))
    return result


def patch_symbol(data: bytearray, index: int, *, value: int | None = None, size: int | None = None):
    symtab = sections(bytes(data))[".symtab"]
    at = symtab.offset + index * _SYM.size
    if value is not None:
        struct.pack_into("<Q", data, at + 8, value)
    if size is not None:
        struct.pack_into("<Q", data, at + 16, size)


def build_id(data: bytes) -> str:
    for section in sections(data).values():
        if not section.name.startswith(".note"):
            continue
        blob = data[section.offset : section.offset + section.size]
        at = 0
        while at + 12 <= len(blob):
            namesz, descsz, kind = struct.unpack_from("<III", blob, at)
            at += 12
            name = blob[at : at + namesz]
            at += (namesz + 3) & ~3
            desc = blob[at : at + descsz]
            at += (descsz + 3) & ~3
            if kind == 3 and name.rstrip(b"\0") == b"GNU":
                return desc.hex()
    raise ValueError("no build id")


def with_build_id(data: bytes, wanted: str) -> bytes:
    """``data`` with its GNU build id bytes replaced by ``wanted`` (same length)."""
    current = bytes.fromhex(build_id(data))
    replacement = bytes.fromhex(wanted)
    assert len(current) == len(replacement) and data.count(current) == 1
    return data.replace(current, replacement)


# -- what a log says about a sample image --------------------------------------------------------


def function_frames(vmlinux: Path, count: int = 2) -> list[tuple[str, int]]:
    """Functions of ``vmlinux`` with the size an oops prints for them (from ltosyms' own
    kallsyms sizes: the cases need a frame that fits, not an oracle)."""
    from ltosyms.elf.image import open_image
    from ltosyms.elf.symtab import SymbolTable

    with open_image(vmlinux) as image:
        table = SymbolTable(image)
        found = []
        for symbol in table:
            if symbol.is_function and symbol.elf_size > 16 and symbol.kallsyms_size:
                found.append((symbol.name, symbol.kallsyms_size))
            if len(found) == count:
                return found
    raise ValueError(f"{vmlinux}: fewer than {count} functions")


def sample_oops(vmlinux: Path, *, with_build_id: bool = True) -> str:
    """An oops as 6.1 prints it for a function of the sample image."""
    (first, first_size), (second, second_size) = function_frames(vmlinux)
    identity = f" {build_id(vmlinux.read_bytes())}" if with_build_id else ""
    return (
        "BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
        f"CPU: 1 PID: 42 Comm: sh Not tainted 6.1.0-sample #1{identity}\n"
        f"RIP: 0010:{first}+0x4/{first_size:#x}\n"
        "Call Trace:\n"
        " <TASK>\n"
        f" {second}+0x8/{second_size:#x}\n"
        " </TASK>\n"
    )


# -- the cases -------------------------------------------------------------------------------


@dataclass
class Command:
    arguments: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: Path | None = None
    # Run beside the command while it runs (a server, a FIFO writer); stopped afterwards.
    helper: contextlib.AbstractContextManager[object] | None = None
    # Looks at the scratch folder after the run: a note for the table ("" when all is well).
    check: Callable[[Outcome], str] | None = None


@dataclass(frozen=True)
class Case:
    item: int
    name: str
    expect: str  # what the README promises: an exit code, or "endless" for endless inputs
    build: Callable[[Path], Command]
    part: int  # 1: fixed in this branch; 2: left for part 2
    slow: bool = False
    endless: bool = False  # an endless source: success is running in bounded memory
    needs_corpus: bool = False  # built from the corpus' logs or kernels


CACHE_ENV = ("LTOSYMS_CACHE_DIR", "XDG_CACHE_HOME", "DEBUGINFOD_CACHE_PATH")


def quiet_env(work: Path) -> dict[str, str]:
    """Caches inside the scratch folder; no debuginfod server unless a case names one."""
    return {
        "LTOSYMS_CACHE_DIR": str(work / "ltosyms-cache"),
        "XDG_CACHE_HOME": str(work / "xdg-cache"),
        "DEBUGINFOD_CACHE_PATH": str(work / "debuginfod-cache"),
        "DEBUGINFOD_URLS": "",
    }


def _sample_log(work: Path, vmlinux: Path = SAMPLE_VMLINUX) -> Path:
    log = work / "oops.log"
    log.write_text(sample_oops(vmlinux))
    return log


# item 1: .strtab names that run on for megabytes


def _long_names(work: Path, extra_symbols: int = 0) -> Path:
    """Every symbol's name starts at its own offset in a 16 MB run without a NUL: each name
    runs to the end of the section (the issue's "names tens of MB long", "name offsets that
    make every name run to the end"). ``extra_symbols`` more function symbols like that are
    added, as a kernel-sized table has (a vmlinux has ~120,000)."""
    data = SAMPLE_VMLINUX.read_bytes()
    table = sections(data)
    symtab = table[".symtab"]
    strtab = next(s for s in table.values() if s.index == symtab.link)
    original = data[strtab.offset : strtab.offset + strtab.size]
    region = len(original)
    rows = bytearray(data[symtab.offset : symtab.offset + symtab.size])
    function = next(s for s in symbols(data) if s.info & 0xF == 2)
    template = rows[function.index * _SYM.size : (function.index + 1) * _SYM.size]
    rows += template * extra_symbols
    for index in range(1, len(rows) // _SYM.size):
        struct.pack_into("<I", rows, index * _SYM.size, region + index * 7)
    new_strtab = original + b"A" * (16 * MIB) + b"\0"
    out = replace_sections(data, {strtab.name: new_strtab, ".symtab": bytes(rows)})
    path = work / f"vmlinux-long-names-{extra_symbols}"
    path.write_bytes(out)
    return path


def _strtab_case(command: str, extra_symbols: int = 100_000) -> Callable[[Path], Command]:
    def build(work: Path) -> Command:
        vmlinux = _long_names(work, extra_symbols)
        if command == "syms":
            return Command(["syms", str(vmlinux)], quiet_env(work))
        if command == "symbolize":
            return Command(["symbolize", str(vmlinux), "0xffffffff81000010"], quiet_env(work))
        if command == "index":
            return Command(["index", str(vmlinux), "--cache-dir", str(work / "c")], quiet_env(work))
        log = _sample_log(work)
        return Command(["decode", str(vmlinux), str(log)], quiet_env(work))

    return build


# item 2: compression bombs in debug sections


def _zlib_zeros(size: int, prefix: bytes = b"") -> bytes:
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(prefix)]
    block = bytes(64 * MIB)
    remaining = size
    while remaining:
        step = min(remaining, len(block))
        parts.append(compressor.compress(block[:step]))
        remaining -= step
    parts.append(compressor.flush())
    return b"".join(parts)


def _compressed_section(section: str, claim: str):
    """``huge``: the header claims 3 GB and the stream gives them; ``small``: the header
    claims the section's real size, the stream goes on for 3 GB more."""

    def build(work: Path) -> Command:
        data = SAMPLE_VMLINUX.read_bytes()
        original = sections(data)[section]
        contents = data[original.offset : original.offset + original.size]
        stream = _zlib_zeros(3 * GIB, contents)
        size = 3 * GIB + len(contents) if claim == "huge" else len(contents)
        blob = _CHDR.pack(1, 0, size, 1) + stream  # ELFCOMPRESS_ZLIB
        damaged = replace_sections(
            data, {section: blob}, flags={section: original.flags | SHF_COMPRESSED}
        )
        vmlinux = work / f"vmlinux-bomb{section.replace('.', '-')}"
        vmlinux.write_bytes(damaged)
        log = _sample_log(work)
        return Command(["decode", "--no-cache", str(vmlinux), str(log)], quiet_env(work))

    return build


# item 3: deeply nested DWARF


def deep_dwarf_image(work: Path, depth: int = 100_000) -> tuple[Path, Path]:
    """The sample vmlinux whose DWARF is one unit: a function with ``depth`` nested
    DW_TAG_inlined_subroutine entries covering its code (DWARF 5, sections 7.5, 6.1.2)."""
    data = SAMPLE_VMLINUX.read_bytes()
    (function, function_size), _ = function_frames(SAMPLE_VMLINUX)
    symbol = next(s for s in symbols(data) if s.name == function)
    low, length = symbol.value, max(symbol.size, 16)
    # abbrev code, tag, children, (attribute, form)...
    abbrevs = [
        (1, 0x11, 1, [(0x03, 0x08), (0x11, 0x01), (0x12, 0x07), (0x10, 0x17), (0x13, 0x05)]),
        (2, 0x2E, 0, [(0x03, 0x08), (0x20, 0x0B)]),  # abstract subprogram, DW_AT_inline
        (3, 0x2E, 1, [(0x03, 0x08), (0x11, 0x01), (0x12, 0x07)]),  # concrete subprogram
        # inlined_subroutine: abstract_origin ref4, low_pc, high_pc, call_file, call_line
        (4, 0x1D, 1, [(0x31, 0x13), (0x11, 0x01), (0x12, 0x07), (0x58, 0x0B), (0x59, 0x05)]),
    ]
    abbrev = bytearray()
    for code, tag, children, attributes in abbrevs:
        abbrev += uleb(code) + uleb(tag) + bytes([children])
        for attribute, form in attributes:
            abbrev += uleb(attribute) + uleb(form)
        abbrev += b"\0\0"
    abbrev += b"\0"
    body = bytearray()
    body += b"\x01" + b"deep.c\0" + struct.pack("<QQIH", low, length, 0, 0x1D)
    abstract_at = 12 + len(body)  # CU-relative offset (the v5 unit header is 12 bytes)
    body += b"\x02" + b"deep_inline\0" + b"\x03"
    body += b"\x03" + function.encode() + b"\0" + struct.pack("<QQ", low, length)
    nested = b"\x04" + struct.pack("<IQQBH", abstract_at, low, length, 1, 7)
    body += nested * depth
    body += b"\0" * (depth + 2)  # close every inlined entry, the function and the unit
    unit = struct.pack("<HBBI", 5, 1, 8, 0) + bytes(body)  # version, DW_UT_compile, addr, abbrev
    info = struct.pack("<I", len(unit)) + unit
    aranges_body = (
        struct.pack("<HIBB", 2, 0, 8, 0) + bytes(4) + struct.pack("<QQQQ", low, length, 0, 0)
    )
    aranges = struct.pack("<I", len(aranges_body)) + aranges_body
    replaced = replace_sections(
        data, {".debug_info": info, ".debug_abbrev": bytes(abbrev), ".debug_aranges": aranges}
    )
    vmlinux = work / "vmlinux-deep-dwarf"
    vmlinux.write_bytes(replaced)
    # Every frame lands in the function: each one's inline chain is ``depth`` entries long.
    frames = "".join(
        f" {function}+{offset:#x}/{function_size:#x}\n" for offset in range(5, min(length, 14))
    )
    log = work / "deep.log"
    log.write_text(
        "BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
        f"RIP: 0010:{function}+0x4/{function_size:#x}\n"
        f"Call Trace:\n <TASK>\n{frames} </TASK>\n"
    )
    return vmlinux, log


def _deep_dwarf(work: Path) -> Command:
    vmlinux, log = deep_dwarf_image(work)
    return Command(["decode", "--no-cache", "--json", str(vmlinux), str(log)], quiet_env(work))


# item 4: endless and huge logs


def _endless(command: str, source: str, via_symlink: bool = False):
    def build(work: Path) -> Command:
        path = Path(source)
        if via_symlink:
            link = work / "console.log"
            link.symlink_to(source)
            path = link
        if command == "parse":
            return Command(["parse", str(path)], quiet_env(work))
        if command.startswith("symbolize"):  # queries on stdin (`symbolize --jobs 2`, too)
            arguments = [*command.split(), str(SAMPLE_VMLINUX)]
            return Command(arguments, quiet_env(work), stdin=path)
        return Command(["decode", str(SAMPLE_VMLINUX), str(path)], quiet_env(work))

    return build


def corpus_root() -> Path:
    return Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))


def corpus_kernel(variant: str) -> Path:
    script = corpus_root() / "kernels" / "get-vmlinux.sh"
    result = subprocess.run(
        ["sh", str(script), variant], capture_output=True, text=True, check=True, timeout=1800
    )
    return Path(result.stdout.strip().splitlines()[-1])


def _warning_report(log: Path) -> tuple[list[bytes], list[bytes]]:
    """The first WARNING report of a corpus console log: its lines up to ``<TASK>``, and the
    vmlinux frames of its trace."""
    lines = log.read_bytes().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if b"] WARNING: CPU:" in line)
    task = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(b"<TASK>"))
    end = next(i for i in range(task, len(lines)) if b"---[ end trace" in lines[i])
    frames = [line for line in lines[task + 1 : end] if b"+0x" in line and b"[lkdtm" not in line]
    return lines[start : task + 1], frames


def huge_log(work: Path, kind: str, size: int = 200 * MIB) -> Path:
    """``frames``: one report whose trace repeats the corpus' vmlinux frames to ``size``
    bytes; ``reports``: the whole report again and again; ``cr``: ``reports`` with every line
    ended by a lone CR (a capture taken with the wrong terminal settings)."""
    log = corpus_root() / "kernels" / "clang-thinlto" / "console.log"
    head, frames = _warning_report(log)
    lines = log.read_bytes().splitlines(keepends=True)
    start = lines.index(head[0])
    end = next(i for i in range(start, len(lines)) if b"---[ end trace" in lines[i])
    report = b"".join(lines[start : end + 1])
    path = work / f"huge-{kind}.log"
    with open(path, "wb") as out:
        if kind == "frames":
            out.write(b"".join(head))
            block = b"".join(frames) * 1000
        elif kind == "reports":
            block = report * 100
        else:
            block = report.replace(b"\n", b"\r") * 100
        written = 0
        while written < size:
            out.write(block)
            written += len(block)
    return path


def _huge(command: str, kind: str):
    def build(work: Path) -> Command:
        log = huge_log(work, kind)
        if command == "parse":
            return Command(["parse", str(log)], quiet_env(work))
        vmlinux = corpus_kernel("clang-thinlto")
        return Command(["decode", str(vmlinux), str(log)], quiet_env(work))

    return build


# item 5: compressed images that inflate to gigabytes


def _members(kind: str, total: int) -> bytes:
    """``total`` zero bytes as concatenated gzip members or xz streams (both formats allow
    it, and every decompressor reads them all): a few hundred KB on disk."""
    block = bytes(64 * MIB)
    one = gzip.compress(block, 9) if kind == "gz" else lzma.compress(block, preset=6)
    return one * (total // len(block))


def _bomb(name: str, *, elf_first: bool):
    def build(work: Path) -> Command:
        kind = name.rsplit(".", 1)[1]
        prefix = b""
        if elf_first:
            raw = SAMPLE_VMLINUX.read_bytes()
            prefix = gzip.compress(raw) if kind == "gz" else lzma.compress(raw)
        path = work / name
        path.write_bytes(prefix + _members(kind, 6 * GIB))
        return Command(["syms", str(path)], quiet_env(work))

    return build


# item 6 and 13: debuginfod


class _Server:
    """A loopback HTTP server thread answering every GET with ``respond``."""

    def __init__(self, respond: Callable[[http.server.BaseHTTPRequestHandler], None]) -> None:
        stop = threading.Event()
        self.stop = stop

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with contextlib.suppress(OSError):
                    respond(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> _Server:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def dripping_server(mode: str) -> _Server:
    """``body``: headers at once, then one byte of a 10 MB body every 0.2 s; ``headers``:
    the status line, then one header byte every 0.2 s, never done."""
    server: _Server

    def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        if mode == "body":
            handler.send_response(200)
            handler.send_header("Content-Length", str(10 * MIB))
            handler.end_headers()
            handler.wfile.flush()
            while not server.stop.wait(0.2):
                handler.wfile.write(b"\x7f")
                handler.wfile.flush()
        else:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
            handler.wfile.flush()
            while not server.stop.wait(0.2):
                handler.wfile.write(b"X")
                handler.wfile.flush()

    server = _Server(respond)
    return server


def file_server(payload: bytes) -> _Server:
    def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    return _Server(respond)


def _debuginfod_log(work: Path) -> Path:
    log = work / "oops.log"
    log.write_text(sample_oops(SAMPLE_VMLINUX))
    return log


def _slow_server(mode: str):
    def build(work: Path) -> Command:
        server = dripping_server(mode)
        log = _debuginfod_log(work)
        env = {**quiet_env(work), "DEBUGINFOD_TIMEOUT": "5", "DEBUGINFOD_MAXTIME": "10"}
        return Command(
            ["decode", "--no-cache", "--debuginfod", server.url, "--sysroot", str(work), str(log)],
            env,
            helper=server,
        )

    return build


def _environment(name: str, value: str):
    def build(work: Path) -> Command:
        log = _debuginfod_log(work)
        env = {**quiet_env(work), name: value}
        return Command(
            [
                *("decode", "--no-cache", "--debuginfod", "http://127.0.0.1:9"),
                *("--sysroot", str(work), str(log)),
            ],
            env,
        )

    return build


# item 7: symlinks planted in the caches


def _lock_symlink(work: Path) -> Command:
    cache = work / "ltosyms-cache"
    cache.mkdir()
    key = build_id(SAMPLE_VMLINUX.read_bytes())
    target = work / "outside" / "created-through-the-lock"
    target.parent.mkdir()
    from ltosyms.index.store import index_file_name

    (cache / f"{index_file_name(key)}.lock").symlink_to(target)
    name, _size = function_frames(SAMPLE_VMLINUX)[0]

    def check(outcome: Outcome) -> str:
        return "link target created outside the cache" if target.exists() else ""

    return Command(["symbolize", str(SAMPLE_VMLINUX), f"{name}+0x4"], quiet_env(work), check=check)


def _debuginfod_dir_symlink(work: Path) -> Command:
    payload = SAMPLE_VMLINUX.read_bytes()
    server = file_server(payload)
    env = quiet_env(work)
    cache = Path(env["DEBUGINFOD_CACHE_PATH"])
    cache.mkdir(mode=0o700)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    (cache / build_id(payload)).symlink_to(elsewhere)
    log = _debuginfod_log(work)

    def check(outcome: Outcome) -> str:
        landed = sorted(p.name for p in elsewhere.iterdir())
        return f"download landed outside the cache: {landed}" if landed else ""

    return Command(
        ["decode", "--no-cache", "--debuginfod", server.url, "--sysroot", str(work), str(log)],
        env,
        helper=server,
        check=check,
    )


# item 8: a damaged symbol table file in the index


def _index(work: Path, vmlinux: Path = SAMPLE_VMLINUX) -> Path:
    cache = work / "ltosyms-cache"
    outcome = run_bounded(["index", str(vmlinux), "--cache-dir", str(cache)], env=quiet_env(work))
    assert outcome.exit_code == 0, outcome.stderr
    return cache


def _table_columns(path: Path) -> tuple[bytearray, dict[str, tuple[int, int]]]:
    """A stored symbol table file and where each column lies in it (file offsets): a magic
    line, a header line, then the table as ltosyms.index.codecs packs it (a header, the
    column lengths, the columns 8-byte aligned, in SYMBOL_COLUMNS order)."""
    from ltosyms.index.codecs import SYMBOL_COLUMNS

    data = bytearray(path.read_bytes())
    magic = b"ltosyms-table-2\n"
    assert data.startswith(magic)
    (size,) = struct.unpack_from("<I", data, len(magic))
    start = len(magic) + 4 + size
    start += -start % 8
    (header_size,) = struct.unpack_from("<I", data, start)
    start += 4 + header_size
    (count,) = struct.unpack_from("<I", data, start)
    lengths = struct.unpack_from(f"<{count}Q", data, start + 4)
    start += 4 + 8 * count
    start += -start % 8
    columns = {}
    for name, length in zip(SYMBOL_COLUMNS, lengths, strict=True):
        columns[name] = (start, length)
        start += length + -length % 8
    return data, columns


def _symbol_queries() -> list[str]:
    return [f"{name}+0x4" for name, _size in function_frames(SAMPLE_VMLINUX, 6)]


def _damaged_table(column: str):
    def build(work: Path) -> Command:
        cache = _index(work)
        (table,) = cache.glob("*.symbols-*.table")
        data, columns = _table_columns(table)
        offset, length = columns[column]
        if column == "name_order":
            # Every entry but the last (the one the loader checks) names no symbol.
            data[offset : offset + length - 4] = b"\xf0\xff\xff\x7f" * (length // 4 - 1)
        else:
            for at in range(offset + 1, offset + length, 8):
                data[at] ^= 0x10  # every address moves by 0x1000
        table.write_bytes(bytes(data))
        queries = _symbol_queries()
        clean = run_bounded(
            ["symbolize", "--no-cache", str(SAMPLE_VMLINUX), *queries],
            env=quiet_env(work),
            keep_stdout=True,
        )

        def check(outcome: Outcome) -> str:
            if outcome.exit_code == 0 and outcome.stdout != clean.stdout:
                return "exit 0 with answers that differ from --no-cache"
            return ""

        return Command(
            ["symbolize", "--cache-dir", str(cache), str(SAMPLE_VMLINUX), *queries],
            quiet_env(work),
            check=check,
        )

    return build


# item 9: another vmlinux with the same build id


def _same_build_id(work: Path) -> Command:
    """The corpus' clang ThinLTO log decoded against its vmlinux (the index fills), then
    against the clang build without LTO carrying the ThinLTO build's build id."""
    real = corpus_kernel("clang-thinlto")
    log = corpus_root() / "kernels" / "clang-thinlto" / "console.log"
    impostor = work / "vmlinux-nolto-with-thinlto-build-id"
    impostor.write_bytes(
        with_build_id(corpus_kernel("clang-nolto").read_bytes(), build_id(real.read_bytes()))
    )
    cache = work / "ltosyms-cache"
    first = run_bounded(
        ["decode", "--cache-dir", str(cache), str(real), str(log)], env=quiet_env(work)
    )
    assert first.exit_code == 0, first.stderr
    alone = run_bounded(
        ["decode", "--no-cache", str(impostor), str(log)], env=quiet_env(work), keep_stdout=True
    )

    def check(outcome: Outcome) -> str:
        if outcome.exit_code != alone.exit_code or outcome.stdout != alone.stdout:
            differ = sum(
                a != b
                for a, b in zip(
                    outcome.stdout.splitlines(), alone.stdout.splitlines(), strict=False
                )
            )
            return (
                f"cached run {outcome.describe()}, --no-cache exit {alone.describe()}; "
                f"{differ} output lines differ"
            )
        return ""

    return Command(
        ["decode", "--cache-dir", str(cache), str(impostor), str(log)],
        quiet_env(work),
        check=check,
    )


# item 10: symbol values and sizes at the top of the address space


def top_of_address_space_image(work: Path) -> Path:
    data = bytearray(SAMPLE_VMLINUX.read_bytes())
    (first, _), (second, _) = function_frames(SAMPLE_VMLINUX)
    table = {s.name: s for s in symbols(bytes(data))}
    patch_symbol(data, table[first].index, size=0xFFFF_FFFF_FFFF_FFFF)
    patch_symbol(data, table[second].index, value=0xFFFF_FFFF_FFFF_FFF0)
    path = work / "vmlinux-top-of-address-space"
    path.write_bytes(bytes(data))
    return path


def _top_of_address_space(command: str):
    def build(work: Path) -> Command:
        vmlinux = top_of_address_space_image(work)
        (first, _), (second, _) = function_frames(SAMPLE_VMLINUX)
        if command == "symbolize":
            queries = [f"{first}+0x4", f"{second}+0x20", "0xfffffffffffffff8"]
            return Command(["symbolize", "--no-cache", str(vmlinux), *queries], quiet_env(work))
        log = work / "oops.log"
        log.write_text(
            "BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
            f"RIP: 0010:{first}+0x4/0x40\n"
            "Call Trace:\n"
            f" {second}+0x20/0x40\n"
            " [<fffffffffffffff8>] 0xfffffffffffffff8\n"
        )
        return Command(["decode", "--no-cache", str(vmlinux), str(log)], quiet_env(work))

    return build


# item 11: a log from a pipe


class _FifoWriter:
    def __init__(self, fifo: Path, content: bytes) -> None:
        self.fifo, self.content = fifo, content
        self.thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        with contextlib.suppress(OSError), open(self.fifo, "wb") as out:
            out.write(self.content)

    def __enter__(self) -> _FifoWriter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            # Nobody opened the FIFO: open it for reading once so the writer returns.
            with contextlib.suppress(OSError):
                descriptor = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
                os.close(descriptor)
        self.thread.join(5)


def _pipe(work: Path) -> Command:
    fifo = work / "log-pipe"
    os.mkfifo(fifo)
    content = sample_oops(SAMPLE_VMLINUX).encode()
    return Command(
        ["decode", "--no-cache", str(SAMPLE_VMLINUX), str(fifo)],
        quiet_env(work),
        helper=_FifoWriter(fifo, content),
    )


# item 12: numbers of 5,000 digits


def long_numbers_log(work: Path) -> Path:
    (first, first_size), (second, second_size) = function_frames(SAMPLE_VMLINUX)
    digits = "9" * 5000
    log = work / "long-numbers.log"
    log.write_text(
        f"WARNING: CPU: {digits} PID: {digits} at kernel/sched/core.c:{digits} {first}+0x4/"
        f"{first_size:#x}\n"
        f"CPU: {digits} PID: {digits} Comm: sh Not tainted 6.1.0-sample #1\n"
        f"RIP: 0010:{first}+0x4/{first_size:#x}\n"
        "Call Trace:\n"
        " <TASK>\n"
        f" {second}+0x8/{second_size:#x} (kernel/sched/core.c:{digits})\n"
        f" {second}+0x8/0x{'f' * 5000}\n"
        f"task:sh              state:D stack:{digits} pid:{digits} ppid:{digits} flags:0x0\n"
        f" {second}+0x8/{second_size:#x}\n"
        " </TASK>\n"
        f"NMI backtrace for cpu {digits}\n"
        f"Kernel Offset: 0x{'1' * 5000} from 0xffffffff81000000\n"
        f"[ {digits}.{digits}] {second}+0x8/{second_size:#x}\n"
    )
    return log


def _long_numbers(command: str):
    def build(work: Path) -> Command:
        log = long_numbers_log(work)
        if command == "parse":
            return Command(["parse", str(log)], quiet_env(work))
        return Command(["decode", "--no-cache", str(SAMPLE_VMLINUX), str(log)], quiet_env(work))

    return build


# item 14: index rows that are damaged but carry a valid checksum


def _damaged_rows(work: Path) -> Command:
    log = _sample_log(work)
    cache = work / "ltosyms-cache"
    first = run_bounded(
        ["decode", "--cache-dir", str(cache), str(SAMPLE_VMLINUX), str(log)],
        env=quiet_env(work),
        keep_stdout=True,
    )
    assert first.exit_code == 0, first.stderr
    (database,) = cache.glob("*.sqlite")
    # A marshalled list that claims 2**31 - 1 entries: marshal allocates it before reading.
    hostile = b"[" + struct.pack("<i", 0x7FFF_FFFF)
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "UPDATE cu SET crc32 = ?, data = ?", (zlib.crc32(hostile), zlib.compress(hostile, 1))
        )
        from ltosyms.index.store import row_checksum

        connection.create_function("row_checksum", 3, row_checksum, deterministic=True)
        connection.execute(
            "UPDATE derived SET data = ?1, crc32 = row_checksum(kind, key, ?1)", (hostile,)
        )

    def check(outcome: Outcome) -> str:
        if outcome.exit_code == 0 and outcome.stdout != first.stdout:
            return "exit 0, but the output differs from the first decode"
        return ""

    return Command(
        ["decode", "--cache-dir", str(cache), str(SAMPLE_VMLINUX), str(log)],
        quiet_env(work),
        check=check,
    )


# item 15: --cache-dir names a regular file


def _cache_dir_is_a_file(work: Path) -> Command:
    blocker = work / "not-a-directory"
    blocker.write_bytes(b"a user's file\n")
    name, _size = function_frames(SAMPLE_VMLINUX)[0]
    return Command(
        ["symbolize", "--cache-dir", str(blocker), str(SAMPLE_VMLINUX), f"{name}+0x4"],
        quiet_env(work),
    )


_STRTAB = "names run 16 MB to .strtab's end"
_SLOW, _CORPUS = {"slow": True}, {"slow": True, "needs_corpus": True}
_ENDLESS = {"slow": True, "endless": True}

CASES: tuple[Case, ...] = (
    Case(1, f"95 {_STRTAB}: syms", "2", _strtab_case("syms", 0), part=1),
    Case(1, f"100,095 {_STRTAB}: syms", "2", _strtab_case("syms"), part=1),
    Case(1, f"100,095 {_STRTAB}: symbolize", "2", _strtab_case("symbolize"), part=1),
    Case(1, f"100,095 {_STRTAB}: decode", "2", _strtab_case("decode"), part=1),
    Case(1, f"100,095 {_STRTAB}: index", "2", _strtab_case("index"), part=1),
    Case(
        2,
        ".debug_info claims 3 GB (zlib): decode",
        "0",
        _compressed_section(".debug_info", "huge"),
        part=1,
        **_SLOW,
    ),
    Case(
        2,
        ".debug_str claims its size, streams 3 GB: decode",
        "0",
        _compressed_section(".debug_str", "small"),
        part=1,
        **_SLOW,
    ),
    Case(
        3, "100,000 nested inlined_subroutine: decode --json", "0/2", _deep_dwarf, part=1, **_SLOW
    ),
    Case(4, "parse /dev/zero", "endless", _endless("parse", "/dev/zero"), part=1, **_ENDLESS),
    Case(4, "parse /dev/urandom", "endless", _endless("parse", "/dev/urandom"), part=1, **_ENDLESS),
    Case(
        4,
        "parse a symlink to /dev/zero",
        "endless",
        _endless("parse", "/dev/zero", via_symlink=True),
        part=1,
        **_ENDLESS,
    ),
    Case(
        4,
        "decode VMLINUX /dev/zero",
        "endless",
        _endless("decode", "/dev/zero"),
        part=1,
        **_ENDLESS,
    ),
    Case(
        4,
        "symbolize VMLINUX < /dev/zero",
        "endless",
        _endless("symbolize", "/dev/zero"),
        part=1,
        **_ENDLESS,
    ),
    Case(
        4,
        "symbolize --jobs 2 VMLINUX < /dev/zero",
        "endless",
        _endless("symbolize --jobs 2", "/dev/zero"),
        part=1,
        **_ENDLESS,
    ),
    Case(4, "parse 200 MB of repeated frames", "0", _huge("parse", "frames"), part=1, **_CORPUS),
    Case(4, "parse 200 MB of repeated reports", "0", _huge("parse", "reports"), part=1, **_CORPUS),
    Case(4, "parse 200 MB CR-only log", "0", _huge("parse", "cr"), part=1, **_CORPUS),
    Case(4, "decode 200 MB of repeated frames", "0", _huge("decode", "frames"), part=2, **_CORPUS),
    Case(
        4, "decode 200 MB of repeated reports", "0", _huge("decode", "reports"), part=2, **_CORPUS
    ),
    Case(4, "decode 200 MB CR-only log", "0", _huge("decode", "cr"), part=2, **_CORPUS),
    Case(5, "syms bomb.ko.gz (6 GB of zeros)", "2", _bomb("bomb.ko.gz", elf_first=False), part=1),
    Case(5, "syms bomb.ko.xz (6 GB of zeros)", "2", _bomb("bomb.ko.xz", elf_first=False), part=1),
    Case(
        5,
        "syms vmlinux.gz (the ELF, then 6 GB of zeros)",
        "0",
        _bomb("vmlinux.gz", elf_first=True),
        part=1,
    ),
    Case(
        6,
        "debuginfod drips the body (TIMEOUT=5 MAXTIME=10)",
        "2",
        _slow_server("body"),
        part=1,
        **_SLOW,
    ),
    Case(
        6,
        "debuginfod drips the headers (TIMEOUT=5 MAXTIME=10)",
        "2",
        _slow_server("headers"),
        part=1,
        **_SLOW,
    ),
    Case(7, "ltosyms cache: <key>.lock is a symlink", "0", _lock_symlink, part=2),
    Case(7, "debuginfod cache: <build id> dir is a symlink", "4", _debuginfod_dir_symlink, part=1),
    Case(8, "symbols table: number columns flipped", "0", _damaged_table("link_addresses"), part=2),
    Case(8, "symbols table: name order damaged", "0", _damaged_table("name_order"), part=2),
    Case(9, "another vmlinux with the same build id", "3", _same_build_id, part=2, **_CORPUS),
    Case(
        10,
        "symbol value/size near 2^64: symbolize",
        "0",
        _top_of_address_space("symbolize"),
        part=1,
    ),
    Case(10, "symbol value/size near 2^64: decode", "0", _top_of_address_space("decode"), part=1),
    Case(11, "decode VMLINUX <pipe>", "0", _pipe, part=2),
    Case(12, "5,000-digit numbers: parse", "0", _long_numbers("parse"), part=1),
    Case(12, "5,000-digit numbers: decode", "0", _long_numbers("decode"), part=1),
    Case(13, "DEBUGINFOD_TIMEOUT=inf", "2", _environment("DEBUGINFOD_TIMEOUT", "inf"), part=1),
    Case(13, "DEBUGINFOD_MAXSIZE=inf", "2", _environment("DEBUGINFOD_MAXSIZE", "inf"), part=1),
    Case(13, "DEBUGINFOD_TIMEOUT=nan", "2", _environment("DEBUGINFOD_TIMEOUT", "nan"), part=1),
    Case(14, "index rows damaged under a valid checksum", "0", _damaged_rows, part=2),
    Case(15, "--cache-dir is a regular file", "4", _cache_dir_is_a_file, part=1),
)


@contextlib.contextmanager
def prepared(case: Case, work: Path) -> Iterator[Command]:
    command = case.build(work)
    with command.helper or contextlib.nullcontext():
        yield command


def run_case(
    case: Case,
    work: Path,
    *,
    time_limit: float = 60.0,
    endless_seconds: float = 15.0,
    rss_limit: int = 3 * GIB,
) -> tuple[Outcome, str]:
    """Build ``case`` in ``work``, run it bounded; the outcome and the case's own note."""
    with prepared(case, work) as command:
        outcome = run_bounded(
            command.arguments,
            env=command.env,
            stdin=command.stdin,
            time_limit=endless_seconds if case.endless else time_limit,
            rss_limit=rss_limit,
            keep_stdout=command.check is not None,
            cwd=work,
        )
    note = command.check(outcome) if command.check is not None else ""
    return outcome, note
