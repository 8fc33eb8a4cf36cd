"""Queries answered by worker processes (``ltosyms.decode.workers``, ``symbolize --jobs``):
the answers of every query in the order asked, whatever worker answered it; what a worker
cannot open, a bug in one and a worker that dies, each raised in the main process."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import SAMPLES
from elftools.elf.elffile import ELFFile

from ltosyms.decode import workers as workers_module
from ltosyms.decode.workers import BATCH_QUERIES, WorkerAnswers
from ltosyms.errors import CacheError, InputError

Opened = Iterator[tuple[Callable[[str], tuple[int, str]], str]]


@contextmanager
def tagging() -> Opened:
    """Answers a query with the worker's pid: which worker answered shows in the answer."""
    yield (lambda text: (os.getpid(), text.upper())), f"opened by {os.getpid()}"


def blocks_of(queries: list[str], size: int) -> list[list[str]]:
    return [queries[start : start + size] for start in range(0, len(queries), size)]


def test_answers_come_in_the_order_asked_from_every_worker() -> None:
    queries = [f"q{number}" for number in range(10 * BATCH_QUERIES + 7)]
    with WorkerAnswers(tagging, jobs=3) as workers:
        answers = list(workers.answers(blocks_of(queries, 1000), lambda: True))
        about = workers.about
    assert [text for _pid, text in answers] == [query.upper() for query in queries]
    # Batches go to the workers in turn: three processes, none of them this one.
    pids = [pid for pid, _text in answers]
    assert len(set(pids)) == 3 and os.getpid() not in pids
    assert pids[0] != pids[BATCH_QUERIES] != pids[2 * BATCH_QUERIES] != pids[0]
    assert (
        about is not None and about.startswith("opened by ") and about != f"opened by {os.getpid()}"
    )


def test_answers_are_taken_back_while_the_input_is_quiet() -> None:
    """A program that writes a query and waits for its answer gets it: with no input
    waiting, the answer comes before the next block is read."""
    read: list[int] = []

    def blocks() -> Iterator[list[str]]:
        for number in range(3):
            read.append(number)
            yield [f"q{number}"]

    with WorkerAnswers(tagging, jobs=2) as workers:
        taken = []
        for _pid, text in workers.answers(blocks(), lambda: False):
            taken.append((text, list(read)))
    assert taken == [("Q0", [0]), ("Q1", [0, 1]), ("Q2", [0, 1, 2])]


@contextmanager
def refusing() -> Opened:
    raise InputError("vmlinux: not an ELF file")
    yield  # pragma: no cover


@pytest.mark.parametrize("queries", [[], ["q1", "q2"]])
def test_a_worker_that_cannot_open_raises_its_error_here(queries: list[str]) -> None:
    with (
        WorkerAnswers(refusing, jobs=2) as workers,
        pytest.raises(InputError, match="not an ELF file"),
    ):
        list(workers.answers([queries], lambda: True))


@contextmanager
def buggy() -> Opened:
    def answer(text: str) -> tuple[int, str]:
        if text == "bad":
            raise KeyError(text)
        return os.getpid(), text

    yield answer, "buggy"


def test_a_bug_in_a_worker_is_an_internal_error_with_its_traceback() -> None:
    with (
        WorkerAnswers(buggy, jobs=2) as workers,
        pytest.raises(RuntimeError, match="in a worker process: KeyError: 'bad'") as raised,
    ):
        list(workers.answers([["good", "bad"]], lambda: True))
    assert any("Traceback" in note and "KeyError" in note for note in raised.value.__notes__)


@contextmanager
def dying() -> Opened:
    def answer(text: str) -> tuple[int, str]:
        if text == "die":
            os._exit(9)
        return os.getpid(), text

    yield answer, "dying"


def test_a_worker_that_dies_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers_module, "POLL_SECONDS", 0.05)
    with (
        WorkerAnswers(dying, jobs=2) as workers,
        pytest.raises(RuntimeError, match="ended before its answers \\(exit status 9\\)"),
    ):
        list(workers.answers([["die"], ["fine"]], lambda: True))


@pytest.mark.parametrize("jobs", [1, workers_module.MAX_JOBS + 1])
def test_workers_are_two_to_max_jobs(jobs: int) -> None:
    with pytest.raises(ValueError, match="for 2 to 64 jobs"):
        WorkerAnswers(tagging, jobs=jobs)


def test_an_image_that_cannot_be_opened_is_said_before_any_input_is_read() -> None:
    read: list[str] = []

    def blocks() -> Iterator[list[str]]:
        read.append("a block")
        yield ["q"]

    with (
        WorkerAnswers(refusing, jobs=2) as workers,
        pytest.raises(InputError, match="not an ELF file"),
    ):
        next(iter(workers.answers(blocks(), lambda: False)))
    assert read == []


@contextmanager
def failing_at_stop() -> Opened:
    def answer(text: str) -> tuple[int, str]:
        if text == "stop":
            raise CacheError("cache directory: gone")
        return os.getpid(), text

    yield answer, "failing"
    logging.getLogger("ltosyms.index.store").warning("closed after %s", "a failure")


def test_the_answers_before_a_failing_query_are_handed_out_before_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As one process writes them: every answer before the query that failed, then the
    error (a CacheError: every query after it would fail alike), and what the worker
    warned while closing."""
    queries = [f"q{number}" for number in range(5)] + ["stop", "never"]
    taken: list[str] = []
    with (
        WorkerAnswers(failing_at_stop, jobs=2) as workers,
        pytest.raises(CacheError, match="gone"),
    ):
        for _pid, text in workers.answers([queries], lambda: True):
            taken.append(text)
    assert taken == queries[:5]
    assert [r.getMessage() for r in caplog.records] == ["closed after a failure"]


def _refuse() -> None:
    raise TypeError("refused")


class Unpicklable:
    """An answer that cannot be made again on the other side."""

    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return _refuse, ()


@contextmanager
def unpicklable() -> Iterator[tuple[Callable[[str], Unpicklable], None]]:
    yield (lambda text: Unpicklable()), None


def test_an_answer_that_does_not_unpickle_is_an_internal_error() -> None:
    with (
        WorkerAnswers(unpicklable, jobs=2) as workers,
        pytest.raises(RuntimeError, match="in a worker process: TypeError: refused"),
    ):
        list(workers.answers([["q"]], lambda: True))


IGNORING_SIGTERM = """
import os, signal
from contextlib import contextmanager
from ltosyms.decode.workers import WorkerAnswers

@contextmanager
def tagging():
    yield (lambda text: text), None

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as `trap '' TERM` leaves a program
with WorkerAnswers(tagging, jobs=2) as workers:
    for answer in workers.answers([["q"] * 10], lambda: True):
        break  # stopped early: the workers wait for more
print("stopped")
"""


def test_workers_are_stopped_when_sigterm_is_ignored() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IGNORING_SIGTERM], capture_output=True, timeout=20, check=False
    )
    assert (result.returncode, result.stdout) == (0, b"stopped\n"), result.stderr


@contextmanager
def warning() -> Opened:
    logging.getLogger("ltosyms.index.store").warning("index table %s is damaged", "T")

    def answer(text: str) -> tuple[int, str]:
        logging.getLogger("ltosyms.context.modules").warning("module %s: damaged", text)
        return os.getpid(), text

    yield answer, "warning"


def test_what_workers_warn_is_logged_here_once_each(caplog: pytest.LogCaptureFixture) -> None:
    queries = ["m1", "m2", "m1"] * BATCH_QUERIES
    with WorkerAnswers(warning, jobs=3) as workers:
        assert len(list(workers.answers([queries], lambda: True))) == len(queries)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "index table T is damaged"),
        ("WARNING", "module m1: damaged"),
        ("WARNING", "module m2: damaged"),
    ]


# -- symbolize --jobs N: the output of --jobs 1, byte for byte -------------------------------


def symbolize(*arguments: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ltosyms", "symbolize", *arguments],
        input=stdin,
        capture_output=True,
        check=False,
    )


def function_starts(vmlinux: Path) -> list[int]:
    with open(vmlinux, "rb") as file:
        return sorted(
            symbol["st_value"]
            for symbol in ELFFile(file).get_section_by_name(".symtab").iter_symbols()
            if symbol["st_info"]["type"] == "STT_FUNC" and symbol["st_size"] > 8
        )


@pytest.mark.parametrize("form", [[], ["--jsonl"], ["--json"]])
def test_symbolize_with_workers_writes_what_one_process_writes(
    form: list[str], tmp_path: Path
) -> None:
    vmlinux = SAMPLES / "vmlinux-gcc"
    starts = function_starts(vmlinux)
    queries = [f"{start + 5:x}" for start in starts] * 20  # ~1,000 queries, a few batches
    queries[7] = "not a query!"
    queries[-3] = "nosuchfunction+0x1/0x8 [nosuchmodule]"
    stdin = "".join(query + "\n" for query in queries).encode()
    arguments = [str(vmlinux), "-R", "--cache-dir", str(tmp_path / "cache"), *form]
    alone = symbolize(*arguments, stdin=stdin)
    assert alone.returncode == 1
    assert alone.stderr.decode().splitlines()[-1] == (
        f"ltosyms: error: 2 of {len(queries)} queries failed"
    )
    for jobs in ("2", "3"):
        shared = symbolize(*arguments, "--jobs", jobs, stdin=stdin)
        assert (shared.returncode, shared.stdout, shared.stderr) == (
            alone.returncode,
            alone.stdout,
            alone.stderr,
        )
    if form == ["--json"]:
        document = json.loads(alone.stdout)
        assert len(document["results"]) == len(queries) - 2
        assert [error["query"] for error in document["errors"]] == [queries[7], queries[-3]]


def test_symbolize_takes_at_most_max_jobs() -> None:
    result = symbolize(str(SAMPLES / "vmlinux-gcc"), "--no-cache", "--jobs", "65", stdin=b"")
    assert result.returncode == 2
    assert b"--jobs" in result.stderr and b"1<=x<=64" in result.stderr


def test_symbolize_with_workers_reports_an_unusable_vmlinux_once(tmp_path: Path) -> None:
    not_elf = tmp_path / "vmlinux"
    not_elf.write_bytes(b"garbage" * 100)
    result = symbolize(str(not_elf), "--no-cache", "--jobs", "2", stdin=b"0x1000\n")
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [f"ltosyms: error: {not_elf}: not an ELF file"]


ORPHANING = """
import os, signal, sys
from contextlib import contextmanager
from ltosyms.decode.workers import BATCH_QUERIES, WorkerAnswers

@contextmanager
def tagging():
    yield (lambda text: os.getpid()), None

workers = WorkerAnswers(tagging, jobs=2)
answers = workers.answers([["q"] * (2 * BATCH_QUERIES)], lambda: True)
pids = {next(answers) for _ in range(BATCH_QUERIES + 1)}
print(*sorted(pids), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no chance to stop them
"""


def test_workers_end_when_the_main_process_is_killed(tmp_path: Path) -> None:
    # Into a file, not a pipe: workers left behind would hold a pipe open, and wait for them.
    printed = tmp_path / "pids"
    with open(printed, "wb") as out:
        result = subprocess.run([sys.executable, "-c", ORPHANING], stdout=out, check=False)
    assert result.returncode == -9
    pids = [int(pid) for pid in printed.read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10 * workers_module.POLL_SECONDS + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie of another parent counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
