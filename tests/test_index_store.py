"""The on-disk index file: keys, round trips, corruption, concurrency, unusable directories."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sqlite3
import stat
import struct
import time
import zlib
from pathlib import Path

import pytest
from conftest import SAMPLES

from ltosyms.elf.image import KernelImage, open_image
from ltosyms.errors import CacheError
from ltosyms.index.store import (
    SCHEMA_VERSION,
    CacheLocation,
    cache_location,
    default_cache_dir,
    image_key,
    index_file_name,
    open_store,
)

GCC = SAMPLES / "vmlinux-gcc"
CLANG = SAMPLES / "vmlinux-clang"


def blob(cu_offset: int) -> bytes:
    """What a "parser" produces for a CU: deterministic, different per CU, some kilobytes."""
    return struct.pack("<q", cu_offset) * (64 + cu_offset % 512)


def with_build_id(source: Path, target: Path, build_id: bytes | None) -> Path:
    """Copy ``source`` to ``target`` with its GNU build id replaced (None: note type changed, so
    the copy has no build id at all)."""
    data = bytearray(source.read_bytes())
    with open_image(source) as image:
        old = bytes.fromhex(image.build_id or "")
    position = data.find(b"GNU\0" + old)
    assert position > 12 and old
    if build_id is None:
        # Elf64_Nhdr: namesz, descsz, type precede the name; NT_GNU_BUILD_ID is 3.
        data[position - 4 : position] = struct.pack("<I", 0x4C54)
    else:
        assert len(build_id) == len(old)
        data[position + 4 : position + 4 + len(old)] = build_id
    target.write_bytes(bytes(data))
    return target


@pytest.fixture
def image(gcc_sample: KernelImage) -> KernelImage:
    return gcc_sample


@pytest.fixture
def location(tmp_path: Path) -> CacheLocation:
    return CacheLocation(directory=tmp_path / "cache")


def test_round_trip_and_persistence(image: KernelImage, location: CacheLocation) -> None:
    store = open_store(image, location, cu_format="f1")
    assert store is not None and not store.read_only
    assert store.path.name == f"{image_key(image)}.ltosyms-v{SCHEMA_VERSION}.sqlite"
    assert image_key(image).startswith(f"{image.build_id}-")
    offsets = [0, 0x2B, 0x1000, -1]  # -1: a key of the DWARF layer's own (address -> CU map)
    for offset in offsets:
        assert store.get(offset) is None
        store.put(offset, blob(offset))
    store.put_many([(0x2000 + i, blob(0x2000 + i)) for i in range(100)])
    store.put(0, b"another answer")  # INSERT OR IGNORE: the first writer wins
    store.close()

    reopened = open_store(image, location, cu_format="f1")
    assert reopened is not None
    for offset in offsets:
        assert reopened.get(offset) == blob(offset)
    assert reopened.get(0x55) is None
    assert reopened.get_many([0, 0x2063, 0x9999]) == {0: blob(0), 0x2063: blob(0x2063)}
    assert reopened.stored_cu_offsets() == {*offsets, *range(0x2000, 0x2064)}
    assert reopened.header["build_id"] == image.build_id
    reopened.close()


def test_cache_location_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LTOSYMS_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ltosyms"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # XDG spec: relative is ignored
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ltosyms"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ltosyms"
    monkeypatch.setenv("LTOSYMS_CACHE_DIR", str(tmp_path / "env"))
    assert cache_location() == CacheLocation(directory=tmp_path / "env", explicit=False)
    assert cache_location(tmp_path / "cli") == CacheLocation(
        directory=tmp_path / "cli", explicit=True
    )


def test_other_build_at_same_path_gets_its_own_index(
    tmp_path: Path, location: CacheLocation
) -> None:
    vmlinux = with_build_id(GCC, tmp_path / "vmlinux", bytes(range(20)))
    with open_image(vmlinux) as first:
        store = open_store(first, location)
        assert store is not None
        store.put(0x10, b"from the first build")
        first_path = store.path
        store.close()
    # Rebuilt in place: same path, same size, another build id.
    with_build_id(GCC, vmlinux, bytes(range(1, 21)))
    with open_image(vmlinux) as second:
        store = open_store(second, location)
        assert store is not None
        assert store.path != first_path
        assert store.get(0x10) is None
        store.close()
    assert first_path.exists()  # the other build's index is kept for that build


def test_image_without_build_id_is_keyed_by_file(tmp_path: Path, location: CacheLocation) -> None:
    vmlinux = with_build_id(GCC, tmp_path / "vmlinux", None)
    with open_image(vmlinux) as image:
        assert image.build_id is None
        key = image_key(image)
        assert key.startswith("nobuildid-")
        store = open_store(image, location)
        assert store is not None
        store.put(0, b"x")
        store.close()
    os.utime(vmlinux, ns=(1, 1))  # touched: could be another file now
    with open_image(vmlinux) as image:
        assert image_key(image) != key
        store = open_store(image, location)
        assert store is not None and store.get(0) is None
        store.close()


def test_a_fingerprint_is_taken_again_only_when_the_file_changed(
    tmp_path: Path, location: CacheLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ltosyms.index import store as store_module

    vmlinux = tmp_path / "vmlinux"
    shutil.copyfile(GCC, vmlinux)
    taken: list[str] = []
    take = store_module.image_fingerprint

    def counted(image: KernelImage) -> str:
        taken.append(image.path)
        return take(image)

    monkeypatch.setattr(store_module, "image_fingerprint", counted)

    def index_name() -> str:
        with open_image(vmlinux) as image:
            store = open_store(image, location)
            assert store is not None
            store.close()
            return store.path.name

    # Just copied: its times cannot yet tell it from a write in the same clock tick.
    first = index_name()
    assert index_name() == first and len(taken) == 2
    monkeypatch.setattr(store_module, "_RACY_SECONDS", 0.0)
    taken.clear()
    assert index_name() == first  # taken, and remembered with the file's stamp
    assert index_name() == first and index_name() == first
    assert len(taken) == 1
    build_id, fingerprint = first.split(".")[0].split("-")
    fingerprints = location.directory / f"{build_id}{store_module.FINGERPRINTS_SUFFIX}"
    lines = fingerprints.read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f" {fingerprint}")

    time.sleep(0.05)  # past the file system's timestamp tick
    os.utime(vmlinux)  # changed (its ctime moved): taken again
    assert index_name() == first and len(taken) == 2
    # Damaged, or not a file ltosyms wrote: taken again, and written anew.
    for garbage in (b"\xff\xfe not ascii", b"stamp-only\n\n one two three\n" * 300):
        fingerprints.write_bytes(garbage)
        taken.clear()
        assert index_name() == first and index_name() == first and len(taken) == 1


def test_a_fifo_at_a_fingerprints_or_table_name_is_not_read(
    tmp_path: Path, location: CacheLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Opening a FIFO for reading waits for a writer: planted at a name the index reads, it
    # would hang every decode. It is not read (and not replaced).
    from ltosyms.index import store as store_module

    monkeypatch.setattr(store_module, "_RACY_SECONDS", 0.0)
    vmlinux = tmp_path / "vmlinux"
    shutil.copyfile(GCC, vmlinux)
    location.directory.mkdir(parents=True)
    with open_image(vmlinux) as image:
        assert image.build_id is not None
        fingerprints = location.directory / f"{image.build_id}{store_module.FINGERPRINTS_SUFFIX}"
        os.mkfifo(fingerprints)
        store = open_store(image, location)
        assert store is not None
        os.mkfifo(store.table_path("test/1"))
        assert store.get_table("test/1") is None
        store.close()
    assert stat.S_ISFIFO(os.lstat(fingerprints).st_mode)


def test_garbage_file_is_discarded_with_a_warning(
    image: KernelImage, location: CacheLocation, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(image, location)
    assert store is not None
    store.put(0, blob(0))
    store.close()
    data = bytearray(store.path.read_bytes())
    data[100:3000] = os.urandom(2900)  # the schema page: the header table is gone
    store.path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="ltosyms.index"):
        rebuilt = open_store(image, location)
    assert rebuilt is not None and rebuilt.usable
    assert "discarding it and rebuilding" in caplog.text
    assert rebuilt.get(0) is None  # a fresh index
    rebuilt.put(0, blob(0))
    assert rebuilt.get(0) == blob(0)
    rebuilt.close()

    store.path.write_bytes(b"not sqlite at all " * 100)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ltosyms.index"):
        rebuilt = open_store(image, location)
    assert rebuilt is not None and "discarding" in caplog.text
    rebuilt.close()


def test_corrupt_payload_is_caught_by_its_checksum(
    image: KernelImage, location: CacheLocation, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(image, location)
    assert store is not None
    store.put(0x40, blob(0x40))
    store.close()
    # Flip payload bytes the B-tree does not look at: SQLite itself cannot see this.
    data = bytearray(store.path.read_bytes())
    packed = zlib.compress(blob(0x40), 1)
    payload = data.find(packed)
    assert payload > 0
    data[payload + len(packed) // 2] ^= 0xFF
    store.path.write_bytes(bytes(data))
    store = open_store(image, location)
    assert store is not None
    with caplog.at_level(logging.WARNING, logger="ltosyms.index"):
        assert store.get(0x40) is None
    assert "fails its checksum" in caplog.text
    assert store.usable and store.discarded == 1
    store.put(0x40, blob(0x40))  # rebuilt in place and usable
    assert store.get(0x40) == blob(0x40)
    store.close()


def test_corruption_while_open_rebuilds(
    image: KernelImage, location: CacheLocation, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(image, location)
    assert store is not None
    store.put_many([(i, blob(i)) for i in range(200)])
    store.close()
    store = open_store(image, location)
    assert store is not None
    # Another program scribbles over the file while this process has it open.
    with open(store.path, "r+b") as file:
        file.seek(4096)
        file.write(os.urandom(64 * 1024))
    with caplog.at_level(logging.WARNING, logger="ltosyms.index"):
        answers = [store.get(i) for i in range(200)]
    assert all(answer in (None, blob(i)) for i, answer in enumerate(answers))
    assert "corrupt" in caplog.text
    store.put(7, blob(7))
    assert store.get(7) == blob(7)
    store.close()


@pytest.mark.parametrize(
    "change",
    ["magic", "schema_version", "image_key", "cu_format", "no_header_table"],
)
def test_foreign_file_is_rebuilt(
    image: KernelImage, location: CacheLocation, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(image, location, cu_format="f1")
    assert store is not None
    store.put(0, b"old")
    store.close()
    connection = sqlite3.connect(store.path)
    if change == "no_header_table":
        connection.execute("DROP TABLE header")
    else:
        connection.execute("UPDATE header SET value = 'other' WHERE key = ?", (change,))
    connection.commit()
    connection.close()
    with caplog.at_level(logging.WARNING, logger="ltosyms.index"):
        rebuilt = open_store(image, location, cu_format="f1")
    assert rebuilt is not None and rebuilt.get(0) is None
    assert "foreign" in caplog.text
    rebuilt.close()


def test_cu_format_change_means_rebuild(image: KernelImage, location: CacheLocation) -> None:
    store = open_store(image, location, cu_format="cudata-1")
    assert store is not None
    store.put(0, b"layout 1")
    store.close()
    store = open_store(image, location, cu_format="cudata-2")
    assert store is not None and store.get(0) is None
    store.close()


def test_unusable_default_directory_falls_back(
    image: KernelImage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache directory would have to be inside this file\n")
    with caplog.at_level(logging.WARNING, logger="ltosyms.index"):
        store = open_store(image, CacheLocation(directory=blocker / "ltosyms"))
    assert store is None
    assert "continuing without cache" in caplog.text
    assert blocker.read_text().startswith("the cache directory")


def test_unusable_explicit_directory_is_an_error(image: KernelImage, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CacheError, match="cannot create it") as error:
        open_store(image, cache_location(blocker / "ltosyms"))
    assert error.value.exit_code == 4
    with pytest.raises(CacheError):
        open_store(image, CacheLocation(directory=blocker / "ltosyms"), required=True)


def test_read_only_directory_serves_existing_index(
    image: KernelImage, location: CacheLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(image, location)
    assert store is not None
    store.put(0x99, blob(0x99))
    store.close()
    before = sorted(p.name for p in location.directory.iterdir())
    real_access = os.access
    # Tests run as root, where permission bits do not stop writes; ask the question instead.
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: not (mode & os.W_OK) and real_access(path, mode),
    )
    store = open_store(image, location)
    assert store is not None and store.read_only
    assert store.get(0x99) == blob(0x99)
    store.put(0x100, b"dropped")
    assert store.get(0x100) is None
    store.close()
    assert sorted(p.name for p in location.directory.iterdir()) == before
    other = shutil.copy(GCC, location.directory.parent / "copy")
    with_build_id(GCC, Path(other), bytes(20))
    with open_image(other) as image_without_index:
        assert open_store(image_without_index, location) is None


def test_files_of_others_are_left_alone(
    image: KernelImage, location: CacheLocation, caplog: pytest.LogCaptureFixture
) -> None:
    location.directory.mkdir(parents=True)
    user_file = location.directory / "notes.txt"
    user_file.write_text("mine\n")
    target = location.directory / "elsewhere.sqlite"
    target.write_bytes(b"a file a symlink points to")
    (location.directory / index_file_name(image_key(image))).symlink_to(target)
    with caplog.at_level(logging.WARNING, logger="ltosyms.index"):
        assert open_store(image, location) is None
    assert "not a regular file" in caplog.text
    assert target.read_bytes() == b"a file a symlink points to"
    assert user_file.read_text() == "mine\n"


def test_orphan_write_ahead_log_is_not_replayed(
    image: KernelImage, location: CacheLocation, caplog: pytest.LogCaptureFixture
) -> None:
    location.directory.mkdir(parents=True)
    path = location.directory / index_file_name(image_key(image))
    wal = Path(f"{path}-wal")
    # A valid write-ahead log of some other database once at this name, left behind by a crash
    # (its database deleted since). SQLite would replay it into any new file of that name.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("PRAGMA wal_autocheckpoint = 0")
    other.execute("CREATE TABLE header (key TEXT, value TEXT)")
    other.execute("INSERT INTO header VALUES ('magic', 'something else')")
    orphan = wal.read_bytes()
    other.close()
    path.unlink()
    wal.write_bytes(orphan)
    with caplog.at_level(logging.WARNING, logger="ltosyms.index"):
        store = open_store(image, location)
    assert store is not None and store.get_meta("magic") == "ltosyms-index"
    assert "discarding" not in caplog.text
    store.put(0, b"fresh")
    assert store.get(0) == b"fresh"
    store.close()


# -- concurrency --------------------------------------------------------------------------------


ROUNDS = 6


def _writer(directory: str, worker: int, start: multiprocessing.synchronize.Barrier) -> int:
    """In each round, open a new index at the same moment as the other writer (both find no
    file and race to create it), then write overlapping CUs."""
    usable = 0
    with open_image(GCC) as image:
        for round_number in range(ROUNDS):
            start.wait()
            location = CacheLocation(directory=Path(directory) / str(round_number))
            store = open_store(image, location, cu_format="f1")
            assert store is not None
            # Overlapping halves, one CU per transaction, then a batch: like decodes and a build.
            for offset in range(worker * 30, worker * 30 + 60):
                store.put(offset, blob(offset))
                assert store.get(offset) == blob(offset)
            store.put_many([(10_000 + i, blob(10_000 + i)) for i in range(100)])
            usable += store.usable
            store.close()
    return usable


def test_two_processes_write_at_once(location: CacheLocation) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(2)
        with context.Pool(2) as pool:
            results = [
                pool.apply_async(_writer, (str(location.directory), worker, barrier))
                for worker in (0, 1)
            ]
            assert [result.get(timeout=120) for result in results] == [ROUNDS, ROUNDS]
    with open_image(GCC) as image:
        for round_number in range(ROUNDS):
            round_location = CacheLocation(directory=location.directory / str(round_number))
            store = open_store(image, round_location, cu_format="f1")
            assert store is not None
            assert store.check_integrity()
            stored = store.stored_cu_offsets()
            assert stored == {*range(90), *range(10_000, 10_100)}, round_number
            assert all(store.get(offset) == blob(offset) for offset in stored)
            assert store.discarded == 0
            store.close()
            names = [p.name for p in round_location.directory.iterdir()]
            assert not [name for name in names if name.endswith(".tmp")]


def test_checksum_covers_the_stored_blob(image: KernelImage, location: CacheLocation) -> None:
    store = open_store(image, location)
    assert store is not None
    store.put(3, b"payload")
    store.close()
    connection = sqlite3.connect(store.path)
    ((crc, data),) = connection.execute("SELECT crc32, data FROM cu WHERE cu_offset = 3")
    assert (crc, zlib.decompress(data)) == (zlib.crc32(b"payload"), b"payload")
    # A blob that decompresses but is not what was stored is caught by the checksum.
    connection.execute("UPDATE cu SET data = ? WHERE cu_offset = 3", (zlib.compress(b"paylaod"),))
    connection.commit()
    connection.close()
    store = open_store(image, location)
    assert store is not None
    assert store.get(3) is None and store.discarded == 1
    store.close()


def test_store_keeps_bytes_by_unit_by_kind_and_key_and_as_tables(
    image: KernelImage, location: CacheLocation
) -> None:
    store = open_store(image, location)
    assert store is not None
    store.put(1, b"a")
    assert store.get(1) == b"a"
    store.put_derived("test/1", [("k", b"first"), ("k", b"second")])  # first one kept
    assert store.get_derived("test/1", "k") == b"first"
    assert store.get_derived("test/2", "k") is None
    # One transaction for rows and units; what is replaced goes first, the rest is kept.
    assert store.put_values(
        [("test/1", "k", b"third"), ("test/1", "j", b"new")],
        [(1, b"b"), (2, b"c")],
        replacing_rows=[("test/1", "k")],
        replacing_units=[2],
    )
    assert [store.get_derived("test/1", key) for key in "kj"] == [b"third", b"new"]
    assert [store.get(offset) for offset in (1, 2)] == [b"a", b"c"]
    assert store.put_table("test/1", b"x" * 1000)
    mapped = store.get_table("test/1")
    assert mapped is not None and bytes(mapped) == b"x" * 1000
    with pytest.raises(ValueError, match="table kind"):
        store.get_table("../escape")
    store.close()
