"""symbolize as a batch tool (issue 13 item 10, issue 15 item 3): what a query may be, one
error line per bad query, every copy of a bare name, answers streamed as queries come."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES, Corpus
from elftools.elf.elffile import ELFFile

from ltosyms.cli import cli
from ltosyms.decode.frames import FrameQuery
from ltosyms.decode.symbolize import parse_query
from ltosyms.errors import UsageError
from ltosyms.oops.records import FrameRole

RET = FrameRole.RETURN_ADDRESS
EXACT = FrameRole.EXACT_IP


def _frame(
    symbol: str | None,
    offset: int,
    size: int | None,
    module: str | None,
    module_build_id: str | None,
    role: FrameRole,
) -> FrameQuery:
    return FrameQuery(
        symbol=symbol,
        offset=offset,
        size=size,
        module=module,
        module_build_id=module_build_id,
        role=role,
    )


@pytest.mark.parametrize(
    ("text", "frame", "every_copy"),
    [
        # A trace line pasted whole: timestamp, caller id and `? ` dropped.
        (
            "[   11.512345] ? try_to_wake_up+0x24e/0x2a0",
            _frame("try_to_wake_up", 0x24E, 0x2A0, None, None, RET),
            False,
        ),
        (
            "[ 11.5][ T174]  lkdtm_WARNING+0xa/0x10 [lkdtm]",
            _frame("lkdtm_WARNING", 0xA, 0x10, "lkdtm", None, RET),
            False,
        ),
        (
            "direct_entry+0x147/0x160 lkdtm",
            _frame("direct_entry", 0x147, 0x160, "lkdtm", None, RET),
            False,
        ),
        (
            "direct_entry+0x147/0x160 [lkdtm 0123abcd]",
            _frame("direct_entry", 0x147, 0x160, "lkdtm", "0123abcd", RET),
            False,
        ),
        ("0xffffffff8106f86e", _frame(None, 0x6F86E, None, None, None, RET), False),
        ("ffffffff8106f86e", _frame(None, 0x6F86E, None, None, None, RET), False),
        # Decimal offsets and sizes, a leading zero too (int(text, 0) refused "010").
        ("foo+010/0x20", _frame("foo", 10, 0x20, None, None, RET), False),
        ("foo+0x8/016", _frame("foo", 8, 16, None, None, RET), False),
        # Hex-looking text after a prefix is an address; a hex-looking name with "+" is a name.
        ("[ 1.5] ? ffffffff8106f86e", _frame(None, 0x6F86E, None, None, None, RET), False),
        ("deadbeef+0x4/0x10", _frame("deadbeef", 4, 0x10, None, None, RET), False),
        # A bare name: every copy, at its start, an exact IP whatever -R says.
        ("try_to_wake_up", _frame("try_to_wake_up", 0, None, None, None, EXACT), True),
        (
            "lkdtm_WARNING [lkdtm]",
            _frame("lkdtm_WARNING", 0, None, "lkdtm", None, EXACT),
            True,
        ),
        ("name.llvm.123", _frame("name.llvm.123", 0, None, None, None, EXACT), True),
    ],
)
def test_what_a_query_may_be(text: str, frame: FrameQuery, every_copy: bool) -> None:
    query = parse_query(text + "\n", RET, kaslr_offset=0xFFFFFFFF81000000)
    assert query.text == text
    assert query.frame == frame
    assert query.every_copy is every_copy


@pytest.mark.parametrize("text", ["not a query at all", "name+", "a+0x1/0x2 [m] extra", "+0x10"])
def test_what_a_query_may_not_be(text: str) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        parse_query(text, RET)


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def code_symbols(system_map: Path, name: str) -> list[int]:
    """Addresses of the code symbols called ``name`` in System.map (the oracle)."""
    return [
        int(fields[0], 16)
        for fields in (line.split() for line in system_map.read_text().splitlines())
        if len(fields) == 3 and fields[1] in "tT" and fields[2] == name
    ]


def test_one_bad_query_does_not_stop_the_batch(corpus: Corpus) -> None:
    folder = corpus.kernels / "clang-thinlto"
    vmlinux = str(corpus.kernel_vmlinux("clang-thinlto"))
    queries = [
        "[   11.512345] ? try_to_wake_up+0x24e/0x2a0",
        "bogus query!",
        "lkdtm_WARNING+0xa/0x10 lkdtm",
        "foo+0x1/0x2 [nosuchmod]",
        "name_show+0x10/0x50",
    ]
    stdin = "\n".join(queries) + "\n"
    common = (vmlinux, "--no-cache", "--modules", str(folder / "lkdtm.ko"))
    code, out, err = run("symbolize", *common, "-R", stdin=stdin)
    assert code == 1
    assert err.splitlines() == [
        "ltosyms: error: bogus query!: cannot read 'bogus query!': expected ADDR, "
        "NAME+OFF[/SIZE] [MODULE] or NAME [MODULE]",
        "ltosyms: error: foo+0x1/0x2 [nosuchmod]: module nosuchmod: not found (give --modules DIR)",
        "ltosyms: error: 2 of 5 queries failed",
    ]
    heads = [line.split("  = ")[0] for line in out.splitlines() if not line.startswith(" ")]
    assert heads == [queries[0], queries[2], queries[4]]
    assert "kernel/sched/core.c:" in out and "drivers/misc/lkdtm/bugs.c:" in out

    # --jsonl: one object per answer or error, in query order; --json: the errors listed.
    code, out, _ = run("symbolize", *common, "-R", "--jsonl", stdin=stdin)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [record["query"] for record in records] == queries
    assert ["error" in record for record in records] == [False, True, False, True, False]
    assert records[2]["resolved"]["symbol"] == "lkdtm_WARNING"
    code, out, _ = run("symbolize", *common, "-R", "--json", stdin=stdin)
    document = json.loads(out)
    assert code == 1 and len(document["results"]) == 3
    assert [error["query"] for error in document["errors"]] == [queries[1], queries[3]]


def test_a_bare_name_gives_every_copy(corpus: Corpus) -> None:
    folder = corpus.kernels / "clang-thinlto"
    vmlinux = str(corpus.kernel_vmlinux("clang-thinlto"))
    copies = code_symbols(folder / "System.map", "cmask_show")
    assert len(copies) == 5
    code, out, err = run("symbolize", vmlinux, "--no-cache", "--jsonl", "cmask_show")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [int(r["resolved"]["address"], 16) for r in records] == copies
    files = {r["locations"][-1]["file"] for r in records}
    assert len(files) == 5 and all(file.startswith("arch/x86/events/") for file in files)
    # One copy: one answer; an LTO-renamed function is found by its source name.
    code, out, _ = run("symbolize", vmlinux, "--no-cache", "try_to_wake_up")
    assert code == 0 and out.splitlines()[0].startswith(
        "try_to_wake_up  = try_to_wake_up.llvm.14717294184349261171+0x0 at "
    )
    assert out.splitlines()[1].split()[0].startswith("kernel/sched/core.c:")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_answers_come_as_queries_do(corpus: Corpus, tmp_path: Path, jobs: str) -> None:
    """The first answer is out while stdin is still open: nothing waits for the end (with
    worker processes too: the answers handed out are taken back while stdin is quiet)."""
    vmlinux = str(corpus.kernel_vmlinux("clang-thinlto"))
    command = [sys.executable, "-m", "ltosyms", "symbolize", vmlinux, "--no-cache", "-R"]
    with subprocess.Popen(
        [*command, "--jsonl", "--jobs", jobs],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": ""},
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(b"try_to_wake_up+0x24e/0x2a0\n")
            process.stdin.flush()
            first = json.loads(process.stdout.readline())
            assert first["resolved"]["symbol"].startswith("try_to_wake_up.llvm.")
            assert process.poll() is None  # still reading stdin
            process.stdin.write(b"name_show+0x10/0x50\n")
            process.stdin.close()
            second = json.loads(process.stdout.readline())
            assert second["resolved"]["symbol"] == "name_show"
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_stdin_of_any_bytes_is_read_as_the_log_reader_reads_logs(tmp_path: Path) -> None:
    """Invalid UTF-8 under a strict locale is a bad query, not an internal error; a line of
    200,000 characters is kept to its first 65,536 and named by its first 2,048."""
    vmlinux = SAMPLES / "vmlinux-gcc"
    with open(vmlinux, "rb") as file:
        function = next(
            symbol.name
            for symbol in ELFFile(file).get_section_by_name(".symtab").iter_symbols()
            if symbol["st_info"]["type"] == "STT_FUNC" and symbol["st_size"] > 2
        )
    stdin = (
        f"{function}+0x1\n".encode()
        + b"\xff\xfe not text\r\n"
        + b"z" * 200_000
        + f"\n{function}+0x2".encode()  # the last line has no line end
    )
    result = subprocess.run(
        [sys.executable, "-m", "ltosyms", "symbolize", "--no-cache", str(vmlinux)],
        input=stdin,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
        check=False,
    )
    errors = result.stderr.decode().splitlines()
    assert result.returncode == 1, errors
    heads = [line for line in result.stdout.decode().splitlines() if not line.startswith(" ")]
    assert [head.split("  = ")[0] for head in heads] == [
        f"{function}+0x1",
        "z" * 65_536,
        f"{function}+0x2",
    ]
    assert errors[0] == (
        "ltosyms: error: \ufffd\ufffd not text: cannot read '\ufffd\ufffd not text': expected "
        "ADDR, NAME+OFF[/SIZE] [MODULE] or NAME [MODULE]"
    )
    assert errors[1].startswith("ltosyms: WARNING: line 3 is longer than 65536 characters")
    assert errors[2:] == ["ltosyms: error: 1 of 4 queries failed"]
