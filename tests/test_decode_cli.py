"""The decode and symbolize commands end to end: output, JSON contract, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import Corpus

from ltosyms.cli import cli
from ltosyms.render.decode_text import visible


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_decode_json_contract(corpus: Corpus, tmp_path: Path) -> None:
    folder = corpus.kernels / "clang-thinlto"
    code, out, err = run(
        "decode",
        str(corpus.kernel_vmlinux("clang-thinlto")),
        str(folder / "console.log"),
        "--modules",
        str(folder),
        "--json",
        "--cache-dir",
        str(tmp_path),
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["schema"] == "ltosyms.decode/1"
    assert document["vmlinux"]["build_id"] == "fbf19241442aad470e2c3f249e81488a10edc9f6"
    frames = [f for r in document["reports"] for f in r["frames"]]
    wake = [f for f in frames if f["symbol"] == "try_to_wake_up"]
    assert wake
    for frame in wake:
        resolved = frame["resolved"]
        assert resolved["symbol"].startswith("try_to_wake_up.llvm.")
        assert resolved["ambiguous"] is False
        assert int(resolved["address"], 16) > int(resolved["symbol_address"], 16)
        assert frame["locations"][-1]["file"] == "kernel/sched/core.c"
    # lkdtm EXEC_DATA runs from data_area in .bss: no line information there, said so.
    module_frames = [f for f in frames if f["module"] == "lkdtm" and f["symbol"] != "data_area"]
    assert module_frames and all(f["locations"] for f in module_frames)
    for key in ("line", "symbol", "offset", "size", "module", "reliable", "exact_ip", "notes"):
        assert all(key in f for f in frames)
    verdicts = [r["code"]["match"]["verdict"] for r in document["reports"] if r["code"]]
    # EXEC_DATA faults in .bss, where the image has no bytes: "unknown", never "mismatch".
    assert verdicts.count("patched-only") + verdicts.count("match") >= 8
    assert "mismatch" not in verdicts


def test_decode_keeps_every_input_line(corpus: Corpus, tmp_path: Path) -> None:
    log = corpus.kernels / "gcc-nolto" / "console.log"
    code, out, err = run(
        "decode",
        str(corpus.kernel_vmlinux("gcc-nolto")),
        str(log),
        "--no-cache",
        "--modules",
        str(corpus.kernels / "gcc-nolto"),
    )
    assert code == 0, err
    original = log.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")
    lines = iter(out.splitlines())
    # Every input line comes out unchanged and in order (control characters written out,
    # the console's ESC sequences as `\x1b`); annotations are lines in between.
    assert all(
        any(visible(line) == kept for kept in lines)
        for line in original.replace("\r", "\n").split("\n")[:-1]
    )
    assert "\x1b" in original and "\x1b" not in out


def test_decode_stacktrace_format(corpus: Corpus) -> None:
    log = corpus.kernels / "clang-thinlto" / "console.log"
    code, out, _ = run(
        "decode",
        str(corpus.kernel_vmlinux("clang-thinlto")),
        str(log),
        "--no-cache",
        "--format",
        "decode-stacktrace",
    )
    assert code == 0
    # decode_stacktrace.sh 6.1: `name (file:line file:line ...)`, offset dropped, and the
    # (empty) module after a blank: `echo "${words[@]}" "$symbol $module"`.
    assert any(
        line.endswith("do_syscall_64 (arch/x86/entry/common.c:46 arch/x86/entry/common.c:76) ")
        for line in out.splitlines()
    )


def test_wrong_vmlinux_is_reported(corpus: Corpus) -> None:
    log = corpus.kernels / "clang-thinlto" / "console.log"
    code, _out, err = run("decode", str(corpus.kernel_vmlinux("gcc-nolto")), str(log), "--no-cache")
    assert code == 3
    assert "does not match" in err


def test_log_without_reports_is_not_an_error(corpus: Corpus, tmp_path: Path) -> None:
    log = tmp_path / "boot.log"
    log.write_text("[    0.000000] Linux version 6.1.0\n[    1.000000] all is well\n")
    code, out, err = run("decode", str(corpus.kernel_vmlinux("gcc-nolto")), str(log), "--no-cache")
    assert code == 0, err
    assert out.splitlines() == log.read_text().splitlines()


def test_unreadable_log_is_one_line_error(corpus: Corpus, tmp_path: Path) -> None:
    code, _out, err = run(
        "decode", str(corpus.kernel_vmlinux("gcc-nolto")), str(tmp_path / "missing.log")
    )
    assert code == 2
    assert err.count("\n") == 1 and "missing.log" in err and "Traceback" not in err
    code, _, err = run("decode", str(corpus.kernel_vmlinux("gcc-nolto")), str(tmp_path))
    assert code == 2 and "directory" in err


def test_symbolize_names_and_addresses(corpus: Corpus) -> None:
    vmlinux = str(corpus.kernel_vmlinux("clang-thinlto"))
    code, out, err = run("symbolize", vmlinux, "--no-cache", "try_to_wake_up+0x24e/0x2a0", "-R")
    assert code == 0, err
    assert "try_to_wake_up.llvm.14717294184349261171+0x24e" in out
    assert "kernel/sched/core.c" in out
    code, out, _ = run("symbolize", vmlinux, "--no-cache", "--json", stdin="try_to_wake_up+0x24e\n")
    document = json.loads(out)
    assert document["schema"] == "ltosyms.symbolize/1"
    assert document["results"][0]["resolved"]["symbol"].startswith("try_to_wake_up.llvm.")
    # An unreadable query is one error line of its own, then the count: exit 1.
    code, _, err = run("symbolize", vmlinux, "--no-cache", "not a query at all")
    assert code == 1 and err.count("\n") == 2 and "cannot read" in err


def test_decode_finds_the_vmlinux_by_the_logs_release(corpus: Corpus, tmp_path: Path) -> None:
    # A Debian-like system image: the debug vmlinux and the module tree of release 6.1.192.
    folder = corpus.kernels / "clang-thinlto"
    boot = tmp_path / "usr" / "lib" / "debug" / "boot"
    boot.mkdir(parents=True)
    (boot / "vmlinux-6.1.192").symlink_to(corpus.kernel_vmlinux("clang-thinlto"))
    modules = tmp_path / "lib" / "modules" / "6.1.192" / "kernel" / "drivers" / "misc"
    modules.mkdir(parents=True)
    (modules / "lkdtm.ko").symlink_to(folder / "lkdtm.ko")
    code, out, err = run(
        "decode", str(folder / "console.log"), "--sysroot", str(tmp_path), "--no-cache", "--json"
    )
    assert code == 0, err
    assert "vmlinux-6.1.192" in err
    frames = [f for r in json.loads(out)["reports"] for f in r["frames"]]
    assert any(f["module"] == "lkdtm" and f["locations"] for f in frames)


def test_decode_without_vmlinux_or_release_says_what_to_give(tmp_path: Path) -> None:
    log = tmp_path / "plain.log"
    log.write_text("[    1.0] Call Trace:\n[    1.0]  foo+0x1/0x10\n")
    code, _, err = run("decode", str(log), "--sysroot", str(tmp_path), "--no-cache")
    assert code == 2
    assert "give the vmlinux path or -r RELEASE" in err
