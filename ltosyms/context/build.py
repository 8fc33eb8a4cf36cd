"""Build the whole index of an image ahead of time, with a pool of worker processes.

``ltosyms index`` parses every compilation unit, so no later decode has to, and has the
image's :class:`~ltosyms.context.ImageContext` work out what every decode reads besides units
(the symbol table, the unit map, and for a vmlinux its patch tables and build facts). The
work is embarrassingly parallel: each worker opens the image once and parses the CUs it is
sent; only the main process writes the index, in batches, one transaction each (WAL). So:

* **Interrupting** (Ctrl-C, SIGTERM, a kill) loses at most the batch in flight; everything
  committed stays valid, and the next ``ltosyms index`` (or decode) resumes from there: CUs
  already stored are not parsed again.
* **Decodes may run at the same time** against the same image: they read what is committed
  and add the CUs they parse themselves (``INSERT OR IGNORE``; the same CU gives the same bytes).
* The index is marked **complete** (header ``complete = 1``) only when every CU is stored.
* Then the image's **address table** (:mod:`ltosyms.dwarf.address_table`) is written: every
  unit and the unit map in one file read in place, so that a lookup loads no unit. The
  workers work out each unit's chain map next to its parse (most of the table's cost); the
  main process collects the units as they come back. Units stored by an earlier run are read
  back from the index instead. An index whose table is whole is left as it is; a damaged or
  foreign table is refused on open and written again here.

Workers start with ``spawn``: nothing of the parent (open SQLite handles, locks, threads) is
inherited, and they ignore SIGINT so that Ctrl-C reaches the main process alone, which stops
the pool. Big CUs are sent first, so no worker is left with a big one at the end.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ltosyms.context.image import ImageContext
from ltosyms.elf.image import KernelImage, open_image
from ltosyms.errors import CacheError, LtosymsError
from ltosyms.index import kinds
from ltosyms.index.answers import Answers
from ltosyms.index.encoding import StoredValueError
from ltosyms.index.kinds import Kind
from ltosyms.index.store import CacheLocation, IndexStore, open_store, pack_blob

if TYPE_CHECKING:
    from ltosyms.dwarf import AddressTableBuilder, ChainMap, UnitParser

log = logging.getLogger(__name__)

# A batch is committed when it holds this many CUs, this many bytes, or is this old.
BATCH_UNITS = 64
BATCH_BYTES = 32 << 20
BATCH_SECONDS = 2.0

# Fewer CUs than this are parsed in the main process: starting workers costs ~1 s, more than
# parsing a module's few CUs (a vmlinux CU takes ~10-30 ms).
IN_PROCESS_UNITS = 16

# Called as progress(done, total) after every batch, CUs counted (already stored ones included).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class CuCodec:
    """How the CUs of an image are listed and parsed into their stored form.

    ``unit_offsets`` runs in the main process, on the image's context (the DWARF resolver's
    unit map lists the units, and the context keeps the map); ``parse_cu`` runs in the
    workers and must be a module-level function: they receive it by name. ``format`` is the
    units' format the index header names (:data:`ltosyms.index.kinds.UNIT_FORMAT`)."""

    format: str
    unit_offsets: Callable[[ImageContext], Iterable[int]]
    parse_cu: Callable[[KernelImage, int], bytes]
    # The same, with the unit's chain map for the address table: what the workers run when
    # the table is to be written (None: the codec's units make no table).
    parse_cu_for_table: Callable[[KernelImage, int], tuple[bytes, ChainMap]] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexBuild:
    """What one ``build_index`` did."""

    image_path: Path
    index_path: Path
    build_id: str | None
    cu_total: int
    cu_parsed: int  # parsed in this run
    cu_reused: int  # found in the index already
    cu_failed: tuple[tuple[int, str], ...] = field(default=())  # (offset, one-line error)
    symbols_stored: bool = False  # written in this run
    whole_image_stored: bool = False  # the WholeImageKind's rows, written in this run
    table_bytes: int = 0  # the address table's size, when the index holds one
    table_written: bool = False  # written in this run
    seconds: float = 0.0
    size_bytes: int = 0

    @property
    def complete(self) -> bool:
        return not self.cu_failed and self.cu_parsed + self.cu_reused == self.cu_total


def default_jobs() -> int:
    """Worker processes: the CPUs this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def build_index(
    image_path: str | os.PathLike[str],
    location: CacheLocation,
    codec: CuCodec,
    *,
    jobs: int | None = None,
    progress: Progress | None = None,
    whole_image: WholeImageKind | None = None,
) -> IndexBuild:
    """Store the symbol table and every CU of the image at ``image_path`` in its index (and
    ``whole_image``'s rows, unless the index keeps them already).

    Raises :class:`~ltosyms.errors.CacheError` when the index cannot be opened or written
    (the index is the whole point here), :class:`~ltosyms.errors.InputError` for a bad image.
    """
    started = time.monotonic()
    jobs = max(jobs or default_jobs(), 1)
    with open_image(image_path) as image:
        store = open_store(image, location, cu_format=codec.format, required=True)
        assert store is not None  # required=True raises instead
        try:
            return _build(
                context=ImageContext(image=image, answers=Answers(store, image)),
                store=store,
                codec=codec,
                jobs=jobs,
                progress=progress,
                started=started,
                whole_image=whole_image,
            )
        finally:
            store.close()


def _build(
    *,
    context: ImageContext,
    store: IndexStore,
    codec: CuCodec,
    jobs: int,
    progress: Progress | None,
    started: float,
    whole_image: WholeImageKind | None,
) -> IndexBuild:
    image = context.image
    if store.read_only:
        raise CacheError(f"{store.path}: the cache directory is not writable")
    if not store.check_integrity():
        log.info("index %s was rebuilt after a failed integrity check", store.path)
    offsets = sorted(set(codec.unit_offsets(context)))
    context.save()  # the unit map, when listing the units made it
    stored = store.stored_cu_offsets()
    missing = [offset for offset in offsets if offset not in stored]
    reused = len(offsets) - len(missing)
    log.info(
        "%s: %d CUs, %d already indexed, %d to parse with %d workers",
        image.path,
        len(offsets),
        reused,
        len(missing),
        jobs,
    )
    writer = _BatchWriter(store, len(offsets), reused, progress)
    table = _TableMaker.wanted(context, codec)
    failed: list[tuple[int, str]] = []
    symbols_stored = []

    def store_tables_meanwhile() -> None:
        # Runs while the workers start and parse their first CUs: what every decode reads
        # besides units, worked out by the image's context and written to its index.
        context.keep_tables()
        context.save()
        if not context.symbols_from_index and store.usable:
            symbols_stored.append(True)

    # A whole-image walk (the diff's census), taken by a worker of its own while the others
    # parse units.
    censuses = None
    if whole_image is not None:
        done = store.get_derived(whole_image.kind.stored_name, whole_image.done_key(image))
        censuses = _WholeImage(take=whole_image.rows) if done is None else None
    try:
        for outcome in _parse_all(
            image,
            codec,
            _biggest_first(image, offsets, missing),
            jobs,
            store_tables_meanwhile,
            censuses,
            with_chains=table is not None,
        ):
            if outcome.error is not None:
                failed.append((outcome.cu_offset, outcome.error))
                log.warning(
                    "%s: CU at %#x not indexed: %s", image.path, outcome.cu_offset, outcome.error
                )
                writer.skip()
            else:
                writer.add(outcome)
                if table is not None:
                    table.add_parsed(outcome)
    finally:
        # Results already received are valid: keep them, also on Ctrl-C.
        writer.flush()
    if whole_image is not None and censuses is not None and censuses.rows:
        store.put_derived(whole_image.kind.stored_name, censuses.rows)
    if not store.usable:
        raise CacheError(f"{store.path}: the index could not be written")
    complete = not failed and set(offsets) <= store.stored_cu_offsets()
    if complete:
        store.set_meta("complete", "1")
    table_written = False
    if complete and table is not None:
        table_written = table.write([offset for offset in offsets if offset not in missing])
    if not store.usable:
        raise CacheError(f"{store.path}: the index could not be written")
    store.close()  # checkpoints the write-ahead log into the file: the size is final
    return IndexBuild(
        image_path=image.path,
        index_path=store.path,
        build_id=image.build_id,
        cu_total=len(offsets),
        cu_parsed=writer.written,
        cu_reused=reused,
        cu_failed=tuple(failed),
        symbols_stored=any(symbols_stored),
        whole_image_stored=censuses is not None and bool(censuses.rows),
        table_bytes=_file_size(store.table_path(kinds.ADDRESS_TABLE.stored_name)),
        table_written=table_written,
        seconds=time.monotonic() - started,
        size_bytes=store.size_bytes(),
    )


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _TableMaker:
    """Collects the units of an image as they are parsed, then writes its address table."""

    def __init__(self, context: ImageContext, builder: AddressTableBuilder) -> None:
        self._context = context
        self._builder = builder
        self._added: set[int] = set()
        self.usable = True  # False once a unit could not be added: no table then

    @classmethod
    def wanted(cls, context: ImageContext, codec: CuCodec) -> _TableMaker | None:
        """A maker when the codec's units make a table and the index holds no whole one."""
        if (
            codec.parse_cu_for_table is None
            or context.answers is None
            or context.dwarf is None
            or context.address_table is not None
        ):
            return None
        from ltosyms.dwarf import AddressTableBuilder
        from ltosyms.index.codecs import address_table_key

        return cls(context, AddressTableBuilder(address_table_key(context.image)))

    def add_parsed(self, outcome: _Outcome) -> None:
        """Keep a unit a worker parsed (its stored bytes and chain map) for the table."""
        assert outcome.packed is not None
        try:
            data = kinds.UNITS.decode(zlib.decompress(outcome.packed), self._context.image)
        except (zlib.error, StoredValueError) as error:
            log.warning("unit %#x is left out, so no address table: %s", outcome.cu_offset, error)
            self.usable = False
            return
        self._builder.add(data, outcome.chains)
        self._added.add(outcome.cu_offset)

    def write(self, offsets: Sequence[int]) -> bool:
        """Add the units of ``offsets`` not parsed in this run (stored by an earlier one),
        then write the table; False when it could not be made."""
        answers, dwarf = self._context.answers, self._context.dwarf
        assert answers is not None and dwarf is not None
        if not self.usable:
            return False
        wanted = [offset for offset in offsets if offset not in self._added]
        stored = answers.get_many(kinds.UNITS, wanted)
        if len(stored) != len(wanted):
            log.warning("%d stored units do not load: no address table", len(wanted) - len(stored))
            return False
        for data in stored.values():
            self._builder.add(data)
        try:
            table = self._builder.table(dwarf.cu_map)
        except CacheError as error:
            log.warning("no address table: %s", error)
            return False
        answers.put(kinds.ADDRESS_TABLE, None, table)
        self._keep_outer_names()
        answers.save()
        return True

    def _keep_outer_names(self) -> None:
        # The table's lookups name the outermost entry of each chain from the ELF symbols
        # (ltosyms.elf.outer_names): worked out here once, not by the first run after.
        from ltosyms.elf.outer_names import OuterNames
        from ltosyms.stores import remembered

        context = self._context
        remembered(
            context.memo(kinds.OUTER_NAMES), None, lambda: OuterNames.from_symbols(context.symbols)
        )


def _biggest_first(image: KernelImage, offsets: Sequence[int], wanted: Sequence[int]) -> list[int]:
    """``wanted`` by decreasing CU size (a CU spans to the next of all ``offsets``)."""
    info = image.get_section(".debug_info")
    ordered = sorted(offsets)
    end = info.size if info is not None else (ordered[-1] + 1 if ordered else 0)
    following = dict(zip(ordered, [*ordered[1:], end], strict=True))
    return sorted(wanted, key=lambda offset: (offset - following.get(offset, offset), offset))


class _BatchWriter:
    """Collects parsed CUs and commits them in batches."""

    def __init__(self, store: IndexStore, total: int, done: int, progress: Progress | None) -> None:
        self._store = store
        self._total = total
        self._done = done
        self._progress = progress
        self._pending: list[tuple[int, int, bytes]] = []
        self._pending_bytes = 0
        self._since = time.monotonic()
        self.written = 0
        if progress is not None:
            progress(done, total)

    def add(self, outcome: _Outcome) -> None:
        assert outcome.packed is not None
        self._pending.append((outcome.cu_offset, outcome.crc, outcome.packed))
        self._pending_bytes += len(outcome.packed)
        if (
            len(self._pending) >= BATCH_UNITS
            or self._pending_bytes >= BATCH_BYTES
            or time.monotonic() - self._since >= BATCH_SECONDS
        ):
            self.flush()

    def skip(self) -> None:
        self._done += 1

    def flush(self) -> None:
        if self._pending:
            self._store.put_packed(self._pending)
            self.written += len(self._pending)
            self._done += len(self._pending)
            self._pending = []
            self._pending_bytes = 0
        self._since = time.monotonic()
        if self._progress is not None:
            self._progress(self._done, self._total)


# -- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Outcome:
    """One CU parsed (and packed, see :func:`pack_blob`) in a worker, or why it failed."""

    cu_offset: int
    crc: int = 0
    packed: bytes | None = None
    error: str | None = None
    chains: ChainMap | None = None  # for the address table, when asked


def _parse_all(
    image: KernelImage,
    codec: CuCodec,
    offsets: list[int],
    jobs: int,
    meanwhile: Callable[[], None],
    whole_image: _WholeImage | None = None,
    *,
    with_chains: bool = False,
) -> Iterator[_Outcome]:
    """Parse ``offsets``; call ``meanwhile`` once the workers are busy; take ``whole_image``'s
    rows in a worker of its own. ``with_chains``: each outcome carries the unit's chain map too
    (``codec.parse_cu_for_table``)."""
    parse = _Parse(
        parse_cu=codec.parse_cu,
        parse_cu_for_table=codec.parse_cu_for_table if with_chains else None,
    )
    if jobs == 1 or len(offsets) < IN_PROCESS_UNITS:
        meanwhile()
        if whole_image is not None:
            whole_image.collect(lambda: whole_image.take(image))
        for cu_offset in offsets:
            yield _parse_one(parse, image, cu_offset)
        return
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker that dies or cannot start
    # (spawn re-imports __main__) breaks the pool with an error instead of being respawned
    # forever.
    executor = ProcessPoolExecutor(
        max_workers=min(jobs, len(offsets)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_start,
        initargs=(str(image.path), parse),
    )
    pending = iter(offsets)
    running: set[Future[_Outcome]] = set()
    # Not a task of the pool: on Ctrl-C a task runs to its end (the census: seconds, not the
    # milliseconds of a unit), and this process can be stopped at once.
    whole = _WholeImageProcess(image, whole_image.take) if whole_image is not None else None
    try:
        # A few CUs per worker in flight: enough to keep them busy, few to cancel on Ctrl-C.
        for cu_offset in itertools.islice(pending, jobs * 4):
            running.add(executor.submit(_worker_parse, cu_offset))
        meanwhile()
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
                for cu_offset in itertools.islice(pending, 1):
                    running.add(executor.submit(_worker_parse, cu_offset))
        if whole_image is not None and whole is not None:
            whole_image.collect(whole.result)
            whole = None
    except BrokenProcessPool:
        # A dead worker shows up in the result of its CU or, if the pool noticed first, in the
        # next submit: one error either way.
        raise CacheError(
            f"{image.path}: a worker process died; index with --jobs 1 to see why"
        ) from None
    finally:
        # On Ctrl-C or an error: drop what has not started. Workers ignore SIGINT, finish
        # the CU in hand (milliseconds) and exit.
        if whole is not None:
            whole.stop()
        executor.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Parse:
    """What a worker runs per unit: the codec's functions (module-level: sent by name)."""

    parse_cu: Callable[[KernelImage, int], bytes]
    parse_cu_for_table: Callable[[KernelImage, int], tuple[bytes, ChainMap]] | None


def _parse_one(parse: _Parse, image: KernelImage, cu_offset: int) -> _Outcome:
    chains = None
    try:
        if parse.parse_cu_for_table is not None:
            raw, chains = parse.parse_cu_for_table(image, cu_offset)
        else:
            raw = parse.parse_cu(image, cu_offset)
        crc, packed = pack_blob(raw)
    except LtosymsError as error:
        return _Outcome(
            cu_offset=cu_offset, error=str(error).splitlines()[0] or type(error).__name__
        )
    except Exception as error:  # a bug in one CU must not lose the work on all the others
        log.debug("CU %#x", cu_offset, exc_info=True)
        return _Outcome(
            cu_offset=cu_offset, error=f"internal error: {type(error).__name__}: {error}"
        )
    return _Outcome(cu_offset=cu_offset, crc=crc, packed=packed, chains=chains)


class _WorkerState:
    """Per worker process: the image it opened and the parse function it was given."""

    image: KernelImage | None = None
    parse: _Parse | None = None


_worker = _WorkerState()


def _worker_start(image_path: str, parse: _Parse) -> None:
    # Ctrl-C goes to the whole foreground process group; the main process handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker.image = open_image(image_path)
    _worker.parse = parse


def _worker_parse(cu_offset: int) -> _Outcome:
    assert _worker.image is not None and _worker.parse is not None
    return _parse_one(_worker.parse, _worker.image, cu_offset)


# -- whole-image values: the diff census ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WholeImageKind:
    """Values of one stored kind worked out from the whole image at once, by a worker of its
    own (the diff's census: :mod:`ltosyms.diff.stored`). Both functions are module-level (a
    worker receives them by name): ``done_key`` is the stored key whose row means there is
    nothing to do, ``rows`` the stored ``(key, bytes)`` rows."""

    kind: Kind[Any, Any]
    done_key: Callable[[KernelImage], str]
    rows: Callable[[KernelImage], list[tuple[str, bytes]]]


@dataclass(slots=True)
class _WholeImage:
    """Rows of one kind worked out from the whole image, and the rows once taken."""

    take: Callable[[KernelImage], list[tuple[str, bytes]]]
    rows: list[tuple[str, bytes]] = field(default_factory=list)

    def collect(self, result: Callable[[], list[tuple[str, bytes]]]) -> None:
        """Keep the rows ``result`` gives; one image's census failing fails no index."""
        try:
            self.rows = result()
        except LtosymsError as error:
            log.warning("not indexed: %s", str(error).splitlines()[0])


class _WholeImageProcess:
    """``take(image)`` in a process of its own (spawned, SIGINT ignored, as the workers are),
    started at once; :meth:`result` waits for its rows, :meth:`stop` ends it."""

    def __init__(self, image: KernelImage, take: Callable[[KernelImage], list[tuple[str, bytes]]]):
        context = multiprocessing.get_context("spawn")
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            # Not a daemon: the census of a large image forks workers of its own.
            target=_whole_image_process,
            args=(str(image.path), take, sender),
        )
        self._process.start()
        sender.close()  # the child holds the only sending end: its death ends recv()

    def result(self) -> list[tuple[str, bytes]]:
        try:
            outcome: tuple[str, object] = self._receiver.recv()
        except (EOFError, OSError):
            raise CacheError("the process taking the whole image's values died") from None
        finally:
            self._receiver.close()
            self._process.join()
        status, value = outcome
        if status != "rows" or not isinstance(value, list):
            raise CacheError(str(value))
        return value

    def stop(self) -> None:
        self._process.terminate()
        self._process.join()
        self._receiver.close()


def _whole_image_process(
    image_path: str,
    take: Callable[[KernelImage], list[tuple[str, bytes]]],
    sender: Connection,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with open_image(image_path) as image:
            outcome: tuple[str, object] = ("rows", take(image))
    except LtosymsError as error:
        outcome = ("error", str(error).splitlines()[0] or type(error).__name__)
    except Exception as error:  # a bug here must not lose the units of the index
        outcome = ("error", f"internal error: {type(error).__name__}: {error}")
    sender.send(outcome)
    sender.close()


def dwarf_codec() -> CuCodec:
    """The DWARF layer's units, in the format decodes read them."""
    return CuCodec(
        format=kinds.UNIT_FORMAT,
        unit_offsets=dwarf_unit_offsets,
        parse_cu=parse_dwarf_unit,
        parse_cu_for_table=parse_dwarf_unit_for_table,
    )


# -- the DWARF of an image, parsed in a worker process -----------------------------------------

# One parser per image and process: a worker is given many units of the same image, and the
# parser's caches (unit list, abbreviation tables, compiled code) serve them all.
_parsers: weakref.WeakKeyDictionary[KernelImage, UnitParser] = weakref.WeakKeyDictionary()


def _parser_for(image: KernelImage) -> UnitParser:
    parser = _parsers.get(image)
    if parser is None:
        from ltosyms.dwarf import UnitParser
        from ltosyms.elf.debug_sections import dwarf_sections

        parser = _parsers[image] = UnitParser(dwarf_sections(image))
    return parser


def dwarf_unit_offsets(context: ImageContext) -> list[int]:
    """The offset of every unit with code, in .debug_info order (what an index parses)."""
    return [] if context.dwarf is None else context.dwarf.unit_offsets()


def parse_dwarf_unit(image: KernelImage, cu_offset: int) -> bytes:
    """The stored form (:data:`ltosyms.index.kinds.UNITS`) of one unit, parsed from DWARF."""
    return kinds.UNITS.encode(_parser_for(image).unit(cu_offset))


def parse_dwarf_unit_for_table(image: KernelImage, cu_offset: int) -> tuple[bytes, ChainMap]:
    """:func:`parse_dwarf_unit`, and the unit's chain map for the address table (worked out
    here, in the worker, from the unit just parsed)."""
    from ltosyms.dwarf import chain_map

    data = _parser_for(image).unit(cu_offset)
    return kinds.UNITS.encode(data), chain_map(data)
