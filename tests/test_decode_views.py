"""Views of a decode for people: quieter output, console escapes made visible, registers
named, ambiguous frames with what tells the candidates apart."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Corpus

from ltosyms.cli import cli
from ltosyms.render.decode_text import visible


def _run(arguments: list[str]) -> str:
    result = CliRunner().invoke(cli, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@cache
def _debian(corpus_root: Path, *options: str) -> list[str]:
    debian = corpus_root / "debian-6.1.0-57-cloud-amd64"
    vmlinux = subprocess.run(
        ["sh", str(debian / "get-vmlinux.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    log = debian / "logs" / "console-sysrq.log"
    arguments = ["decode", vmlinux, str(log), "--modules", str(debian / "modules"), "--no-cache"]
    return _run([*arguments, *options]).splitlines()


def test_control_characters_are_written_out() -> None:
    assert visible("o\x1bc\x1b[?7l\x1b[2J[    0.000000] Linux") == (
        "o\\x1bc\\x1b[?7l\\x1b[2J[    0.000000] Linux"
    )
    assert visible("a\tb\x07\x9b") == "a\tb\\x07\\x9b"


def test_console_escapes_never_reach_the_terminal(corpus: Corpus) -> None:
    lines = _debian(corpus.root)
    # The capture starts with SeaBIOS' `ESC c ESC[?7l ESC[2J ESC[0m` (reset, clear screen).
    assert lines[0] == "\\x1bc\\x1b[?7l\\x1b[2J\\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)"
    assert not any(re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", line) for line in lines)


def test_reports_only_and_brief(corpus: Corpus) -> None:
    everything = _debian(corpus.root)
    quiet = _debian(corpus.root, "--reports-only", "--brief")
    assert not any("SeaBIOS" in line or "Command line:" in line for line in quiet)
    # --brief: no call lines, no `? ` entry that is no return address.
    assert not any(line.startswith("    call at ") for line in quiet)
    assert not any(
        line.endswith("? tg_sleep_deep.constprop.0+0x20/0x20 [tracegen]") for line in quiet
    )
    assert not any("a function pointer" in line for line in quiet)
    # Every frame that is a return address stays, with its lines.
    kept = [line for line in everything if line.endswith(" tg_thread_fn+0x13/0x23 [tracegen]")]
    assert len(kept) == 4
    assert [line for line in quiet if line.endswith(" tg_thread_fn+0x13/0x23 [tracegen]")] == kept
    # The `? ` entries that are return addresses stay too.
    assert any(line.endswith("? do_syscall_64+0x69/0x90") for line in quiet)


def test_registers_named_after_the_register_lines(corpus: Corpus) -> None:
    lines = _debian(corpus.root)
    # tracegen's oops: the unreadable Code: line puts tg_store+0x5 at 0xffffffffc03a4005, so
    # tracegen's .text starts at 0xffffffffc03a4000; RAX ffffffffc03a4010 is .text+0x10,
    # tg_oops_write in objdump -t tracegen.ko.
    named = [line for line in lines if re.match(r"    R[A-Z0-9]+ [0-9a-f]{16} = ", line)]
    assert named == ["    RAX ffffffffc03a4010 = tg_oops_write [tracegen]"]
    position = lines.index(named[0])
    # After the last line of the dump's registers (x86 __show_regs(): PKRU comes last).
    assert lines[position - 1].endswith("] PKRU: 55555554")


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is the oracle")
def test_exact_ip_decided_by_instruction_starts(corpus: Corpus) -> None:
    vmlinux = str(corpus.debian_vmlinux())
    query = "__refcount_add.constprop.0+0x1a/0x30"
    # Three copies of 0x30 bytes (kernel/fork.c, kernel/events/core.c, io_uring/io_uring.c);
    # objdump starts an instruction at +0x1a in the third only.
    starts = []
    for start in (0xFFFFFFFF81090D60, 0xFFFFFFFF81251CA0, 0xFFFFFFFF8157FAB0):
        listing = subprocess.run(
            [
                "objdump",
                "-d",
                f"--start-address={start:#x}",
                f"--stop-address={start + 0x30:#x}",
                vmlinux,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if re.search(rf"^\s*{start + 0x1A:x}:", listing, re.MULTILINE):
            starts.append(start + 0x1A)
    assert starts == [0xFFFFFFFF8157FACA]
    exact = _run(["symbolize", vmlinux, query, "--no-cache"]).splitlines()
    assert exact[0] == f"{query}  = __refcount_add.constprop.0+0x1a at 0xffffffff8157faca"

    # As a return address no call ends there in any copy: each candidate says where it was
    # compiled, its line and the lines its function spans (__refcount_add is lines 191-202
    # of refcount.h in 6.1), once (no note repeats the list).
    returned = _run(["symbolize", vmlinux, "-R", query, "--no-cache"]).splitlines()
    assert returned[1:5] == [
        "    ambiguous: 3 candidates, none chosen:",
        "      __refcount_add.constprop.0 at 0xffffffff81090d60 (kallsyms size 0x30) in "
        "kernel/fork.c: include/linux/refcount.h:201:3; "
        "the function is include/linux/refcount.h:191-202",
        "      __refcount_add.constprop.0 at 0xffffffff81251ca0 (kallsyms size 0x30) in "
        "kernel/events/core.c: include/linux/refcount.h:201:3; "
        "the function is include/linux/refcount.h:191-202",
        "      __refcount_add.constprop.0 at 0xffffffff8157fab0 (kallsyms size 0x30) in "
        "io_uring/io_uring.c: include/linux/refcount.h:202:1; "
        "the function is include/linux/refcount.h:191-202",
    ]
    assert not any(line.startswith("    note: ambiguous") for line in returned)


def test_decode_stacktrace_frames_as_the_script_prints_them(corpus: Corpus) -> None:
    # scripts/decode_stacktrace.sh (6.1) handle_line(): the line's words joined by one blank,
    # the timestamp as printf "[%13s", then `echo "${words[@]}" "$symbol $module"`: the
    # module's name alone (build id and brackets dropped), a trailing blank for the vmlinux.
    folder = corpus.kernels / "clang-thinlto"
    lines = _run(
        [
            "decode",
            str(corpus.kernel_vmlinux("clang-thinlto")),
            str(folder / "console.log"),
            "--modules",
            str(folder),
            "--no-cache",
            "--format",
            "decode-stacktrace",
        ]
    ).splitlines()
    assert "[    1.328744] direct_entry (drivers/misc/lkdtm/core.c:329) lkdtm" in lines
    assert (
        "[    1.329342] do_syscall_64 (arch/x86/entry/common.c:46 arch/x86/entry/common.c:76) "
        in lines
    )
    assert (
        "[    1.325877] WARNING: CPU: 1 PID: 174 at drivers/misc/lkdtm/bugs.c:85 "
        "lkdtm_WARNING (drivers/misc/lkdtm/bugs.c:85) lkdtm" in lines
    )
    assert not any(re.search(r"\) \[\w+", line) for line in lines)
