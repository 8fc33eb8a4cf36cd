"""Each stored kind's codec: its record to bytes and back (the kinds are declared in
:mod:`ltosyms.index.kinds`).

Encoders take the record the stage made. Decoders take the stored bytes (a ``bytes`` row or a
memory-mapped table) and the image the value belongs to, and build the record through its
public constructor; bytes that do not make one raise
:class:`~ltosyms.index.encoding.StoredValueError`, nothing else (:func:`_decoder` turns the
errors of a malformed field into it). Large values are packed columns read back in place;
the answers asked for most often (inline chains, call sites) are flat records; the rest are
small marshalled tuples.

The record modules are imported inside the functions: importing the persistence layer loads
none of the DWARF parsers, unit tables or disassembler modules, and a decode loads only the
record modules of what it reads.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from ltosyms.index.encoding import (
    Buffer,
    Column,
    StoredValueError,
    dumps,
    loads,
    pack_columns,
    pack_flat,
    unpack_columns,
    unpack_flat,
)

if TYPE_CHECKING:
    from ltosyms.disasm.callsite import Sweep
    from ltosyms.disasm.patching import PatchSites
    from ltosyms.disasm.records import (
        CallSite,
        CodeAnalysis,
        CodeListing,
        CodeMatch,
        NoCallSite,
    )
    from ltosyms.disasm.targets import CodePoint
    from ltosyms.disasm.view import CodeView
    from ltosyms.dwarf import AddressTable, CuData, CuMap, SourceLocation
    from ltosyms.elf.build_facts import BuildFacts
    from ltosyms.elf.image import KernelImage
    from ltosyms.elf.outer_names import OuterNames
    from ltosyms.elf.symtab import SymbolTable

T = TypeVar("T")
Decode = Callable[[Buffer, "KernelImage"], T]


def _decoder(decode: Decode[T]) -> Decode[T]:
    """``decode`` with the errors a malformed field raises (a wrong type or count, an unknown
    enum value, a column of the wrong length) turned into :class:`StoredValueError`."""

    @wraps(decode)
    def checked(data: Buffer, image: KernelImage) -> T:
        try:
            return decode(data, image)
        except (TypeError, ValueError, IndexError, KeyError, OverflowError, struct.error) as error:
            raise StoredValueError(f"{decode.__name__}: {error}") from None

    return checked


def _int(value: object) -> int:
    if type(value) is not int:
        raise StoredValueError(f"a number was stored as {type(value).__name__}")
    return value


def _optional_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _str(value: object) -> str:
    if type(value) is not str:
        raise StoredValueError(f"a string was stored as {type(value).__name__}")
    return value


def _optional_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise StoredValueError(f"a flag was stored as {type(value).__name__}")
    return value


def _tuple(value: object, length: int | None = None) -> tuple[object, ...]:
    if type(value) is not tuple or (length is not None and len(value) != length):
        raise StoredValueError("a stored value has another shape")
    return value


def _pair(value: object) -> tuple[int, int]:
    first, second = _tuple(value, 2)
    return _int(first), _int(second)


def _strings(values: Sequence[str | None]) -> tuple[bytes, array[int]]:
    """Strings (without NUL, as DWARF and capstone give them) as one UTF-8 column, and the
    positions of the Nones among them."""
    text = "\0".join("" if value is None else value for value in values)
    return text.encode(), array("I", (i for i, value in enumerate(values) if value is None))


def _unstrings(text: memoryview, nones: memoryview, count: int) -> tuple[str | None, ...]:
    values: list[str | None] = []
    if count:
        values.extend(str(text, "utf-8").split("\0"))
    if len(values) != count or (not count and len(text)):
        raise StoredValueError("a stored column holds another number of strings")
    for position in nones.cast("I"):
        values[position] = None
    return tuple(values)


def _dictionary(values: Sequence[str | None], *, optional: bool = True) -> tuple[bytes, array[int]]:
    """Strings (without NUL) as their distinct values, one UTF-8 column in the order first
    seen, each ended by a NUL, and per value the position of its string there: from 1 with
    0 for None in an ``optional`` column, from 0 in a column without None. A census' columns
    of units, files and nm letters hold a few hundred distinct strings among 20,000 values:
    read back, each is one string object, not one per value."""
    positions: dict[str | None, int] = {None: 0} if optional else {}
    indexes = array("I", (positions.setdefault(value, len(positions)) for value in values))
    if not optional and None in positions:
        raise StoredValueError("a None in a column of names")
    text = "".join(f"{value}\0" for value in positions if value is not None)
    if text.count("\0") != len(positions) - optional:
        raise StoredValueError("a string holding a NUL")  # read back, it would be two
    return text.encode(), indexes


def _undictionary(
    text: memoryview, indexes: memoryview, count: int, *, optional: bool = True
) -> list[str | None]:
    """The ``count`` values :func:`_dictionary` wrote, made in C (one lookup each)."""
    distinct: list[str | None] = [None] if optional else []
    distinct.extend(_ended_strings(text))
    positions = indexes.cast("I")
    if len(positions) != count:
        raise StoredValueError("a stored column holds another number of strings")
    try:
        return list(map(distinct.__getitem__, positions))
    except IndexError:
        raise StoredValueError("a stored string position out of range") from None


def _ended_strings(text: memoryview) -> list[str]:
    """The strings of a column each ended by a NUL."""
    strings = str(text, "utf-8").split("\0")
    if strings.pop():  # what follows the last NUL: nothing, in a column :func:`_dictionary` wrote
        raise StoredValueError("a stored column of strings is cut short")
    return strings


# -- the symbol table (a mapped table file) -----------------------------------------------------

# Its columns in stored order, and the machine type of the numeric ones (the names, their
# offsets into the names and the nm letters follow).
SYMBOL_COLUMNS = (
    "link_addresses",
    "elf_sizes",
    "infos",
    "shndxs",
    "kallsyms_sizes",
    "kallsyms_kept",
    "kept_indexes",
    "kept_addresses",
    "name_order",
    "name_offsets",
    "names",
    "nm_types",
)
_SYMBOL_TYPECODES: tuple[Literal["B", "H", "I", "Q"], ...] = (
    *("Q", "Q", "B", "H", "Q"),
    *("B", "I", "Q", "I", "I"),
)


def encode_symbols(table: SymbolTable) -> bytes:
    columns = table.columns()
    names = columns.names
    numbers = (
        columns.link_addresses,
        columns.elf_sizes,
        columns.infos,
        columns.shndxs,
        columns.kallsyms_sizes,
        columns.kallsyms_kept,
        columns.kept_indexes,
        columns.kept_addresses,
        columns.name_order,
        # Where each name starts in the joined names (in characters): names are not split
        # into 120,000 strings when the table is read back, only the ones looked at are made.
        list(accumulate((len(name) + 1 for name in names), initial=0)),
    )
    raws: list[Column] = [
        array(code, values) for code, values in zip(_SYMBOL_TYPECODES, numbers, strict=True)
    ]
    raws.append("\0".join(names).encode())
    raws.append("".join(columns.nm_types).encode("ascii", "replace"))
    rule = columns.rule
    fields = (table.image.build_id, rule.all_symbols, rule.text_ranges, rule.last_symbol_end)
    return pack_columns(fields, raws)


@_decoder
def decode_symbols(data: Buffer, image: KernelImage) -> SymbolTable:
    from ltosyms.elf.symtab import NameColumn, SymbolColumns, SymbolTable
    from ltosyms.names.kallsyms import KeepRule

    fields, raws = unpack_columns(data, len(SYMBOL_COLUMNS))
    build_id, all_symbols, ranges, last_end = _tuple(fields, 4)
    if build_id != image.build_id:
        raise StoredValueError("a symbol table of another build")
    rule = KeepRule(
        all_symbols=_bool(all_symbols),
        text_ranges=tuple(_pair(text_range) for text_range in _tuple(ranges)),
        last_symbol_end=_int(last_end),
    )
    numbers = [raw.cast(code) for raw, code in zip(raws, _SYMBOL_TYPECODES, strict=False)]
    columns = SymbolColumns(
        names=NameColumn(raws[10], numbers[9]),
        link_addresses=numbers[0],
        elf_sizes=numbers[1],
        infos=numbers[2],
        shndxs=numbers[3],
        nm_types=str(raws[11], "ascii"),
        kallsyms_sizes=numbers[4],
        kallsyms_kept=numbers[5],
        kept_indexes=numbers[6],
        kept_addresses=numbers[7],
        name_order=numbers[8],
        rule=rule,
    )
    return SymbolTable.from_columns(image, columns)


# -- DWARF: units (compressed rows of their own), the unit map, chains -------------------------


def encode_unit(unit: CuData) -> bytes:
    # Every index is checked against its array here, once, so that a stored unit is
    # consistent; reading it back checks the lengths only.
    if not unit.is_consistent(indexes=True):
        raise StoredValueError(f"unit {unit.cu_offset:#x}: its tables do not fit together")
    arrays = [getattr(unit, name) for name in unit.ARRAY_FIELDS]
    strings = (unit.full_paths, unit.relative_paths, unit.names)
    fields = (
        unit.cu_offset,
        unit.name,
        unit.comp_dir,
        unit.producer_is_clang,
        unit.address_base,
        "".join(values.typecode for values in arrays),
        tuple(len(values) for values in strings),
    )
    columns: list[Column] = [*arrays, array("q", unit.file_numbers)]
    for values in strings:
        columns.extend(_strings(values))
    return pack_columns(fields, columns)


@_decoder
def decode_unit(data: Buffer, image: KernelImage) -> CuData:
    from ltosyms.dwarf import CuData

    array_fields = CuData.ARRAY_FIELDS
    fields, raws = unpack_columns(data, len(array_fields) + 7)
    cu_offset, name, comp_dir, clang, base, typecodes, counts = _tuple(fields, 7)
    typecodes = _str(typecodes)
    if len(typecodes) != len(array_fields) or not set(typecodes) <= set("BHIQ"):
        raise StoredValueError("a stored unit with unknown array types")
    arrays = {}
    for field, code, raw in zip(array_fields, typecodes, raws, strict=False):
        values = array(code)
        values.frombytes(raw)
        arrays[field] = values
    rest = raws[len(array_fields) :]
    full_count, relative_count, name_count = (_int(count) for count in _tuple(counts, 3))
    unit = CuData(
        cu_offset=_int(cu_offset),
        name=_optional_str(name),
        comp_dir=_optional_str(comp_dir),
        producer_is_clang=_bool(clang),
        address_base=_int(base),
        full_paths=_unstrings(rest[1], rest[2], full_count),
        relative_paths=_unstrings(rest[3], rest[4], relative_count),
        file_numbers=tuple(rest[0].cast("q")),
        names=_unstrings(rest[5], rest[6], name_count),
        **arrays,
    )
    if not unit.is_consistent(indexes=False):
        raise StoredValueError(f"stored unit {unit.cu_offset:#x}: its tables do not fit")
    return unit


def encode_address_table(table: AddressTable) -> bytes:
    # The table's own layout (ltosyms.dwarf.table_layout): columns read in place, its own
    # checksum and image key, so that the bytes mean the same inside or outside an index.
    return table.to_bytes()


@_decoder
def decode_address_table(data: Buffer, image: KernelImage) -> AddressTable:
    from ltosyms.dwarf import AddressTable
    from ltosyms.errors import CacheError

    try:
        # The index checked the CRC-32 of these bytes as it mapped the file
        # (IndexStore.get_table): a second pass over 28 MB (Debian 6.1) would find nothing.
        return AddressTable.from_buffer(data, address_table_key(image), checksum=False)
    except CacheError as error:
        raise StoredValueError(str(error)) from None


def address_table_key(image: KernelImage) -> str:
    """The image key an address table names inside its bytes: the build id ("" without one;
    the index file it sits next to is named after the image already)."""
    return image.build_id or ""


def encode_unit_map(unit_map: CuMap) -> bytes:
    columns: list[Column] = [
        array("Q", values) for values in (unit_map.starts, unit_map.ends, unit_map.units)
    ]
    return pack_columns((unit_map.unit_count,), columns)


@_decoder
def decode_unit_map(data: Buffer, image: KernelImage) -> CuMap:
    from ltosyms.dwarf import CuMap

    fields, raws = unpack_columns(data, 3)
    (unit_count,) = _tuple(fields, 1)
    starts, ends, units = array("Q"), array("Q"), array("Q")
    for values, raw in zip((starts, ends, units), raws, strict=True):
        values.frombytes(raw)
    if not len(starts) == len(ends) == len(units):
        raise StoredValueError("stored unit map columns differ in length")
    return CuMap(starts=starts, ends=ends, units=units, unit_count=_int(unit_count))


def encode_chain(chain: tuple[SourceLocation, ...]) -> bytes:
    numbers: list[int | None] = []
    texts: list[str | None] = []
    for entry in chain:
        numbers += [entry.line, entry.column, entry.inlined]
        texts += [entry.function, entry.file, entry.full_path, entry.dwarf_function]
    return pack_flat(numbers, texts)


@_decoder
def decode_chain(data: Buffer, image: KernelImage) -> tuple[SourceLocation, ...]:
    from ltosyms.dwarf import SourceLocation

    numbers, texts, _blob = unpack_flat(data)
    entries = len(numbers) // 3
    if len(numbers) % 3 or len(texts) != 4 * entries:
        raise StoredValueError("a stored chain holds another number of fields")
    return tuple(
        SourceLocation(
            function=texts[4 * i],
            file=texts[4 * i + 1],
            full_path=texts[4 * i + 2],
            line=numbers[3 * i],
            column=numbers[3 * i + 1],
            inlined=bool(numbers[3 * i + 2]),
            dwarf_function=texts[4 * i + 3],
        )
        for i in range(entries)
    )


# -- the ELF symbols that name chains ---------------------------------------------------------


def encode_outer_names(names: OuterNames) -> bytes:
    columns: list[Column] = [
        array("Q", names.starts),
        array("Q", names.ends),
        array("I", names.indexes),
    ]
    return pack_columns((), columns)


@_decoder
def decode_outer_names(data: Buffer, image: KernelImage) -> OuterNames:
    from ltosyms.elf.outer_names import OuterNames

    _fields, (starts, ends, indexes) = unpack_columns(data, 3)
    # Read in place, as the symbol table's columns are.
    return OuterNames(starts.cast("Q"), ends.cast("Q"), indexes.cast("I"))


# -- machine code -------------------------------------------------------------------------------


def encode_call_site(site: CallSite | NoCallSite) -> bytes:
    from ltosyms.disasm.records import NoCallSite

    if isinstance(site, NoCallSite):
        return pack_flat([], [])  # no instruction ends there: a record of nothing
    return pack_flat(
        [
            site.return_address,
            site.link_address,
            site.length,
            site.target_link_address,
            *site.possible_targets,
        ],
        [
            site.mnemonic,
            site.op_str,
            site.kind.value,
            site.thunk,
            None if site.patch is None else site.patch.value,
            site.method.value,
        ],
        site.raw,
    )


@_decoder
def decode_call_site(data: Buffer, image: KernelImage) -> CallSite | NoCallSite:
    from ltosyms.disasm.records import CallKind, CallSite, NoCallSite, PatchReason, SweepMethod

    numbers, texts, raw = unpack_flat(data)
    if not numbers and not texts:
        return NoCallSite.NO_INSTRUCTION
    if len(numbers) < 4 or len(texts) != 6:
        raise StoredValueError("a stored call site holds another number of fields")
    return_address, link_address, length, target, *targets = numbers
    mnemonic, op_str, kind, thunk, patch, method = texts
    return CallSite(
        return_address=_int(return_address),
        link_address=_int(link_address),
        length=_int(length),
        raw=raw,
        mnemonic=_str(mnemonic),
        op_str=_str(op_str),
        kind=CallKind(kind),
        target_link_address=target,
        possible_targets=tuple(_int(t) for t in targets),
        thunk=thunk,
        patch=None if patch is None else PatchReason(patch),
        method=SweepMethod(method),
    )


def encode_sweep(sweep: Sweep) -> bytes:
    sizes = bytes(size for size, _mnemonic, _op_str in sweep.texts)  # x86: 15 bytes at most
    mnemonics = "\0".join(mnemonic for _size, mnemonic, _op_str in sweep.texts)
    op_strs = "\0".join(op_str for _size, _mnemonic, op_str in sweep.texts)
    return pack_columns(
        (sweep.start, sweep.next_address, sweep.exhausted, len(sweep.texts)),
        [
            array("Q", sweep.addresses),
            sizes,
            mnemonics.encode(),
            op_strs.encode(),
            array("Q", sweep.desyncs),
        ],
    )


@_decoder
def decode_sweep(data: Buffer, image: KernelImage) -> Sweep:
    from ltosyms.disasm.callsite import Sweep

    fields, (addresses, sizes, mnemonics, op_strs, desyncs) = unpack_columns(data, 5)
    start, next_address, exhausted, count = _tuple(fields, 4)
    texts = [str(raw, "utf-8").split("\0") if _int(count) else [] for raw in (mnemonics, op_strs)]
    return Sweep.from_columns(
        start=_int(start),
        next_address=_int(next_address),
        exhausted=_bool(exhausted),
        desyncs=desyncs.cast("Q"),
        addresses=addresses.cast("Q"),
        sizes=sizes,
        mnemonics=texts[0],
        op_strs=texts[1],
    )


def encode_patch_sites(sites: PatchSites) -> bytes:
    columns = sites.columns()
    return pack_columns(
        (columns.available,),
        [
            array("Q", columns.starts),
            array("I", columns.lengths),
            bytes(columns.reason_codes),
            array("I", columns.first_replacement),
            array("Q", columns.replacement_addresses),
            array("I", columns.replacement_ends),
            columns.replacement_bytes,
            array("Q", columns.thunk_starts),
            bytes(columns.thunk_reason_codes),
        ],
    )


@_decoder
def decode_patch_sites(data: Buffer, image: KernelImage) -> PatchSites:
    from ltosyms.disasm.patching import PatchColumns, PatchSites

    fields, raws = unpack_columns(data, 9)
    (available,) = _tuple(fields, 1)
    columns = PatchColumns(
        available=_bool(available),
        starts=raws[0].cast("Q"),
        lengths=raws[1].cast("I"),
        reason_codes=bytes(raws[2]),
        first_replacement=raws[3].cast("I"),
        replacement_addresses=raws[4].cast("Q"),
        replacement_ends=raws[5].cast("I"),
        replacement_bytes=bytes(raws[6]),
        thunk_starts=raws[7].cast("Q"),
        thunk_reason_codes=bytes(raws[8]),
    )
    return PatchSites.from_columns(image, columns)


def encode_code_match(match: CodeMatch) -> bytes:
    return dumps(_match_fields(match))


def _match_fields(match: CodeMatch) -> tuple[object, ...]:
    return (
        match.verdict.value,
        match.compared,
        match.differing,
        match.unexplained_offsets,
        tuple((site.offset, site.length, site.reason.value) for site in match.patched_sites),
    )


@_decoder
def decode_code_match(data: Buffer, image: KernelImage) -> CodeMatch:
    return _match(loads(data))


def _match(value: object) -> CodeMatch:
    from ltosyms.disasm.records import CodeMatch, CodeVerdict, PatchedSite, PatchReason

    verdict, compared, differing, unexplained, sites = _tuple(value, 5)
    return CodeMatch(
        verdict=CodeVerdict(verdict),
        compared=_int(compared),
        differing=_int(differing),
        unexplained_offsets=tuple(_int(offset) for offset in _tuple(unexplained)),
        patched_sites=tuple(
            PatchedSite(offset=_int(offset), length=_int(length), reason=PatchReason(reason))
            for offset, length, reason in (_tuple(site, 3) for site in _tuple(sites))
        ),
    )


def encode_code_analysis(analysis: CodeAnalysis) -> bytes:
    report = analysis.report
    listing = report.listing
    return dumps(
        (
            None if listing is None else _listing_fields(listing),
            None if report.match is None else _match_fields(report.match),
            report.image,
            analysis.warnings,
        )
    )


@_decoder
def decode_code_analysis(data: Buffer, image: KernelImage) -> CodeAnalysis:
    from ltosyms.disasm.records import CodeAnalysis, CodeReport

    listing, match, image_name, warnings = _tuple(loads(data), 4)
    return CodeAnalysis(
        report=CodeReport(
            listing=None if listing is None else _listing(listing),
            match=None if match is None else _match(match),
            image=_optional_str(image_name),
        ),
        warnings=tuple(_str(warning) for warning in _tuple(warnings)),
    )


def _listing_fields(listing: CodeListing) -> tuple[object, ...]:
    return (
        listing.arch,
        tuple(
            (i.offset, i.link_address, i.raw, i.mnemonic, i.op_str, i.is_fault)
            for i in listing.instructions
        ),
        listing.marker_index,
        listing.marker_link_address,
        listing.undecoded_prefix,
    )


def _listing(value: object) -> CodeListing:
    from ltosyms.disasm.records import CodeInstruction, CodeListing

    arch, instructions, marker_index, marker_link_address, prefix = _tuple(value, 5)
    made = []
    for instruction in _tuple(instructions):
        offset, link_address, raw, mnemonic, op_str, is_fault = _tuple(instruction, 6)
        if type(raw) is not bytes:
            raise StoredValueError("instruction bytes were stored as another type")
        made.append(
            CodeInstruction(
                offset=_int(offset),
                link_address=_optional_int(link_address),
                raw=raw,
                mnemonic=_str(mnemonic),
                op_str=_str(op_str),
                is_fault=_bool(is_fault),
            )
        )
    return CodeListing(
        arch=_str(arch),
        instructions=tuple(made),
        marker_index=_optional_int(marker_index),
        marker_link_address=_optional_int(marker_link_address),
        undecoded_prefix=_int(prefix),
    )


def encode_code_view(view: CodeView) -> bytes:
    return dumps(
        (
            view.source.value,
            tuple(
                (
                    row.kind.value,
                    _point_fields(row.label),
                    row.mnemonic,
                    row.operands,
                    _point_fields(row.target),
                    row.comment,
                    _point_fields(row.starts_at),
                )
                for row in view.rows
            ),
            view.note,
            None if view.listing is None else _listing_fields(view.listing),
        )
    )


@_decoder
def decode_code_view(data: Buffer, image: KernelImage) -> CodeView:
    from ltosyms.disasm.view import CodeRow, CodeView, RowKind, ViewSource

    source, rows, note, listing = _tuple(loads(data), 4)
    made = []
    for row in _tuple(rows):
        kind, label, mnemonic, operands, target, comment, starts_at = _tuple(row, 7)
        made.append(
            CodeRow(
                kind=RowKind(kind),
                label=_point(label),
                mnemonic=_str(mnemonic),
                operands=_str(operands),
                target=_point(target),
                comment=_optional_str(comment),
                starts_at=_point(starts_at),
            )
        )
    return CodeView(
        source=ViewSource(source),
        rows=tuple(made),
        note=_optional_str(note),
        listing=None if listing is None else _listing(listing),
    )


def _point_fields(point: CodePoint | None) -> tuple[object, ...] | None:
    if point is None:
        return None
    return (point.symbol, point.offset, point.section, point.link_address)


def _point(value: object) -> CodePoint | None:
    from ltosyms.disasm.targets import CodePoint

    if value is None:
        return None
    symbol, offset, section, link_address = _tuple(value, 4)
    return CodePoint(
        symbol=_optional_str(symbol),
        offset=_int(offset),
        section=_optional_str(section),
        link_address=_optional_int(link_address),
    )


# -- build facts --------------------------------------------------------------------------------


def encode_build_facts(facts: BuildFacts) -> bytes:
    return dumps(
        (
            facts.banner,
            facts.version,
            facts.compiler,
            facts.compiler_ident,
            facts.lto_note,
            facts.llvm_symbols,
            facts.clang_lto,
            facts.numbered_functions,
        )
    )


@_decoder
def decode_build_facts(data: Buffer, image: KernelImage) -> BuildFacts:
    from ltosyms.elf.build_facts import BuildFacts

    banner, version, compiler, ident, lto_note, llvm, clang_lto, numbered = _tuple(loads(data), 8)
    if version is not None:
        major, minor, sublevel = (_int(part) for part in _tuple(version, 3))
        version = (major, minor, sublevel)
    return BuildFacts(
        banner=_optional_str(banner),
        version=version,
        compiler=_optional_str(compiler),
        compiler_ident=_optional_str(ident),
        lto_note=None if lto_note is None else _bool(lto_note),
        llvm_symbols=_int(llvm),
        clang_lto=_bool(clang_lto),
        numbered_functions=_int(numbered),
    )


# -- the diff census of an image ---------------------------------------------------------------
#
# The diff sits above the persistence layer: its census (ltosyms.diff.census.ImageCensus) is
# kept as the plain columns below, which the diff makes from its records and its records from.
# Section classes and symbol kinds are named by strings (the diff's enum values).


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupColumns:
    """Symbol groups (ltosyms.diff.model.SymbolGroup), one entry per group in each per-group
    column; ``names`` and ``symbol_indexes`` hold ``name_counts[i]`` entries for group ``i``,
    ``alias_names`` ``alias_counts[i]``, one after the other."""

    is_function: Sequence[int]
    sizes: Sequence[int]
    link_addresses: Sequence[int]
    section_classes: Sequence[int]  # positions in CensusColumns.class_names
    is_global: Sequence[int]
    member_counts: Sequence[int]
    name_counts: Sequence[int]
    alias_counts: Sequence[int]
    base_names: Sequence[str]
    nm_types: Sequence[str]
    units: Sequence[str | None]
    file_symbols: Sequence[str | None]
    dwarf_names: Sequence[str | None]
    decl_files: Sequence[str | None]
    names: Sequence[str]
    symbol_indexes: Sequence[int]
    alias_names: Sequence[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class CensusColumns:
    """An image's diff census as plain values. The ``inlined_*`` columns hold, per function
    inlined somewhere, its name, declaring file, count of inlined instances and number of
    callers, and the callers of all of them one function after the other: the ``low_pc`` of
    the out-of-line function holding instances, and how many it holds."""

    build_id: str | None
    machine: str
    kind: str  # ltosyms.elf.image.ImageKind value
    has_dwarf: bool
    dwarf_seconds: float | None
    class_names: tuple[str, ...]
    sections: tuple[tuple[str, int, int], ...]  # name, size, position in class_names
    symbol_bytes: tuple[tuple[int, int], ...]  # position in class_names, bytes
    groups: GroupColumns
    empty_groups: GroupColumns
    inlined_names: Sequence[str]
    inlined_decl_files: Sequence[str | None]
    inlined_counts: Sequence[int]
    inlined_caller_counts: Sequence[int]
    inlined_caller_low_pcs: Sequence[int]
    inlined_caller_instances: Sequence[int]


_GROUP_NUMBERS: tuple[tuple[str, Literal["B", "I", "Q"]], ...] = (
    ("is_function", "B"),
    ("sizes", "Q"),
    ("link_addresses", "Q"),
    ("section_classes", "B"),
    ("is_global", "B"),
    ("member_counts", "I"),
    ("name_counts", "I"),
    ("alias_counts", "I"),
)
_GROUP_TEXTS = ("base_names", "nm_types", "units", "file_symbols", "dwarf_names", "decl_files")
_GROUP_NAMES = frozenset({"base_names", "nm_types"})  # never None
# Number columns, per text column its distinct strings and positions, names, indexes, alias
# names.
_GROUP_COLUMNS = len(_GROUP_NUMBERS) + 2 * len(_GROUP_TEXTS) + 3
# Inlined functions: names, decl files (distinct strings + positions), counts, callers per
# function, caller low_pcs and caller counts.
_INLINED_COLUMNS = 7


def encode_diff_census(census: CensusColumns) -> bytes:
    fields = (
        census.build_id,
        census.machine,
        census.kind,
        census.has_dwarf,
        census.class_names,
        census.sections,
        census.symbol_bytes,
        len(census.groups.sizes),
        len(census.empty_groups.sizes),
        len(census.inlined_names),
    )
    # The seconds as a column: marshal's floats are not among the stored types.
    seconds = () if census.dwarf_seconds is None else (census.dwarf_seconds,)
    columns: list[Column] = [array("d", seconds)]
    for groups in (census.groups, census.empty_groups):
        columns.extend(_group_columns(groups))
    columns.append(_strings(census.inlined_names)[0])
    columns.extend(_dictionary(census.inlined_decl_files))
    columns.append(array("Q", census.inlined_counts))
    columns.append(array("I", census.inlined_caller_counts))
    columns.append(array("Q", census.inlined_caller_low_pcs))
    columns.append(array("Q", census.inlined_caller_instances))
    return pack_columns(fields, columns)


def _group_columns(groups: GroupColumns) -> list[Column]:
    columns: list[Column] = [array(code, getattr(groups, name)) for name, code in _GROUP_NUMBERS]
    for name in _GROUP_TEXTS:
        columns.extend(_dictionary(getattr(groups, name), optional=name not in _GROUP_NAMES))
    columns.append(_strings(groups.names)[0])
    columns.append(array("I", groups.symbol_indexes))
    columns.append(_strings(groups.alias_names)[0])
    return columns


@_decoder
def decode_diff_census(data: Buffer, image: KernelImage) -> CensusColumns:
    fields, (seconds, *raws) = unpack_columns(data, 1 + 2 * _GROUP_COLUMNS + _INLINED_COLUMNS)
    build_id, machine, kind, has_dwarf, class_names, sections, symbol_bytes, *counts = _tuple(
        fields, 10
    )
    if build_id != image.build_id or machine != image.machine or kind != image.kind.value:
        raise StoredValueError("a diff census of another image")
    group_count, empty_count, inlined_count = (_int(count) for count in counts)
    names = tuple(_str(name) for name in _tuple(class_names))

    def class_position(value: object) -> int:
        if not 0 <= _int(value) < len(names):
            raise StoredValueError("a stored section class out of range")
        return _int(value)

    return CensusColumns(
        build_id=image.build_id,
        machine=image.machine,
        kind=image.kind.value,
        has_dwarf=_bool(has_dwarf),
        dwarf_seconds=seconds.cast("d")[0] if len(seconds) else None,
        class_names=names,
        sections=tuple(
            (_str(name), _int(size), class_position(position))
            for name, size, position in (_tuple(row, 3) for row in _tuple(sections))
        ),
        symbol_bytes=tuple(
            (class_position(position), _int(size))
            for position, size in map(_pair, _tuple(symbol_bytes))
        ),
        groups=_group_values(raws[:_GROUP_COLUMNS], group_count, len(names)),
        empty_groups=_group_values(
            raws[_GROUP_COLUMNS : 2 * _GROUP_COLUMNS], empty_count, len(names)
        ),
        **_inlined_values(raws[2 * _GROUP_COLUMNS :], inlined_count),
    )


def _group_values(raws: Sequence[memoryview], count: int, class_count: int) -> GroupColumns:
    numbers = {
        name: raw.cast(code) for raw, (name, code) in zip(raws, _GROUP_NUMBERS, strict=False)
    }
    if any(len(column) != count for column in numbers.values()):
        raise StoredValueError("stored symbol group columns differ in length")
    if count and max(numbers["section_classes"]) >= class_count:
        raise StoredValueError("a stored section class out of range")
    if count and max(numbers["is_function"]) > 1:
        raise StoredValueError("a stored symbol kind out of range")
    rest = raws[len(_GROUP_NUMBERS) :]
    texts = {
        name: _undictionary(rest[2 * i], rest[2 * i + 1], count, optional=name not in _GROUP_NAMES)
        for i, name in enumerate(_GROUP_TEXTS)
    }
    name_counts, alias_counts = numbers["name_counts"], numbers["alias_counts"]
    if count and min(name_counts) == 0:
        raise StoredValueError("a stored symbol group without a name")
    names = _texts(rest[-3], sum(name_counts))
    indexes = rest[-2].cast("I")
    if len(indexes) != len(names):
        raise StoredValueError("stored symbol groups with another number of indexes")
    return GroupColumns(
        **numbers,
        base_names=cast("list[str]", texts["base_names"]),  # columns without None
        nm_types=cast("list[str]", texts["nm_types"]),
        units=texts["units"],
        file_symbols=texts["file_symbols"],
        dwarf_names=texts["dwarf_names"],
        decl_files=texts["decl_files"],
        names=names,
        symbol_indexes=indexes,
        alias_names=_texts(rest[-1], sum(alias_counts)),
    )


def _inlined_values(raws: Sequence[memoryview], count: int) -> dict[str, Sequence[Any]]:
    """The inlined functions' columns of :class:`CensusColumns`, by field name: the strings
    split, the numbers read in place (a function's callers are cut out when asked for)."""
    names, decl_text, decl_nones, totals, caller_counts, low_pcs, caller_totals = raws
    values: dict[str, Sequence[Any]] = {
        "inlined_names": _texts(names, count),
        "inlined_decl_files": _undictionary(decl_text, decl_nones, count),
        "inlined_counts": totals.cast("Q"),
        "inlined_caller_counts": caller_counts.cast("I"),
        "inlined_caller_low_pcs": low_pcs.cast("Q"),
        "inlined_caller_instances": caller_totals.cast("Q"),
    }
    if len(values["inlined_counts"]) != count or len(values["inlined_caller_counts"]) != count:
        raise StoredValueError("stored inlined functions differ in length")
    if len(values["inlined_caller_low_pcs"]) != len(values["inlined_caller_instances"]):
        raise StoredValueError("stored callers of inlined functions differ in length")
    if sum(values["inlined_caller_counts"]) != len(values["inlined_caller_low_pcs"]):
        raise StoredValueError("stored inlined functions do not fit their callers")
    return values


def _texts(raw: memoryview, count: int) -> list[str]:
    """The ``count`` strings (none of them None) of a column :func:`_strings` wrote."""
    values = str(raw, "utf-8").split("\0") if count else []
    if len(values) != count or (not count and len(raw)):
        raise StoredValueError("a stored column holds another number of strings")
    return values
