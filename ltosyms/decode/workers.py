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
function that opens its answerer as it is (nothing is pickled but queries and answers).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import multiprocessing.context
import multiprocessing.queues
import os
import queue
import signal
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from ltosyms.errors import LtosymsError

T = TypeVar("T")  # one answer
A = TypeVar("A")  # what a worker says about what it opened

# Queries per batch: enough that a batch's trip between processes (~0.1 ms) is small beside
# its answers (~60 us each), few enough that the first answers come out at once.
BATCH_QUERIES = 256

# Batches out per worker: one being answered, the next ones waiting in its queue.
BATCHES_PER_WORKER = 4

# How often the main process, waiting for an answer, looks whether the worker still lives.
POLL_SECONDS = 0.5

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
    opening in this process would; an exception that is a bug, or a worker that dies, is
    a :class:`RuntimeError` (with the worker's traceback as a note).
    """

    def __init__(self, open_answerer: OpenAnswerer[T, A], jobs: int) -> None:
        if jobs < 2:
            raise ValueError("worker processes are for two jobs or more")
        context = multiprocessing.get_context("fork")
        self.about: A | None = None  # what the first worker to open said about it
        self._workers: list[_Worker] = []
        try:
            for _ in range(jobs):
                self._workers.append(_Worker(context, open_answerer))
        except BaseException:  # no process to be had, or Ctrl-C: none is left behind
            self.close()
            raise
        self._in_flight: deque[_Worker] = deque()
        self._limit = jobs * BATCHES_PER_WORKER

    def answers(
        self, blocks: Iterable[list[str]], input_waiting: Callable[[], bool]
    ) -> Iterator[T]:
        """The answers to the queries of ``blocks``, in order. ``input_waiting``: whether the
        next block is there to read without waiting (answers are taken back first if not)."""
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
        # The input ended: each worker closes what it opened (a session saves) and exits. One
        # that never got a batch reports here whether it could open at all.
        for worker in self._workers:
            worker.tasks.put(None)
        for worker in self._workers:
            self._receive(worker, ending=True)

    def _take_back(self) -> list[T]:
        return self._receive(self._in_flight.popleft())

    def _receive(self, worker: _Worker, *, ending: bool = False) -> list[T]:
        while True:
            try:
                message = worker.results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if worker.process.is_alive():
                    continue
                try:  # its last words may have come in just before it ended
                    message = worker.results.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if ending and worker.process.exitcode == 0:
                        return []
                    raise RuntimeError(
                        f"a worker process ended before its answers (exit status "
                        f"{worker.process.exitcode}); run with --jobs 1 to see why"
                    ) from None
            kind = message[0]
            if kind == "opened":
                if self.about is None:
                    self.about = message[1]
                continue
            if kind == "answers":
                answers: list[T] = message[1]
                return answers
            if kind == "done":
                return []
            if kind == "error":
                error: LtosymsError = message[1]
                raise error
            failure = RuntimeError(f"in a worker process: {message[1]}")
            failure.add_note(message[2])
            raise failure

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


class _Worker:
    """One worker process and its two queues (a queue's own thread writes to the pipe, so
    that neither side blocks the other with a large batch or answer)."""

    def __init__(
        self, context: multiprocessing.context.ForkContext, open_answerer: OpenAnswerer[Any, Any]
    ) -> None:
        self.tasks: multiprocessing.queues.Queue[list[str] | None] = context.Queue()
        self.results: multiprocessing.queues.Queue[tuple[Any, ...]] = context.Queue()
        self.process = context.Process(
            target=_work, args=(open_answerer, self.tasks, self.results, os.getpid()), daemon=True
        )
        self.process.start()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()
        for channel in (self.tasks, self.results):
            channel.cancel_join_thread()  # what is still queued is not wanted
            channel.close()


class _Orphaned(Exception):
    """The main process is gone (killed without a chance to stop its workers)."""


def _work(
    open_answerer: OpenAnswerer[Any, Any],
    tasks: multiprocessing.queues.Queue[list[str] | None],
    results: multiprocessing.queues.Queue[tuple[Any, ...]],
    parent: int,
) -> None:
    """A worker's life: open, answer each batch, close when the input ends, or when the
    main process is gone."""
    # Ctrl-C goes to the whole foreground process group; the main process handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with open_answerer() as (answer, about):
            results.put(("opened", about))
            while (batch := _next_batch(tasks, parent)) is not None:
                results.put(("answers", [answer(text) for text in batch]))
        results.put(("done",))
    except _Orphaned:
        results.cancel_join_thread()  # nobody reads what is queued: exit without it
    except LtosymsError as error:
        results.put(("error", error))
    except Exception as error:  # a bug: the main process raises it (exit 70)
        results.put(("bug", f"{type(error).__name__}: {error}", traceback.format_exc()))


def _next_batch(
    tasks: multiprocessing.queues.Queue[list[str] | None], parent: int
) -> list[str] | None:
    # The worker holds both ends of its queue's pipe (a fork inherits them): no end of
    # input would tell it that the main process died, its parent's pid does.
    while True:
        try:
            return tasks.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != parent:
                raise _Orphaned from None
