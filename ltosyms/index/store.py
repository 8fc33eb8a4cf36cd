"""The on-disk index of one kernel image: one SQLite file per build, under the cache directory.

The index stores bytes and decides nothing: what they mean is :mod:`ltosyms.index.kinds`'
(and only :mod:`ltosyms.index.answers` talks to this module for the stages). It keeps, per
image, what is expensive to compute and never changes for a given build: one compressed blob
per DWARF compilation unit (the ``cu`` table, by unit offset), and values of the other kinds
by kind and key (the ``derived`` table): the unit map, the call instruction ending at a
return address, the inline chain at an address, the analysis of a ``Code:`` line, boot-patch
tables, build facts. Every later decode against the same build is served from the file. The
symbol table, a multi-megabyte table read on every run, is a file of its own next to the
database (``<index>.symbols-N.table``), memory-mapped so that a decode reads only the pages
its lookups touch.

**Where.** ``$LTOSYMS_CACHE_DIR``, else ``$XDG_CACHE_HOME/ltosyms`` (XDG Base Directory spec:
only an absolute ``XDG_CACHE_HOME`` counts), else ``~/.cache/ltosyms``; ``--cache-dir`` beats
them all. One file per image, named by its key and the schema version:
``<key>.ltosyms-v<N>.sqlite``. The key is the GNU build id and a fingerprint of the file (its
size, headers and symbol table: :func:`image_fingerprint`), so a rebuilt vmlinux at the same
path never reuses a stale index, a copied or re-downloaded one reuses the right one (the build
id names the build, as debuginfod keys it), and another file carrying the same build id gets
an index of its own, with a warning. Images without a build id are keyed by a digest of their
resolved path, size, mtime and ELF + section headers.

**Safety.** Several processes may decode against the same image at once:

* the file is created complete (schema and header written into a temporary file, then renamed
  into place), so a file at the final name without a valid header is never "half made";
* WAL journal, ``busy_timeout``, ``INSERT OR IGNORE`` (every writer computes the same bytes for
  a key, so whoever comes first wins); a killed writer loses at most its open transaction;
  nothing waits for the disk (``synchronous=OFF``, a cache's trade): a power loss may leave
  a file half written, which the checks below find, and it is rebuilt;
* creating or discarding a file happens under an ``flock`` on ``<name>.lock``, so no process
  can attach a stale ``-wal`` file to a fresh database;
* on open, the header must name our magic, schema version, the image key and the units'
  format; each CU blob and row carries a CRC-32. A file that fails any check, or that SQLite
  reports as malformed at any time, is discarded with a warning and rebuilt. A table file is
  checked whole against its CRC-32 when it is new or changed (its inode, size, mtime or ctime
  differ from when it was last found intact), and not used when it differs.

**Failure policy.** A cache is an optimisation, so a cache problem never stops a decode:
when the directory cannot be created, read or written, :func:`open_store` logs a warning and
returns ``None`` (decode without cache) -- unless the user named the directory on the command
line (``--cache-dir``, ``explicit=True``) or the caller needs the cache (``ltosyms index``,
``required=True``): then it raises :class:`~ltosyms.errors.CacheError` (exit code 4), because
silently ignoring a directory the user asked for hides their mistake. A directory that can be
read but not written serves an existing index read-only.

**Never touched:** anything outside the cache directory, and in it anything but files whose
name this module makes (``<key>.ltosyms-v<N>.sqlite`` and its ``-wal``, ``-shm``, ``.lock``,
``.tmp`` and ``.<kind>.table`` companions; ``<build id>.ltosyms-v<N>.fingerprints``, the
fingerprints taken of the files with that build id, each with the stamp of the file it was
taken of, so that an unchanged file is not read again). A non-regular file (symlink, directory,
FIFO) at an index name is left alone and the cache is not used: the lock and table files are
opened with ``O_NOFOLLOW`` (and read only when regular), temporary files are created with
``O_EXCL`` (:func:`_temporary_file`), and a writable cache directory must belong to the user
(one another user owns could hold their links).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import mmap
import os
import re
import sqlite3
import stat
import struct
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ltosyms import __version__
from ltosyms.elf.image import KernelImage
from ltosyms.errors import CacheError
from ltosyms.index.table_check import AHEAD_BYTES, ChecksumAhead, MappedTable

log = logging.getLogger(__name__)

# 2: the derived table (call sites); 3: every kind declared in ltosyms.index.kinds, the unit
# map and outer names kinds of their own (no negative unit keys), table files checked whole;
# 4: the fingerprint in the name is two CRC-32s, not SHA-1 (an index of version 3 would
# otherwise be taken for one of another build with the same build id, and warned about);
# 5: `derived` is a rowid table with its (kind, key) index, no longer WITHOUT ROWID: there a
# row's key lives with its data, and SQLite reads a row whose data overflows its page whole to
# compare keys with it, so every search that passed the megabyte rows copied them (a lookup
# took 50-60 us, now 2-4 us).
SCHEMA_VERSION = 5
MAGIC = "ltosyms-index"
FILE_SUFFIX = f".ltosyms-v{SCHEMA_VERSION}.sqlite"
# Whole tables a decode maps instead of reading (the symbol table): one file per table kind,
# `<index file>.<kind>.table`: a magic line, the length of a header line, the header line
# (kind, image key, payload length, CRC-32 of the payload), then the payload, 8-byte aligned.
TABLE_SUFFIX = ".table"
_TABLE_MAGIC = b"ltosyms-table-2\n"
_TABLE_HEADER_SIZE = struct.Struct("<I")
_MAX_TABLE_HEADER = 256  # the header line: two names and two numbers
_TABLE_KIND = re.compile(r"[a-z0-9/-]+")
CACHE_ENV = "LTOSYMS_CACHE_DIR"

# Seconds a writer waits for another process's transaction (a batch of the index build holds
# the write lock for milliseconds; a cold decode storing a symbol table for about a second).
BUSY_TIMEOUT_SECONDS = 60.0

# Keys of one IN (...) query: well under SQLite's limit on bound parameters (999 before 3.32).
_KEYS_PER_QUERY = 500

# Largest part of an index file read through a memory map (more than any index is).
_MMAP_BYTES = 1 << 30

# Temporary files older than this were left by a killed process, not by one still creating.
_STALE_TEMPORARY_SECONDS = 3600.0

# SQLite primary result codes (sqlite3.h): what a failed statement means for the cache.
_SQLITE_ERROR, _SQLITE_BUSY, _SQLITE_LOCKED = 1, 5, 6
_CORRUPTION_CODES = (11, 24, 26)  # SQLITE_CORRUPT, SQLITE_FORMAT, SQLITE_NOTADB

_SCHEMA = """
CREATE TABLE header (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE cu (
    cu_offset INTEGER PRIMARY KEY,  -- .debug_info offset of the CU header
    crc32 INTEGER NOT NULL,         -- zlib.crc32 of the blob: SQLite does not check payloads
    data BLOB NOT NULL              -- the blob, zlib-compressed (level 1)
);
CREATE TABLE derived (              -- values of the other kinds, by kind and key
    kind TEXT NOT NULL,             -- its name and format version, e.g. "call-site/2"
    key TEXT NOT NULL,
    crc32 INTEGER NOT NULL,         -- row_checksum(): zlib.crc32 of kind, key and data
    data BLOB NOT NULL,             -- as written: most are small, a few (patch sites, the
                                    -- outer names, a census) are megabytes
    PRIMARY KEY (kind, key)         -- an index of its own: see SCHEMA_VERSION 5
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheLocation:
    """The cache directory and whether the user named it on the command line."""

    directory: Path
    explicit: bool = False


def default_cache_dir() -> Path:
    """``$LTOSYMS_CACHE_DIR``, ``$XDG_CACHE_HOME/ltosyms`` or ``~/.cache/ltosyms``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # XDG Base Directory spec 0.8: "If [...] set to a relative path, [it] should be ignored."
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "ltosyms"
    return Path.home() / ".cache" / "ltosyms"


def cache_location(cache_dir: str | os.PathLike[str] | None = None) -> CacheLocation:
    """Where the index lives: ``cache_dir`` (a ``--cache-dir`` value) or the default."""
    if cache_dir is not None:
        return CacheLocation(directory=Path(cache_dir).expanduser(), explicit=True)
    return CacheLocation(directory=default_cache_dir())


def image_key(image: KernelImage, fingerprint: str | None = None) -> str:
    """The name of ``image``'s index: its GNU build id and :func:`image_fingerprint` (worked
    out unless given), else checksums of what identifies it."""
    if image.build_id:
        return f"{image.build_id.lower()}-{fingerprint or image_fingerprint(image)}"
    try:
        file_status = os.stat(image.path)
        where = os.fsencode(os.path.realpath(image.path)) + (
            f"\0{file_status.st_size}\0{file_status.st_mtime_ns}\0".encode()
        )
    except OSError:
        where = os.fsencode(str(image.path))
    return f"nobuildid-{zlib.crc32(where):08x}{zlib.crc32(_elf_headers(image)):08x}"


# SHT_SYMTAB (ELF gABI): the section whose bytes the fingerprint takes.
_SHT_SYMTAB = 2


def image_fingerprint(image: KernelImage) -> str:
    """16 hex digits: a CRC-32 of the file's size and its ELF and section headers, and one of
    its symbol table (``.symtab``: every symbol's name offset, value, size and section).

    A build id names a build only when the toolchain made it: a vmlinux carrying another
    one's id (patched, or built twice with --build-id=0x...) would otherwise get that one's
    stored answers. These bytes change with any rebuild that moves code or symbols, and cost
    little to read: Debian 6.1's .symtab is 2.9 MB, summed in ~1 ms. Checksums, not a
    cryptographic digest: they tell apart builds that share a build id, and an index of one's
    own files needs no defence against forgery; zlib is loaded anyway, where hashlib (OpenSSL)
    would cost every decode ~3 ms of start-up.
    """
    headers = zlib.crc32(f"{len(image.data)}\0".encode() + _elf_headers(image))
    symbols = 0
    data = memoryview(image.data)
    for section in image.sections:
        if section.elf_type == _SHT_SYMTAB and section.has_bits:
            section_bytes = data[section.file_offset : section.file_offset + section.size]
            symbols = zlib.crc32(section_bytes, symbols)
    return f"{headers:08x}{symbols:08x}"


# Fingerprints already taken, by build id: `<build id>.ltosyms-v<N>.fingerprints` in the cache
# directory, a line per file of that build id, "<stamp> <fingerprint>" (see _verified_stamp),
# newest first.
FINGERPRINTS_SUFFIX = f".ltosyms-v{SCHEMA_VERSION}.fingerprints"
_FINGERPRINTS_KEPT = 8
_FINGERPRINTS_MAX_BYTES = 4096
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


def _fingerprints_path(directory: Path, build_id: str) -> Path:
    return directory / f"{build_id.lower()}{FINGERPRINTS_SUFFIX}"


def _image_stamp(image: KernelImage) -> str | None:
    """The :func:`_verified_stamp` of the file ``image`` was read from."""
    try:
        return _verified_stamp(os.stat(image.path))
    except (OSError, ValueError):
        return None


def _stamped_fingerprints(directory: Path, build_id: str) -> list[tuple[str, str]]:
    """(stamp, fingerprint) pairs taken before for files of ``build_id``; [] when none (or
    the file is not one this module wrote)."""
    try:
        with _open_no_follow(_fingerprints_path(directory, build_id)) as file:
            text = file.read(_FINGERPRINTS_MAX_BYTES).decode("ascii")
    except (OSError, UnicodeDecodeError):
        return []
    pairs = []
    for line in text.splitlines():
        stamp, _, fingerprint = line.partition(" ")
        if stamp and _FINGERPRINT.fullmatch(fingerprint):
            pairs.append((stamp, fingerprint))
    return pairs


def _stamp_fingerprint(
    directory: Path, build_id: str, stamp: str, fingerprint: str, known: list[tuple[str, str]]
) -> None:
    """Remember ``fingerprint`` for the file of ``stamp`` (written to a temporary file, then
    renamed into place; two processes doing so at once lose one line, taken again later)."""
    lines = [(stamp, fingerprint), *(pair for pair in known if pair[0] != stamp)]
    text = "".join(f"{one} {two}\n" for one, two in lines[:_FINGERPRINTS_KEPT])
    path = _fingerprints_path(directory, build_id)
    try:
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            return  # not one this module wrote: left alone
        _write_by_rename(path, path.name, (text.encode("ascii"),))
    except OSError as error:
        log.debug("fingerprints of %s not written: %s", build_id, error)


def _write_by_rename(path: Path, prefix: str, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to a new temporary file next to ``path`` (named ``<prefix>.*.tmp``,
    made with O_EXCL), then rename it to ``path``: readers see the old file or the new one
    whole. OSError when it cannot be written (the temporary file is removed)."""
    descriptor, temporary = _temporary_file(path.parent, prefix)
    try:
        with os.fdopen(descriptor, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _temporary_file(directory: Path, prefix: str) -> tuple[int, str]:
    """A new file ``<prefix>.<random>.tmp`` in ``directory``, open for writing: made with
    O_EXCL and mode 0600 as ``tempfile.mkstemp`` makes it, without importing tempfile (with
    shutil, bz2, lzma and random: ~5 ms of a short decode)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _attempt in range(100):
        name = os.path.join(directory, f"{prefix}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no new temporary file name in {directory}")


def _other_files_indexed(path: Path, build_id: str | None) -> list[Path]:
    """Index files next to ``path`` (an index of ``build_id``) of other files with that id."""
    if not build_id:
        return []
    pattern = f"{build_id.lower()}-*{FILE_SUFFIX}"
    return sorted(other for other in path.parent.glob(pattern) if other.name != path.name)


def _elf_headers(image: KernelImage) -> bytes:
    """The ELF header and section header table: what changes whenever the layout does."""
    data = image.data
    header = bytes(data[:64])
    if len(header) < 64:
        return header
    endian = "<" if image.little_endian else ">"
    # Elf64_Ehdr: e_shoff at 0x28, e_shentsize at 0x3a, e_shnum at 0x3c.
    (section_headers_offset,) = struct.unpack_from(endian + "Q", header, 0x28)
    entry_size, count = struct.unpack_from(endian + "HH", header, 0x3A)
    return header + bytes(
        data[section_headers_offset : section_headers_offset + entry_size * count]
    )


def index_file_name(key: str) -> str:
    return key + FILE_SUFFIX


# -- the store ------------------------------------------------------------------------------------


class IndexStore:
    """One image's index file, open: bytes by unit offset, by kind and key, and whole tables.

    Reads and writes never raise: a busy database turns a read into a miss and drops a write
    (the other process is writing the same bytes); a corrupt one is discarded and rebuilt; one
    that stops working (disk full, permissions changed) is switched off with a warning and the
    store behaves as empty from then on (:attr:`usable` is False).
    """

    def __init__(
        self,
        path: Path,
        header: dict[str, str],
        connection: sqlite3.Connection,
        *,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.header = dict(header)
        self.read_only = read_only
        self.usable = True
        self.discarded = 0  # how often a corrupt file was replaced while open
        self._connection: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        # kind -> the table mapped and its checksum being taken (see check_tables_ahead)
        self._tables_ahead: dict[str, tuple[MappedTable, ChecksumAhead | None]] = {}
        self._attach(connection)

    # -- units ---------------------------------------------------------------------------------

    def get(self, cu_offset: int) -> bytes | None:
        """The blob stored for ``cu_offset``, or None (not stored, or the cache failed)."""
        rows = self._query("SELECT crc32, data FROM cu WHERE cu_offset = ?", (cu_offset,))
        if not rows:
            return None
        crc, packed = rows[0]
        data = _unpack(packed, crc)
        if data is None:
            self._discard(f"CU {cu_offset:#x} fails its checksum")
        return data

    def get_many(self, cu_offsets: Iterable[int]) -> dict[int, bytes]:
        """Blobs of every stored CU among ``cu_offsets`` (one query per 500 offsets)."""
        wanted = sorted(set(cu_offsets))
        found: dict[int, bytes] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT cu_offset, crc32, data FROM cu WHERE cu_offset IN ({marks})", chunk
            )
            for cu_offset, crc, packed in rows:
                data = _unpack(packed, crc)
                if data is None:
                    self._discard(f"CU {cu_offset:#x} fails its checksum")
                    return {}
                found[cu_offset] = data
        return found

    def put(self, cu_offset: int, data: bytes) -> None:
        """Store ``data`` for ``cu_offset`` unless something is stored already."""
        self.put_many(((cu_offset, data),))

    def put_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Store several CUs in one transaction."""
        self.put_packed([(offset, *pack_blob(data)) for offset, data in items])

    def put_packed(self, rows: Sequence[tuple[int, int, bytes]]) -> None:
        """Store ``(cu_offset, crc32, packed)`` rows made by :func:`pack_blob` (the index build
        packs in its worker processes and commits one batch at a time)."""
        if rows:
            self._write("INSERT OR IGNORE INTO cu (cu_offset, crc32, data) VALUES (?, ?, ?)", rows)

    def stored_cu_offsets(self) -> set[int]:
        """Every unit offset stored."""
        return {row[0] for row in self._query("SELECT cu_offset FROM cu", ())}

    # -- values by kind and key ---------------------------------------------------------------

    def get_derived(self, kind: str, key: str) -> bytes | None:
        """The blob stored for ``(kind, key)``, None when absent (or the cache failed)."""
        rows = self._query(
            "SELECT crc32, data FROM derived WHERE kind = ? AND key = ?", (kind, key)
        )
        if not rows:
            return None
        crc, data = rows[0]
        if not isinstance(data, bytes) or row_checksum(kind, key, data) != crc:
            self._discard(f"{kind} {key} fails its checksum")
            return None
        return data

    def get_derived_many(self, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        """The blobs stored for any of ``keys`` of ``kind``, in one query per 500 keys (the
        others are left out, as is everything when the cache failed)."""
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[start : start + _KEYS_PER_QUERY]
            rows = self._query(
                "SELECT key, crc32, data FROM derived WHERE kind = ? AND key IN "
                f"({', '.join('?' * len(chunk))})",
                (kind, *chunk),
            )
            for key, crc, data in rows:
                if not isinstance(data, bytes) or row_checksum(kind, str(key), data) != crc:
                    self._discard(f"{kind} {key} fails its checksum")
                    return {}
                found[str(key)] = data
        return found

    def put_derived(self, kind: str, items: Sequence[tuple[str, bytes]]) -> None:
        """Store ``(key, data)`` pairs of one kind in one transaction (first writer wins)."""
        if items:
            self._write(
                "INSERT OR IGNORE INTO derived (kind, key, crc32, data) VALUES (?, ?, ?, ?)",
                [(kind, key, row_checksum(kind, key, data), data) for key, data in items],
            )

    def put_values(
        self,
        rows: Sequence[tuple[str, str, bytes]],
        units: Sequence[tuple[int, bytes]],
        *,
        replacing_rows: Sequence[tuple[str, str]] = (),
        replacing_units: Sequence[int] = (),
    ) -> bool:
        """Store ``(kind, key, data)`` rows and ``(cu_offset, data)`` units in one
        transaction (first writer wins), after removing what is stored for ``replacing_rows``
        (``(kind, key)``) and ``replacing_units``: values that were read back but did not
        decode. False when the transaction did not happen."""
        statements: list[tuple[str, Iterable[Sequence[Any]]]] = []
        if replacing_rows:
            statements.append(("DELETE FROM derived WHERE kind = ? AND key = ?", replacing_rows))
        if replacing_units:
            statements.append(
                ("DELETE FROM cu WHERE cu_offset = ?", [(offset,) for offset in replacing_units])
            )
        if rows:
            statements.append(
                (
                    "INSERT OR IGNORE INTO derived (kind, key, crc32, data) VALUES (?, ?, ?, ?)",
                    [(kind, key, row_checksum(kind, key, data), data) for kind, key, data in rows],
                )
            )
        if units:
            statements.append(
                (
                    "INSERT OR IGNORE INTO cu (cu_offset, crc32, data) VALUES (?, ?, ?)",
                    [(offset, *pack_blob(data)) for offset, data in units],
                )
            )
        return self._transaction(statements) if statements else True

    # -- whole tables, memory-mapped ------------------------------------------------------------

    def table_path(self, kind: str) -> Path:
        """Where the table of ``kind`` lives: next to the database, named after it."""
        if not _TABLE_KIND.fullmatch(kind):
            raise ValueError(f"table kind {kind!r}: letters, digits, '-' and '/' only")
        return Path(f"{self.path}.{kind.replace('/', '-')}{TABLE_SUFFIX}")

    def check_tables_ahead(self, kinds: Iterable[str]) -> None:
        """Start checking the large tables of ``kinds`` against their checksums, in threads
        (see :mod:`ltosyms.index.table_check`), so that :meth:`get_table` finds the sum taken
        when the table is first used. Nothing of a table is handed out before its sum is
        known."""
        if not self.usable:
            return
        for kind in kinds:
            if kind not in self._tables_ahead:
                # Quiet: a table that does not fit is reported when it is asked for.
                mapped = self._mapped_table(kind, quiet=True)
                if mapped is None:
                    continue
                checksum = None
                # A thread costs more than the sum of a small table (a module's).
                if not mapped.found_intact and len(mapped.payload) >= AHEAD_BYTES:
                    with contextlib.suppress(RuntimeError):  # no thread: summed when asked for
                        checksum = ChecksumAhead(mapped)
                self._tables_ahead[kind] = (mapped, checksum)

    def stamp_tables_checked_ahead(self) -> None:
        """Remember as intact the tables checked ahead but never asked for (a log with no
        frame to look up), where the sum is taken by now and holds, as a use remembers them:
        else every such run would sum them again."""
        if not self.usable or self.read_only:
            return
        for kind, (mapped, checksum) in self._tables_ahead.items():
            if checksum is not None and checksum.result_if_done() == mapped.crc:
                self._stamp_intact(kind, mapped)

    def get_table(self, kind: str) -> memoryview | None:
        """The table stored for ``kind``, mapped read-only and checked whole against its
        CRC-32 first, so that a damaged table file is never used; None when absent, of another
        image, cut short or damaged."""
        if not self.usable:
            return None
        mapped, checksum = self._tables_ahead.pop(kind, None) or (self._mapped_table(kind), None)
        if mapped is None:
            return None
        if not mapped.found_intact:
            crc = checksum.result() if checksum is not None else mapped.checksum()
            if crc != mapped.crc:
                log.warning(
                    "index table %s is damaged (checksum); it will be rewritten", mapped.path
                )
                return None
            if not self.read_only:
                self._stamp_intact(kind, mapped)
        return mapped.payload

    def _stamp_intact(self, kind: str, mapped: MappedTable) -> None:
        """Remember the file of ``kind``'s table as found intact (while its times can tell)."""
        if mapped.stamp is not None:
            self.set_meta(f"{_VERIFIED_PREFIX}{kind}", mapped.stamp)

    def _mapped_table(self, kind: str, *, quiet: bool = False) -> MappedTable | None:
        """The table file of ``kind`` mapped, and whether it is the file last found intact;
        None when absent or not a whole table of this image."""
        path = self.table_path(kind)
        try:
            with _open_no_follow(path) as file:
                mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
                file_status = os.fstat(file.fileno())
        except (OSError, ValueError):
            return None  # absent (or empty: mmap refuses a zero-length file)
        placed = _table_payload(mapped, kind, self.header["image_key"])
        if placed is None:
            if not quiet:
                log.warning("index table %s does not fit this index; it will be rewritten", path)
            return None
        start, length, crc = placed
        # The checksum reads every page of the file, so it is taken when the file is new or
        # changed, and skipped while the file is the one last found intact.
        stamp = _verified_stamp(file_status)
        return MappedTable(
            path=path,
            payload=memoryview(mapped)[start : start + length],
            crc=crc,
            stamp=stamp,
            found_intact=stamp is not None and self.get_meta(f"{_VERIFIED_PREFIX}{kind}") == stamp,
        )

    def put_table(self, kind: str, data: bytes) -> bool:
        """Store ``data`` as the table of ``kind`` (written to a temporary file, then renamed
        into place: readers see the old table or the whole new one)."""
        if self.read_only or not self.usable:
            return False
        self._tables_ahead.pop(kind, None)
        path = self.table_path(kind)
        line = f"{kind} {self.header['image_key']} {len(data)} {zlib.crc32(data)}\n".encode()
        prefix = _TABLE_MAGIC + _TABLE_HEADER_SIZE.pack(len(line)) + line
        prefix += bytes(-len(prefix) % 8)  # the payload starts 8-byte aligned
        try:
            _write_by_rename(path, self.path.name, (prefix, data))
        except OSError as error:
            log.warning("index table %s not written: %s", path, error)
            return False
        return True

    def discard_table(self, kind: str) -> None:
        """Remove the table of ``kind``: one that checked whole but proved unusable (its
        values point outside it), so that no later run uses it and the next ``ltosyms
        index`` writes it anew."""
        self._tables_ahead.pop(kind, None)
        if self.read_only or not self.usable:
            return
        path = self.table_path(kind)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("index table %s not removed: %s", path, error)

    def _check_tables(self) -> bool:
        """Every table file against its checksum; a damaged one is removed (reading it
        refuses it too, see :meth:`get_table`: the index build makes room for the new one)."""
        intact = True
        for path in _table_files(self.path):
            kind_part = path.name[len(self.path.name) + 1 : -len(TABLE_SUFFIX)]
            try:
                with _open_no_follow(path) as file:
                    data = file.read()
            except OSError:
                continue
            placed = _table_payload(data, None, self.header["image_key"])
            if placed is None or zlib.crc32(data[placed[0] : placed[0] + placed[1]]) != placed[2]:
                log.warning("index table %s is damaged (%s); removing it", path, kind_part)
                with contextlib.suppress(OSError):
                    os.unlink(path)
                intact = False
        return intact

    # -- header --------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM header WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO header (key, value) VALUES (?, ?)", [(key, value)])

    @property
    def is_complete(self) -> bool:
        """True once ``ltosyms index`` stored every CU of the image."""
        return self.get_meta("complete") == "1"

    def size_bytes(self) -> int:
        """Bytes on disk: the database, its write-ahead log and its tables."""
        total = 0
        for path in (self.path, Path(f"{self.path}-wal"), *_table_files(self.path)):
            with contextlib.suppress(OSError):
                total += os.stat(path).st_size
        return total

    # -- for ltosyms.index modules -------------------------------------------------------------

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only statement; ``[]`` when the cache failed (see the class note)."""
        return self._query(sql, parameters)

    def write_script(self, statements: Sequence[tuple[str, Iterable[Sequence[Any]]]]) -> bool:
        """Run ``(sql, rows)`` pairs (``executemany``, rows may be a generator) in one write
        transaction.

        False when the transaction did not happen (busy for longer than the timeout, read-only,
        or the cache failed); the caller may compute the data again another time.
        """
        return self._transaction(statements)

    def check_integrity(self) -> bool:
        """``PRAGMA quick_check`` and the tables' checksums: O(file size), so only ``ltosyms
        index`` pays for it. A damaged table is removed (made again when next needed)."""
        rows = self._query("PRAGMA quick_check", ())
        if rows and rows[0][0] == "ok":
            return self._check_tables()
        if self.usable:
            self._discard("quick_check: " + (str(rows[0][0]) if rows else "no answer"))
        return False

    def close(self) -> None:
        self._tables_ahead.clear()
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"IndexStore({str(self.path)!r}, {mode}, usable={self.usable})"

    # -- internals -----------------------------------------------------------------------------

    def _attach(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        with contextlib.suppress(OSError):
            file_status = os.stat(self.path)
            self._identity = (file_status.st_dev, file_status.st_ino)

    def _query(self, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        for _attempt in range(2):
            if not self.usable or self._connection is None:
                return []
            try:
                return self._connection.execute(sql, parameters).fetchall()
            except sqlite3.Error as error:
                if not self._failed(error, "read"):
                    return []
        return []

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> bool:
        return self._transaction(((sql, rows),))

    def _transaction(self, statements: Sequence[tuple[str, Iterable[Sequence[Any]]]]) -> bool:
        if self.read_only:
            return False
        # Once more after a rebuild -- unless some rows come from a generator, used up by then.
        attempts = 2 if all(isinstance(rows, Sequence) for _sql, rows in statements) else 1
        for _attempt in range(attempts):
            connection = self._connection
            if not self.usable or connection is None:
                return False
            try:
                # IMMEDIATE: take the write lock now, so busy_timeout applies to the whole
                # transaction instead of failing at the first write inside it.
                connection.execute("BEGIN IMMEDIATE")
                try:
                    for sql, rows in statements:
                        connection.executemany(sql, rows)
                    connection.execute("COMMIT")
                except BaseException:
                    # Also on KeyboardInterrupt: leave nothing half-written in this connection.
                    with contextlib.suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                    raise
                return True
            except sqlite3.Error as error:
                if not self._failed(error, "write"):
                    return False
        return False

    def _failed(self, error: sqlite3.Error, action: str) -> bool:
        """Handle a failed statement; True when it is worth trying again (file was rebuilt)."""
        primary = _primary_code(error)
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            log.debug("index %s busy (%s); %s skipped", self.path, error, action)
            return False
        if primary in _CORRUPTION_CODES:
            return self._discard(str(error))
        self._disable(f"{action} failed: {error}")
        return False

    def _disable(self, reason: str) -> None:
        if self.usable:
            log.warning("index %s: %s; continuing without cache", self.path, reason)
        self.usable = False
        self.close()

    def _discard(self, reason: str) -> bool:
        """Replace a corrupt file by a fresh one; True when the store is usable again."""
        log.warning("index %s is corrupt (%s); discarding it and rebuilding", self.path, reason)
        self.close()
        self.discarded += 1
        if self.read_only or self.discarded > 3:
            self.usable = False
            return False
        try:
            with _file_lock(self.path):
                if self._identity is not None and _identity_of(self.path) == self._identity:
                    # Still the file we found corrupt (not already replaced by another process).
                    _remove_index_files(self.path)
                if not os.path.lexists(self.path):
                    _create(self.path, self.header)
                connection = _connect_checked(self.path, self.header, read_only=False)
        except (OSError, sqlite3.Error, _ForeignIndex) as error:
            self._disable(f"cannot rebuild ({error})")
            return False
        self._attach(connection)
        return True


def _table_payload(
    data: mmap.mmap | bytes, kind: str | None, image_key: str
) -> tuple[int, int, int] | None:
    """(start, length, crc32) of a table file's payload, None unless the file is a whole table
    of ``kind`` (any kind for None) of the image ``image_key``."""
    start = len(_TABLE_MAGIC) + _TABLE_HEADER_SIZE.size
    try:
        if data[: len(_TABLE_MAGIC)] != _TABLE_MAGIC:
            return None
        (size,) = _TABLE_HEADER_SIZE.unpack_from(data, len(_TABLE_MAGIC))
        if size > _MAX_TABLE_HEADER:
            return None
        stored_kind, stored_key, length_text, crc_text = bytes(data[start : start + size]).split()
        length, crc = int(length_text), int(crc_text)
    except (struct.error, ValueError):
        return None
    start += size
    start += -start % 8
    if (kind is not None and stored_kind != kind.encode()) or stored_key != image_key.encode():
        return None
    if start + length != len(data):
        return None
    return start, length, crc


# Header key of a table file found intact: ``table-verified <kind>`` -> its stamp.
_VERIFIED_PREFIX = "table-verified "

# A file changed less than this long ago is checked again next time, whatever its stamp.
_RACY_SECONDS = 2.0


def _verified_stamp(file_status: os.stat_result) -> str | None:
    """What tells a table file apart from any later state of it: device, inode, size, and
    the times of its last write (mtime) and last change of any kind (ctime); None while the
    file is too new for its times to say so.

    A write through the file system moves the ctime, which no user can set back (``utime``
    sets mtime, and changes the ctime doing so); a new file written by rename has a new inode.
    But file times tick coarsely (a kernel timer tick, 1-10 ms, on file systems before Linux
    6.13's multigrain times): a write in the same tick as the last one leaves both times as
    they were. Git meets the same with its "racily clean" index entries and checks such files
    by content; so does this: a file changed within the last :data:`_RACY_SECONDS` gets no
    stamp and is summed again on its next use.
    """
    changed = max(file_status.st_mtime_ns, file_status.st_ctime_ns)
    if time.time_ns() - changed < _RACY_SECONDS * 1e9:
        return None
    return (
        f"{file_status.st_dev}:{file_status.st_ino}:{file_status.st_size}:"
        f"{file_status.st_mtime_ns}:{file_status.st_ctime_ns}"
    )


def _table_files(path: Path) -> list[Path]:
    """The table files of the database at ``path``."""
    prefix = path.name + "."
    try:
        with os.scandir(path.parent) as entries:
            return [
                Path(entry.path)
                for entry in entries
                if entry.name.startswith(prefix)
                and entry.name.endswith(TABLE_SUFFIX)
                and entry.is_file(follow_symlinks=False)
            ]
    except OSError:
        return []


def row_checksum(kind: str, key: str, data: bytes) -> int:
    """The CRC-32 a ``derived`` row carries: of its kind and key as well as its data. The key
    is found through an index apart from the row (schema 5): a file left half written (see
    ``synchronous`` in :func:`_connect`) could pair a key with another row, and the row then
    fails this check instead of answering for another address."""
    return zlib.crc32(data, zlib.crc32(f"{kind}\0{key}\0".encode()))


def pack_blob(data: bytes) -> tuple[int, bytes]:
    """``(crc32, compressed)``: how a blob is stored.

    zlib level 1: the blobs shrink ~6x (Debian vmlinux: 141 MB of CU blobs -> 24 MB) for
    ~20 ms of compression per MB; reading back the 50 CUs of a decode costs a few ms more.
    """
    return zlib.crc32(data), zlib.compress(data, 1)


def _unpack(packed: bytes, crc: int) -> bytes | None:
    """The blob stored as ``packed``, None when it does not decompress to its checksum."""
    try:
        data = zlib.decompress(packed)
    except (zlib.error, TypeError):
        return None
    return data if zlib.crc32(data) == crc else None


# -- opening ------------------------------------------------------------------------------------


def open_store(
    image: KernelImage,
    location: CacheLocation | None = None,
    *,
    cu_format: str = "",
    required: bool = False,
) -> IndexStore | None:
    """Open (or create) the index of ``image``; None means "decode without a cache".

    ``cu_format`` names the layout of the CU blobs (the DWARF layer's format version): an index
    written with another layout is foreign and is rebuilt. See the module note for when this
    raises :class:`~ltosyms.errors.CacheError` instead of returning None.
    """
    location = location or cache_location()
    strict = required or location.explicit
    # The fingerprint reads the symbol table (2.9 MB in Debian 6.1, a few ms of a warm
    # decode): it is taken again only when the file changed since it was last taken.
    build_id, fingerprint, stamp = image.build_id, None, None
    known: list[tuple[str, str]] = []
    if build_id:
        stamp = _image_stamp(image)
        known = _stamped_fingerprints(location.directory, build_id) if stamp else []
        fingerprint = next((two for one, two in known if one == stamp), None)
    taken = fingerprint is None and build_id is not None
    if taken:
        fingerprint = image_fingerprint(image)
    key = image_key(image, fingerprint)
    path = location.directory / index_file_name(key)
    header = _header_for(image, key, cu_format)
    if not os.path.lexists(path):
        for other in _other_files_indexed(path, image.build_id):
            log.warning(
                "%s has the build id of the file indexed in %s, but not its size, section "
                "headers or symbol table: it is another build, indexed on its own",
                image.path,
                other.name,
            )
    try:
        store = _open(path, header)
    except _Unusable as error:
        message = f"cache directory {location.directory}: {error}"
        if strict:
            raise CacheError(message) from None
        log.warning("%s; continuing without cache", message)
        return None
    if taken and stamp and build_id and fingerprint and not store.read_only:
        _stamp_fingerprint(location.directory, build_id, stamp, fingerprint, known)
    return store


class _Unusable(Exception):
    """The cache cannot be used here (directory or file problem)."""


class _ForeignIndex(Exception):
    """A file at an index name is not a usable index of this image."""


def _header_for(image: KernelImage, key: str, cu_format: str) -> dict[str, str]:
    header = {
        "magic": MAGIC,
        "schema_version": str(SCHEMA_VERSION),
        "image_key": key,
        "build_id": image.build_id or "",
        "cu_format": cu_format,
        "machine": image.machine,
        "image_path": os.path.realpath(image.path),
        "created_by": f"ltosyms {__version__}",
    }
    with contextlib.suppress(OSError):
        file_status = os.stat(image.path)
        # Informational: a build id names the build, so a copy with a new mtime is the same.
        header["image_size"] = str(file_status.st_size)
        header["image_mtime_ns"] = str(file_status.st_mtime_ns)
    return header


# Header keys that must match for a file to be this image's index; the others are notes.
_IDENTITY_KEYS = ("magic", "schema_version", "image_key", "cu_format")


def _open(path: Path, header: dict[str, str]) -> IndexStore:
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        if not directory.is_dir():
            raise _Unusable(f"cannot create it ({error.strerror or error})") from None
    if not os.access(directory, os.R_OK | os.X_OK):
        raise _Unusable("not readable")
    if not os.access(directory, os.W_OK):
        return _open_read_only(path, header)
    _check_owned_directory(directory)
    try:
        with _file_lock(path):
            _remove_stale_temporaries(path)
            for _attempt in range(2):
                _ensure_regular_or_absent(path)
                if not os.path.lexists(path):
                    _remove_orphans(path)
                    _create(path, header)
                try:
                    connection = _connect_checked(path, header, read_only=False)
                except _ForeignIndex as error:
                    log.warning(
                        "index %s is corrupt or foreign (%s); discarding it and rebuilding",
                        path,
                        error,
                    )
                    _remove_index_files(path)
                    continue
                return IndexStore(path, header, connection)
    except OSError as error:
        raise _Unusable(error.strerror or str(error)) from None
    except sqlite3.Error as error:
        raise _Unusable(str(error)) from None
    raise _Unusable(f"{path.name} cannot be rebuilt")


def _open_read_only(path: Path, header: dict[str, str]) -> IndexStore:
    """Serve an existing index from a directory we may not write (a shared, prebuilt cache)."""
    _ensure_regular_or_absent(path)
    if not os.path.exists(path):
        raise _Unusable("not writable and holds no index of this image")
    try:
        connection = _connect_checked(path, header, read_only=True)
    except (sqlite3.Error, _ForeignIndex) as error:
        raise _Unusable(f"not writable, and {path.name} is not usable ({error})") from None
    return IndexStore(path, header, connection, read_only=True)


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        # immutable=1: no -shm/-wal files can be made next to a file we may not write; a
        # reader then trusts the file as it is (WAL content is checkpointed on every close).
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        connection = sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
        )
    else:
        connection = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        # WAL: readers never block the writer nor each other. synchronous=OFF: SQLite hands
        # its writes to the operating system and never waits for the disk (fsync), which the
        # checkpoint of every close otherwise does: 10-20 ms of a decode that stored a few
        # hundred answers, and far more on a slow disk. The index is a cache: what a crash of
        # the process writes is safe; what an operating system crash or a power loss leaves
        # half written SQLite reports as malformed, or fails a row's CRC-32 (of its key too:
        # row_checksum), and the file is discarded and rebuilt (see the module note).
        connection.execute("PRAGMA synchronous = OFF")
    # Memory-mapped reads (sqlite.org/mmap.html): a stored symbol table is a multi-megabyte
    # blob, and reading its overflow pages through read() calls takes several times longer.
    # The map is only ever invalidated by truncation, which nothing does to an index file
    # (a corrupt one is unlinked and replaced, never truncated in place).
    connection.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
    return connection


def _connect_checked(path: Path, header: dict[str, str], *, read_only: bool) -> sqlite3.Connection:
    """A connection to ``path``; :class:`_ForeignIndex` unless it holds this image's index."""
    try:
        connection = _connect(path, read_only=read_only)
    except sqlite3.DatabaseError as error:
        if _primary_code(error) in _CORRUPTION_CODES:  # SQLite reads the schema page here
            raise _ForeignIndex(str(error)) from None
        raise
    try:
        _check_header(connection, header)
    except BaseException:
        connection.close()
        raise
    return connection


def _check_header(connection: sqlite3.Connection, expected: dict[str, str]) -> None:
    """Raise :class:`_ForeignIndex` unless ``connection`` holds this image's index."""
    try:
        rows = connection.execute("SELECT key, value FROM header").fetchall()
    except sqlite3.DatabaseError as error:
        # "no such table" (SQLITE_ERROR): another SQLite file; "file is not a database",
        # "malformed": garbage. Anything else (I/O, permissions) is not the file's fault.
        if _primary_code(error) in (_SQLITE_ERROR, *_CORRUPTION_CODES):
            raise _ForeignIndex(str(error)) from None
        raise
    found = {str(key): str(value) for key, value in rows}
    for key in _IDENTITY_KEYS:
        if found.get(key) != expected[key]:
            raise _ForeignIndex(f"header {key} is {found.get(key)!r}, expected {expected[key]!r}")


def _primary_code(error: sqlite3.Error) -> int:
    return (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF


def _create(path: Path, header: dict[str, str]) -> None:
    """Write a complete empty index into a temporary file and rename it to ``path``."""
    descriptor, temporary = _temporary_file(path.parent, path.name)
    os.close(descriptor)
    try:
        connection = sqlite3.connect(temporary, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.executescript(_SCHEMA)
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO header (key, value) VALUES (?, ?)", sorted(header.items())
            )
            connection.execute("COMMIT")
        finally:
            # Closing the last connection checkpoints and removes the temporary -wal/-shm.
            connection.close()
        os.replace(temporary, path)
    except BaseException:
        for name in (temporary, temporary + "-wal", temporary + "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(name)
        raise


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive ``flock`` on ``<path>.lock`` while files at ``path`` are created or removed."""
    lock = str(path) + ".lock"
    try:
        # O_NOFOLLOW: a <name>.lock planted as a symbolic link would otherwise make us create
        # (or truncate nothing, but still create) its target wherever it points.
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _Unusable(
                f"{path.name}.lock is a symbolic link; it is not followed (remove it)"
            ) from None
        raise
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _open_no_follow(path: Path) -> BinaryIO:
    """``path`` opened for reading, never through a symbolic link (ELOOP, an OSError) and
    only when it is a regular file: a FIFO or device planted at an index name would block the
    open or the read (O_NONBLOCK keeps the open from waiting for a FIFO's writer)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def _identity_of(path: Path) -> tuple[int, int] | None:
    try:
        file_status = os.stat(path)
    except OSError:
        return None
    return (file_status.st_dev, file_status.st_ino)


def _ensure_regular_or_absent(path: Path) -> None:
    """The database and the journal files SQLite opens next to it (which it would follow
    through a symbolic link) are regular files, or absent."""
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        try:
            mode = os.lstat(path.parent / name).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            raise _Unusable(f"{name} exists but is not a regular file; leaving it alone")


def _check_owned_directory(directory: Path) -> None:
    """A cache directory we write into is a directory of ours: in one another user can write
    and owns (a shared temporary folder), they could plant the links and files we read."""
    try:
        status = os.stat(directory)
    except OSError as error:
        raise _Unusable(error.strerror or str(error)) from None
    if not stat.S_ISDIR(status.st_mode):
        raise _Unusable("not a directory")
    if status.st_uid != os.geteuid():
        raise _Unusable(f"owned by user id {status.st_uid}, not by you ({os.geteuid()})")


def _remove_orphans(path: Path) -> None:
    # A -wal without its database belongs to a database that is gone; SQLite would replay it
    # into a new file of the same name.
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(path) + suffix)


def _remove_index_files(path: Path) -> None:
    """Remove the database at ``path``, its journal files and its tables (all made by this
    module)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        name = str(path) + suffix
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(name).st_mode):
                os.unlink(name)
    for table in _table_files(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(table)


def _remove_stale_temporaries(path: Path) -> None:
    now = time.time()
    # The index's own temporaries, and those of its build id's fingerprints.
    prefixes = (path.name + ".", path.name.split("-", 1)[0] + FINGERPRINTS_SUFFIX + ".")
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            name = entry.name
            if not name.startswith(prefixes) or not name.endswith((".tmp", ".tmp-wal", ".tmp-shm")):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and (
                    now - entry.stat(follow_symlinks=False).st_mtime > _STALE_TEMPORARY_SECONDS
                ):
                    os.unlink(entry.path)
