"""Every stored kind, declared once, round-trips on real data; a stored value that does not
decode is dropped, worked out again and replaced."""

from __future__ import annotations

import ast
import logging
import re
import shutil
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import PROJECT, Corpus

from ltosyms.cli import cli
from ltosyms.disasm import NoCallSite, PatchSites, Sweep
from ltosyms.elf.image import open_image
from ltosyms.elf.outer_names import OuterNames
from ltosyms.elf.symtab import SymbolTable
from ltosyms.index import KINDS, Answers, CacheLocation, Kind, Placement, kinds, open_store
from ltosyms.index.store import row_checksum
from ltosyms.names.kallsyms import KeepRule

# Every kind, and where its values are kept: the list a new kind must be added to.
DECLARED = {
    "symbols/6": Placement.TABLE,
    "unit/3": Placement.UNIT,
    "unit-map/2": Placement.ROW,
    "address-table/1": Placement.TABLE,
    "outer-names/3": Placement.ROW,
    "locations/2": Placement.ROW,
    "call-site/4": Placement.ROW,
    "sweep/2": Placement.ROW,
    "patch-sites/2": Placement.ROW,
    "build-facts/2": Placement.ROW,
    "code-match/2": Placement.ROW,
    "diff-census/3": Placement.ROW,
    "code-analysis/3": Placement.ROW,
    "code-view/1": Placement.ROW,
    "image-code-view/1": Placement.ROW,
    "resolved-frame/5": Placement.ROW,
}


def test_every_kind_is_declared_once_in_kinds_py() -> None:
    assert {kind.stored_name: kind.placement for kind in KINDS} == DECLARED
    assert len({kind.name for kind in KINDS}) == len(KINDS)
    assert kinds.UNIT_FORMAT == "unit/3"
    # No other module makes a Kind, and only the encoding module imports marshal.
    made_elsewhere, marshal_importers = [], []
    for path in sorted((PROJECT / "ltosyms").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Kind"
                and path.name != "kinds.py"
            ):
                made_elsewhere.append(str(path))
            if isinstance(node, ast.Import) and any(a.name == "marshal" for a in node.names):
                marshal_importers.append(path.relative_to(PROJECT).as_posix())
    assert made_elsewhere == []
    assert marshal_importers == ["ltosyms/index/encoding.py"]


# -- real data: what a decode of the corpus' clang ThinLTO log keeps --------------------------


@dataclass
class Decoded:
    vmlinux: Path
    arguments: list[str]
    cache: Path
    output: str


def _decode(arguments: list[str]) -> str:
    result = CliRunner().invoke(cli, ["decode", *arguments], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def decoded(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Decoded:
    vmlinux = corpus.kernel_vmlinux("clang-thinlto")
    folder = corpus.kernels / "clang-thinlto"
    cache = tmp_path_factory.mktemp("cache")
    arguments = [
        str(vmlinux),
        str(folder / "console.log"),
        "--modules",
        str(folder),
        "--json",
        "--cache-dir",
        str(cache),
    ]
    return Decoded(vmlinux, arguments, cache, _decode(arguments))


@pytest.fixture
def vmlinux_answers(decoded: Decoded) -> Iterator[Answers]:
    with open_image(decoded.vmlinux) as image:
        store = open_store(
            image, CacheLocation(directory=decoded.cache), cu_format=kinds.UNIT_FORMAT
        )
        assert store is not None
        answers = Answers(store, image)
        yield answers
        answers.close()


def stored_values(answers: Answers, kind: Kind[Any, Any]) -> list[Any]:
    """The values the index behind ``answers`` keeps for ``kind``, decoded."""
    store, image = answers.store, answers.image
    if kind is kinds.DIFF_CENSUS:
        # A decode keeps no diff census: the one a diff of the image keeps, as read back.
        from ltosyms.diff import take_image_census
        from ltosyms.diff.stored import census_columns
        from ltosyms.elf.kernel import LoadedImage

        census = take_image_census(LoadedImage(image=image, symbols=SymbolTable(image)))
        return [kind.decode(kind.encode(census_columns(census)), image)]
    if kind is kinds.CODE_MATCHES:
        # No candidate of this log needed its Code: bytes to be told apart; the analyses of
        # its Code: lines hold the same comparisons.
        analyses = stored_values(answers, kinds.CODE_ANALYSES)
        return [a.report.match for a in analyses if a.report.match is not None]
    if kind is kinds.IMAGE_CODE_VIEWS:
        # This log's kernel printed every Code: line's bytes: no listing came from the image.
        # Its records are the views of the printed lines (one codec for both).
        return stored_values(answers, kinds.CODE_VIEWS)
    if kind.placement is Placement.TABLE:
        mapped = store.get_table(kind.stored_name)
        found = [] if mapped is None else [mapped]
    elif kind.placement is Placement.UNIT:
        found = list(store.get_many(store.stored_cu_offsets()).values())
    else:
        rows = store.query("SELECT data FROM derived WHERE kind = ?", (kind.stored_name,))
        found = [row[0] for row in rows]
    return [kind.decode(data, image) for data in found]


def comparable(value: Any) -> Any:
    """``value`` as plain data: records that are not dataclasses (and hold columns that may be
    memoryviews) by their columns as lists."""
    if isinstance(value, SymbolTable | PatchSites):
        columns = value.columns()
        return {
            name: getattr(columns, name)
            if isinstance(getattr(columns, name), KeepRule | bool | bytes)
            else list(getattr(columns, name))
            for name in columns.__dataclass_fields__
        }
    if isinstance(value, Sweep):
        return (value.start, value.next_address, value.exhausted, value.desyncs, value.texts)
    if isinstance(value, OuterNames):
        return [list(value.starts), list(value.ends), list(value.indexes)]
    assert is_dataclass(value) or isinstance(value, tuple | NoCallSite)
    return value


# Written by `ltosyms index` only, never by a decode.
INDEX_ONLY = (kinds.ADDRESS_TABLE,)
DECODE_KINDS = [kind for kind in KINDS if kind not in INDEX_ONLY]


@pytest.mark.parametrize("kind", DECODE_KINDS, ids=[kind.name for kind in DECODE_KINDS])
def test_each_kind_round_trips_on_real_data(kind: Kind[Any, Any], vmlinux_answers: Answers) -> None:
    values = stored_values(vmlinux_answers, kind)
    assert values, f"the decode kept no {kind.name}"
    for value in values:
        again = kind.decode(kind.encode(value), vmlinux_answers.image)
        assert comparable(again) == comparable(value)


def test_the_address_table_round_trips_on_real_data(corpus: Corpus, tmp_path: Path) -> None:
    vmlinux = corpus.kernel_vmlinux("clang-thinlto")
    result = CliRunner().invoke(cli, ["index", str(vmlinux), "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with open_image(vmlinux) as image:
        store = open_store(image, CacheLocation(directory=tmp_path), cu_format=kinds.UNIT_FORMAT)
        assert store is not None
        answers = Answers(store, image)
        (table,) = stored_values(answers, kinds.ADDRESS_TABLE)
        assert table.unit_count == 857
        data = kinds.ADDRESS_TABLE.encode(table)
        assert kinds.ADDRESS_TABLE.encode(kinds.ADDRESS_TABLE.decode(data, image)) == data
        answers.close()


# -- damaged values ------------------------------------------------------------------------------

GARBAGE = b"\x00garbage"  # decodes as no kind


def _damage_everything(decoded: Decoded, cache: Path, module: Path) -> int:
    """Replace every value of every index in ``cache`` by bytes of no kind, checksums made
    to fit (a buggy or hostile writer); the number of values damaged."""
    damaged = 0
    for database in cache.glob("*.sqlite"):
        with closing(sqlite3.connect(database)) as connection, connection:
            crc = zlib.crc32(GARBAGE)
            connection.create_function("row_checksum", 3, row_checksum, deterministic=True)
            damaged += connection.execute(
                "UPDATE derived SET data = ?1, crc32 = row_checksum(kind, key, ?1)", (GARBAGE,)
            ).rowcount
            damaged += connection.execute(
                "UPDATE cu SET crc32 = ?, data = ?", (crc, zlib.compress(GARBAGE))
            ).rowcount
    # The symbol tables too, each under a header whose checksum fits.
    for path in (decoded.vmlinux, module):
        with open_image(path) as image:
            store = open_store(image, CacheLocation(directory=cache), cu_format=kinds.UNIT_FORMAT)
            assert store is not None
            assert store.get_table(kinds.SYMBOLS.stored_name) is not None
            assert store.put_table(kinds.SYMBOLS.stored_name, GARBAGE)
            damaged += 1
            store.close()
    return damaged


def test_values_that_do_not_decode_are_worked_out_again_and_replaced(
    decoded: Decoded, corpus: Corpus, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(decoded.cache, cache)
    arguments = [*decoded.arguments[:-1], str(cache)]
    assert _damage_everything(decoded, cache, corpus.kernels / "clang-thinlto" / "lkdtm.ko") > 100

    with caplog.at_level(logging.WARNING, logger="ltosyms"):
        output = _decode(arguments)
    assert output == decoded.output
    warned = set(re.findall(r"a stored ([\w-]+) does not decode", caplog.text))
    assert warned == {
        "symbols",
        "build-facts",
        "call-site",
        "sweep",
        "locations",
        "unit-map",
        "unit",
        "outer-names",
        "patch-sites",
        "code-analysis",
        "code-view",
        "resolved-frame",
    }

    # Each was replaced by the value worked out again: the next run reads them all back.
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="ltosyms"):
        output = _decode(arguments)
    assert output == decoded.output
    assert "does not decode" not in caplog.text and "dropped" not in caplog.text


def test_memo_keys_are_encoded_here() -> None:
    assert kinds.CALL_SITES.key((0x10, None)) == "10/-"
    assert kinds.CALL_SITES.key((0x10, 0x8)) == "10/8"
    assert kinds.CHAINS.key(0xFFFFFFFF81000000) == "ffffffff81000000"
    assert kinds.UNITS.key(0x2A) == 0x2A
    assert kinds.CODE_MATCHES.key((b"\x0f\x0b", 1, "x86_64", 0x20)) == "x86_64/1/20/0f0b"
    assert kinds.CODE_ANALYSES.key((None, b"\xc3", 0, "aarch64", None)) == "-/aarch64/0/-/c3"
    assert kinds.CODE_VIEWS.key(("lkdtm", b"\xc3", 0, "x86_64", 0x10)) == "lkdtm/x86_64/0/10/c3"
    assert kinds.IMAGE_CODE_VIEWS.key(("tracegen", 0x10005)) == "tracegen/10005"
