"""Queries answered by worker processes, each answer handed out in the order its query came.

A long stream of queries (the coverage PCs of a fuzzing run, every return address of an
image) spends its time per answer in the interpreter, one core at a time: N processes answer
about N times as many in the same time. Each worker opens what it answers with on its own
(its own session: an index connection is never carried across a fork) and answers batches of
queries; the main process reads the input, hands the batches out in turn and takes the
answers back in the same turn, so they come out in the order asked.

At most :data:`BATCHES_PER_WORKER` batches per worker are out at a time, so memory follows
the batch size, not the input. While the input is quiet, the answers already handed out are
taken back before the main process waits for more input: a program that writes one query
and waits for its answer gets it.

Workers are forked: they start at once, with everything imported, and each receives the
function that opens its answerer as it is (nothing is pickled but queries, answers and the
warnings a worker logs, which the main process logs once each). No process is left behind:
the main one stops its workers on every way out, a worker dies with the main process
(``PR_SET_PDEATHSIG``), and a worker that dies, even halfway through a message, is noticed
by the main process (a thread per worker reads its messages; the main one never blocks on a
pipe a dead process held).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.queues
import os
import queue
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from ltosyms.errors import LtosymsError

log = logging.getLogger(__name__)

T = TypeVar("T")  # one answer
A = TypeVar("A")  # what a worker says about what it opened

# Queries per batch: enough that a batch's trip between processes (~0.1 ms) is small beside
# its answers (~60 us each), few enough that the first answers come out at once.
BATCH_QUERIES = 256

# Batches out per worker: one being answered, the next ones waiting in its queue.
BATCHES_PER_WORKER = 4

# Most worker processes one run starts: each holds its own copy of the image's tables and
# four descriptors of the main process.
MAX_JOBS = 64

# How often a process waiting for the other looks whether it still lives.
POLL_SECONDS = 0.5

# Different warnings the main process logs for its workers (each once); past this many, the
# workers' warnings are dropped (a stream of bad input must not grow the memory of them).
WARNINGS_KEPT = 1000

# What opens a worker's answerer: a context manager giving the function that answers one
# query and what the worker says about it (closed when the input ends: a session saves).
OpenAnswerer = Callable[[], AbstractContextManager[tuple[Callable[[str], T], A]]]


class WorkerAnswers(Generic[T, A]):
    """``jobs`` worker processes answering queries with what ``open_answerer`` opens.

    ::

        with WorkerAnswers(open_answerer, jobs=2) as workers:
            for answer in workers.answers(blocks_of_queries, input_waiting):
                ...

    A worker that cannot open raises its :class:`~ltosyms.errors.LtosymsError` here, as
    opening in this process would (before any input is read); one that fails on a query
    after answering the queries before it in its batch raises after their answers; an
    exception that is a bug, or a worker that dies, is a :class:`RuntimeError` (with the
    worker's traceback as a note).
    """

    def __init__(self, open_answerer: OpenAnswerer[T, A], jobs: int) -> None:
        if not 2 <= jobs <= MAX_JOBS:
            raise ValueError(f"worker processes are for 2 to {MAX_JOBS} jobs")
        context = multiprocessing.get_context("fork")
        self.about: A | None = None  # what the first worker to open said about it
        self._workers: list[_Worker] = []
        self._warned: set[tuple[int, str]] = set()
        # Ctrl-C while a worker is forked would be raised in it too: held back until each has
        # set it aside (and until all are started here; one that came meanwhile is raised
        # when the mask is put back, and stops those started).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            try:
                for _ in range(jobs):
                    self._workers.append(_Worker(context, open_answerer, mask))
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        except OSError as error:  # no process or descriptor to be had
            self.close()
            raise LtosymsError(f"cannot start {jobs} worker processes: {error}") from None
        except BaseException:
            self.close()
            raise
        for worker in self._workers:
            worker.start_reading()
        self._in_flight: deque[_Worker] = deque()
        self._limit = jobs * BATCHES_PER_WORKER

    def answers(
        self, blocks: Iterable[list[str]], input_waiting: Callable[[], bool]
    ) -> Iterator[T]:
        """The answers to the queries of ``blocks``, in order. ``input_waiting``: whether the
        next block is there to read without waiting (answers are taken back first if not)."""
        for worker in self._workers:  # an image that cannot be opened is said at once
            self._receive(worker, until="opened")
        turn = itertools.cycle(self._workers)
        block_iterator = iter(blocks)
        while True:
            while self._in_flight and (len(self._in_flight) >= self._limit or not input_waiting()):
                yield from self._take_back()
            block = next(block_iterator, None)
            if block is None:
                break
            for start in range(0, len(block), BATCH_QUERIES):
                if len(self._in_flight) >= self._limit:
                    yield from self._take_back()
                worker = next(turn)
                worker.tasks.put(block[start : start + BATCH_QUERIES])
                self._in_flight.append(worker)
        while self._in_flight:
            yield from self._take_back()
        # The input ended: each worker closes what it opened (a session saves) and exits.
        for worker in self._workers:
            worker.tasks.put(None)
        for worker in self._workers:
            self._receive(worker, until="done")

    def _take_back(self) -> Iterator[T]:
        answers, failure = self._receive(self._in_flight.popleft(), until="answers")
        yield from answers
        if failure is not None:
            raise failure

    def _receive(self, worker: _Worker, *, until: str) -> tuple[list[T], BaseException | None]:
        """The worker's messages up to the next one of kind ``until``: its answers and what
        failed after them."""
        while True:
            message = worker.next_message()
            kind = message[0]
            self._log(message[-1])
            if kind == "opened" and self.about is None:
                self.about = message[1]
            if kind == "failed":
                failure: BaseException = message[1]
                raise failure
            if kind == until:
                return (message[1], message[2]) if kind == "answers" else ([], None)

    def _log(self, warnings: list[tuple[int, str]]) -> None:
        """A worker's warnings, each once (every worker meets the same damaged index)."""
        for warning in warnings:
            if warning not in self._warned and len(self._warned) < WARNINGS_KEPT:
                self._warned.add(warning)
                log.log(*warning)

    def close(self) -> None:
        """Stop the workers: at once unless they ended (on an error or Ctrl-C, what they
        answer is not wanted any more). Every one of them, whatever stopping one raises."""
        with contextlib.ExitStack() as stack:
            for worker in self._workers:
                stack.callback(worker.stop)

    def __enter__(self) -> WorkerAnswers[T, A]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bug(error: BaseException) -> RuntimeError:
    """``error``, an exception that is a bug, as the main process raises it (exit 70), its
    traceback a note (called where it is caught)."""
    failure = RuntimeError(f"in a worker process: {type(error).__name__}: {error}")
    failure.add_note(traceback.format_exc())
    return failure


class _Worker:
    """One worker process and its two queues (a queue's own thread writes to the pipe, so
    that neither side blocks the other with a large batch or answer), and the thread that
    reads its messages into an inbox."""

    def __init__(
        self,
        context: multiprocessing.context.ForkContext,
        open_answerer: OpenAnswerer[Any, Any],
        mask: set[int | signal.Signals],
    ) -> None:
        self.tasks: multiprocessing.queues.Queue[list[str] | None] = context.Queue()
        self.results: multiprocessing.queues.Queue[tuple[Any, ...]] = context.Queue()
        self.inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.process = context.Process(
            target=_work,
            args=(open_answerer, self.tasks, self.results, os.getpid(), mask),
            daemon=True,
        )
        self.process.start()
        self.reader: threading.Thread | None = None

    def start_reading(self) -> None:
        # Started once every worker is forked: no thread runs in this process at a fork.
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        # A worker that dies halfway through a message leaves this thread waiting for the
        # rest (every process holds the pipe's ends: no end of file comes), not the main one.
        try:
            while True:
                message = self.results.get()
                self.inbox.put(message)
                if message[0] in ("done", "failed"):
                    return
        except (EOFError, OSError, ValueError):
            return  # the queue closed under it: the main process stopped the worker
        except BaseException as error:  # a message that does not unpickle: a bug
            self.inbox.put(("failed", _bug(error), []))

    def next_message(self) -> tuple[Any, ...]:
        while True:
            try:
                return self.inbox.get(timeout=POLL_SECONDS)
            except queue.Empty:
                reading = self.reader is not None and self.reader.is_alive()
                if self.process.is_alive() and reading:
                    continue
            try:  # its last words may have come in just before it ended
                return self.inbox.get(timeout=2 * POLL_SECONDS)
            except queue.Empty:
                raise RuntimeError(
                    f"a worker process ended before its answers (exit status "
                    f"{self.process.exitcode}); run with --jobs 1 to see why"
                ) from None

    def stop(self) -> None:
        # SIGKILL, not SIGTERM: a process started with SIGTERM ignored passes that on to its
        # workers, and what they would answer is not wanted any more.
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        for channel in (self.tasks, self.results):
            channel.cancel_join_thread()  # what is still queued is not wanted
            channel.close()


class _Orphaned(Exception):
    """The main process is gone (killed without a chance to stop its workers)."""


class _Warnings(logging.Handler):
    """A worker's warnings, sent along with its next message instead of printed (the main
    process logs each once, in the order of the answers)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.taken: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.taken) < WARNINGS_KEPT:
            self.taken.append((record.levelno, record.getMessage()))

    def pop(self) -> list[tuple[int, str]]:
        taken, self.taken = self.taken, []
        return taken


def _work(
    open_answerer: OpenAnswerer[Any, Any],
    tasks: multiprocessing.queues.Queue[list[str] | None],
    results: multiprocessing.queues.Queue[tuple[Any, ...]],
    parent: int,
    mask: set[int | signal.Signals],
) -> None:
    """A worker's life: open, answer each batch, close when the input ends, or when the
    main process is gone."""
    # Ctrl-C goes to the whole foreground process group; the main process handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    _die_with(parent)
    # Warnings go to the main process with the next message; diagnostics below them (-v)
    # are printed here as they come.
    warnings = _Warnings()
    root = logging.getLogger()
    for handler in root.handlers:
        handler.addFilter(lambda record: record.levelno < logging.WARNING)
    root.addHandler(warnings)
    # Messages: ("opened", about, warnings), ("answers", answers, failure or None, warnings)
    # a batch, ("done", warnings) at the end, ("failed", exception, warnings).
    try:
        last: tuple[Any, ...] = ("done",)
        with open_answerer() as (answer, about):
            results.put(("opened", about, warnings.pop()))
            while (batch := _next_batch(tasks, parent)) is not None:
                answers: list[Any] = []
                try:
                    for text in batch:
                        answers.append(answer(text))
                except LtosymsError as error:  # the answers before it are written first
                    last = ("answers", answers, error)
                    break
                except Exception as error:
                    last = ("answers", answers, _bug(error))
                    break
                results.put(("answers", answers, None, warnings.pop()))
        # Sent once what was opened is closed (a session saves): the main process stops the
        # workers when it has it, and says the warnings of the close too.
        results.put((*last, warnings.pop()))
    except _Orphaned:
        results.cancel_join_thread()  # nobody reads what is queued: exit without it
    except LtosymsError as error:
        results.put(("failed", error, warnings.pop()))
    except Exception as error:
        results.put(("failed", _bug(error), warnings.pop()))


def _die_with(parent: int) -> None:
    """Be killed when the main process dies (Linux: ``prctl(PR_SET_PDEATHSIG)``), wherever
    this process is then (halfway through reading a batch, too)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before that was set
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # include/uapi/linux/prctl.h


def _next_batch(
    tasks: multiprocessing.queues.Queue[list[str] | None], parent: int
) -> list[str] | None:
    # Where the death signal cannot be set: the worker holds both ends of its queue's pipe
    # (a fork inherits them), so no end of input would tell it that the main process died;
    # its parent's pid does.
    while True:
        try:
            return tasks.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != parent:
                raise _Orphaned from None
