"""Bad image files given to every command that takes a vmlinux: one line, an exit code, no harm.

``ROWS`` is the table the README's "Bad input" section mirrors: what the user gives, the one
line ``ltosyms`` answers on stderr (a regular expression here) and the exit code. Every row
runs against every command in ``COMMANDS``; each must

- print exactly one line on stderr (``ltosyms: error: ...``), never a traceback,
- exit with the documented code (2: the input cannot be used),
- leave the input as it was (content, size, mode and mtime; nothing created).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PROJECT, SAMPLES, elffile

from ltosyms.cli import cli
from ltosyms.elf.image import open_image
from ltosyms.elf.symtab import SymbolTable

BAD_INPUTS = PROJECT / "testdata" / "bad-inputs"
VMLINUX = SAMPLES / "vmlinux-gcc"


@dataclass(frozen=True)
class Expect:
    exit_code: int
    message: str | None  # regular expression for the one stderr line; None: stderr is empty


@dataclass(frozen=True)
class Row:
    input: str  # the README table's first column
    make: Callable[[Path], Path]  # builds the input inside a scratch directory
    expect: Expect
    per_command: Mapping[str, Expect] = field(default_factory=dict)
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _write(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(work: Path) -> Path:
        path = work / name
        path.write_bytes(content)
        return path

    return make


def _copy(source: Path, name: str | None = None) -> Callable[[Path], Path]:
    def make(work: Path) -> Path:
        if not source.is_file():
            pytest.skip(f"{source} is not present")
        path = work / (name or source.name)
        shutil.copyfile(source, path)
        return path

    return make


def _cut(where: str) -> Callable[[Path], Path]:
    """The sample vmlinux cut in the middle of a structure (offsets read from the sample)."""

    def make(work: Path) -> Path:
        data = VMLINUX.read_bytes()
        with open_image(VMLINUX) as image:
            header = elffile(VMLINUX).header
            if where == "ELF header":
                offset = 40
            elif where == "section headers":
                offset = header["e_shoff"] + 3 * header["e_shentsize"] + 10
            else:
                section = image.get_section(where)
                assert section is not None, f"{VMLINUX} has no {where}"
                offset = section.file_offset + section.size // 2
        path = work / f"vmlinux-cut-in-{where.strip('.').replace(' ', '-')}"
        path.write_bytes(data[:offset])
        return path

    return make


def _patched(name: str, offset: int, value: bytes) -> Callable[[Path], Path]:
    def make(work: Path) -> Path:
        data = bytearray(VMLINUX.read_bytes())
        data[offset : offset + len(value)] = value
        path = work / name
        path.write_bytes(bytes(data))
        return path

    return make


def _directory(work: Path) -> Path:
    path = work / "a-directory"
    path.mkdir()
    (path / "vmlinux").write_bytes(b"")
    return path


def _missing(work: Path) -> Path:
    return work / "no-such-vmlinux"


def _fifo(work: Path) -> Path:
    path = work / "a-fifo"
    os.mkfifo(path)
    return path


def _unreadable(work: Path) -> Path:
    path = _copy(VMLINUX, "unreadable-vmlinux")(work)
    path.chmod(0)
    return path


NOT_ELF = Expect(2, r"not an ELF file$")
TRUNCATED = Expect(2, r"truncated or damaged: section headers end at byte \d+, file has \d+$")
ROWS: tuple[Row, ...] = (
    Row("empty file", _write("empty", b""), NOT_ELF),
    Row(
        "binary garbage",
        _write("garbage", random.Random(8).randbytes(4096).replace(b"\x7fELF", b"")),
        NOT_ELF,
    ),
    Row(
        "ELF magic followed by garbage",
        _write("elf-garbage", b"\x7fELF" + random.Random(9).randbytes(4092)),
        Expect(2, r"not a usable ELF file \(.+\)$|truncated or damaged"),
    ),
    Row(
        "vmlinux cut inside the ELF header",
        _cut("ELF header"),
        Expect(2, r"truncated: 40 bytes, less than the 64-byte ELF header$"),
    ),
    Row("vmlinux cut inside the section headers", _cut("section headers"), TRUNCATED),
    Row("vmlinux cut inside .symtab", _cut(".symtab"), TRUNCATED),
    Row("vmlinux cut inside .debug_info", _cut(".debug_info"), TRUNCATED),
    Row(
        "kernel module (.ko) given as vmlinux",
        _copy(SAMPLES / "sample_mod-gcc.ko"),
        Expect(2, r"is a kernel module \(ET_REL\), not a vmlinux$"),
        per_command={"syms": Expect(0, None)},  # syms lists a module's symbols as well
    ),
    Row(
        "user-space program with symbols",
        _copy(BAD_INPUTS / "userspace-hello"),
        Expect(2, r"not a Linux kernel image \(none of _stext, .+ is defined\)$"),
    ),
    Row(
        "stripped user-space program (/bin/true)",
        _copy(Path("/bin/true"), "true"),
        Expect(2, r"has no \.symtab \(stripped\); a debug vmlinux is needed$"),
    ),
    Row(
        "stripped vmlinux (no .symtab)",
        _copy(BAD_INPUTS / "vmlinux-gcc-stripped"),
        Expect(2, r"has no \.symtab \(stripped\); a debug vmlinux is needed$"),
    ),
    Row(
        "vmlinux without DWARF",
        _copy(BAD_INPUTS / "vmlinux-gcc-nodebug"),
        Expect(0, None),
        per_command={
            "decode": Expect(0, r"^ltosyms: warning: .+ has no DWARF: frames get symbol\+offset")
        },
    ),
    Row(
        "ELF of another architecture (EM_ARM)",
        _patched("vmlinux-arm", 18, (40).to_bytes(2, "little")),  # e_machine
        Expect(2, r"ELF machine EM_ARM is not supported \(x86-64 and aarch64 kernels are\)$"),
    ),
    Row(
        "a directory",
        _directory,
        Expect(2, r"is a directory, not an ELF file$"),
    ),
    Row("missing file", _missing, Expect(2, r"no-such-vmlinux: No such file or directory$")),
    Row("FIFO (would block a reader)", _fifo, Expect(2, r"not a regular file$")),
    Row(
        "unreadable file (mode 000)",
        _unreadable,
        Expect(2, r"Permission denied$"),
    ),
)


@cache
def _frame_of_the_sample() -> str:
    """A trace frame that exists in the sample vmlinux, so a decode has work to do."""
    with open_image(VMLINUX) as image:
        table = SymbolTable(image)
        symbol = next(s for s in table if s.is_function and s.kallsyms_size and s.elf_size > 8)
    size = symbol.kallsyms_size or 0
    return f"{symbol.name}+0x4/{size:#x}"


COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "syms": lambda image, work: ["syms", str(image)],
    "decode": lambda image, work: ["decode", "--no-cache", str(image), str(work / "oops.log")],
    "symbolize": lambda image, work: [
        "symbolize",
        "--no-cache",
        str(image),
        _frame_of_the_sample().split("/")[0],
    ],
}


@dataclass(frozen=True)
class Snapshot:
    exists: bool
    mode: int = 0
    mtime_ns: int = 0
    size: int = 0
    digest: str = ""
    entries: tuple[str, ...] = ()


def _snapshot(path: Path) -> Snapshot:
    try:
        status = path.lstat()
    except FileNotFoundError:
        return Snapshot(False)
    digest = ""
    entries: tuple[str, ...] = ()
    if stat.S_ISREG(status.st_mode):
        # Read as root would; the mode is part of the snapshot anyway.
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    elif stat.S_ISDIR(status.st_mode):
        entries = tuple(sorted(os.listdir(path)))
    return Snapshot(True, status.st_mode, status.st_mtime_ns, status.st_size, digest, entries)


def _run(arguments: list[str], unreadable: bool) -> tuple[int, str, str]:
    """Run the CLI; (exit code, stdout, stderr)."""
    if unreadable and os.geteuid() == 0:
        # Root reads any file. Drop the two capabilities that let it (capabilities(7)) in a
        # child process, so the permission check is the kernel's, as for any user.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv(1) is missing: cannot make a file unreadable")
        probe = subprocess.run(
            [setpriv, "--bounding-set=-dac_override,-dac_read_search", "true"],
            capture_output=True,
            check=False,
        )
        if probe.returncode:
            pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE (setpriv failed)")
        process = subprocess.run(
            [
                setpriv,
                "--bounding-set=-dac_override,-dac_read_search",
                sys.executable,
                "-m",
                "ltosyms",
                *arguments,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=PROJECT,
        )
        return process.returncode, process.stdout, process.stderr
    result = CliRunner().invoke(cli, arguments, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


CASES = [
    pytest.param(row, command, id=f"{command}: {row.input}", marks=row.marks)
    for row in ROWS
    for command in COMMANDS
]


@pytest.mark.parametrize(("row", "command"), CASES)
def test_bad_image(row: Row, command: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "oops.log").write_text(f"Call Trace:\n <TASK>\n {_frame_of_the_sample()}\n </TASK>\n")
    image = row.make(work)
    before = _snapshot(image)
    listing = sorted(os.listdir(work))
    expect = row.per_command.get(command, row.expect)

    exit_code, stdout, stderr = _run(COMMANDS[command](image, work), "unreadable" in row.input)

    assert "Traceback" not in stdout + stderr
    assert exit_code == expect.exit_code, stderr
    lines = stderr.splitlines()
    if expect.message is None:
        assert lines == []
    else:
        assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
        if expect.exit_code:
            assert lines[0].startswith(f"ltosyms: error: {image}"), lines[0]
        assert re.search(expect.message, lines[0]), lines[0]
    if expect.exit_code:
        assert stdout == ""
    # The input is untouched and nothing was created beside it.
    assert _snapshot(image) == before
    assert sorted(os.listdir(work)) == listing
