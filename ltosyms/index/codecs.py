"""Each stored kind's codec: its record to bytes and back (the kinds are declared in
:mod:`ltosyms.index.kinds`).

Encoders take the record the stage made. Decoders take the stored bytes (a ``bytes`` row or a
memory-mapped table) and the image the value belongs to, and build the record through its
public constructor; bytes that do not make one raise
:class:`~ltosyms.index.encoding.StoredValueError`, nothing else (the checked fields of
:mod:`ltosyms.index.fields`; :func:`~ltosyms.index.fields.checked_decoder` turns the errors of
a malformed field into it). The diff census has a codec of its own,
:mod:`ltosyms.index.census_codec`, which only a diff loads. Large values are packed
columns read back in place; the answers asked for most often (inline chains, call sites) are
flat records; the rest are small marshalled tuples.

The record modules are imported inside the functions: importing the persistence layer loads
none of the DWARF parsers, unit tables or disassembler modules, and a decode loads only the
record modules of what it reads.
"""

from __future__ import annotations

import struct
from array import array
from itertools import accumulate
from typing import TYPE_CHECKING, Literal

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
from ltosyms.index.fields import (
    checked_decoder,
    stored_bool,
    stored_int,
    stored_optional_int,
    stored_optional_str,
    stored_pair,
    stored_str,
    stored_tuple,
    string_column,
    strings_of_column,
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


@checked_decoder
def decode_symbols(data: Buffer, image: KernelImage) -> SymbolTable:
    from ltosyms.elf.symtab import NameColumn, SymbolColumns, SymbolTable
    from ltosyms.names.kallsyms import KeepRule

    fields, raws = unpack_columns(data, len(SYMBOL_COLUMNS))
    build_id, all_symbols, ranges, last_end = stored_tuple(fields, 4)
    if build_id != image.build_id:
        raise StoredValueError("a symbol table of another build")
    rule = KeepRule(
        all_symbols=stored_bool(all_symbols),
        text_ranges=tuple(stored_pair(text_range) for text_range in stored_tuple(ranges)),
        last_symbol_end=stored_int(last_end),
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
        columns.extend(string_column(values))
    return pack_columns(fields, columns)


@checked_decoder
def decode_unit(data: Buffer, image: KernelImage) -> CuData:
    from ltosyms.dwarf import CuData

    array_fields = CuData.ARRAY_FIELDS
    fields, raws = unpack_columns(data, len(array_fields) + 7)
    cu_offset, name, comp_dir, clang, base, typecodes, counts = stored_tuple(fields, 7)
    typecodes = stored_str(typecodes)
    if len(typecodes) != len(array_fields) or not set(typecodes) <= set("BHIQ"):
        raise StoredValueError("a stored unit with unknown array types")
    arrays = {}
    for field, code, raw in zip(array_fields, typecodes, raws, strict=False):
        values = array(code)
        values.frombytes(raw)
        arrays[field] = values
    rest = raws[len(array_fields) :]
    full_count, relative_count, name_count = (
        stored_int(count) for count in stored_tuple(counts, 3)
    )
    unit = CuData(
        cu_offset=stored_int(cu_offset),
        name=stored_optional_str(name),
        comp_dir=stored_optional_str(comp_dir),
        producer_is_clang=stored_bool(clang),
        address_base=stored_int(base),
        full_paths=strings_of_column(rest[1], rest[2], full_count),
        relative_paths=strings_of_column(rest[3], rest[4], relative_count),
        file_numbers=tuple(rest[0].cast("q")),
        names=strings_of_column(rest[5], rest[6], name_count),
        **arrays,
    )
    if not unit.is_consistent(indexes=False):
        raise StoredValueError(f"stored unit {unit.cu_offset:#x}: its tables do not fit")
    return unit


def encode_address_table(table: AddressTable) -> bytes:
    # The table's own layout (ltosyms.dwarf.table_layout): columns read in place, its own
    # checksum and image key, so that the bytes mean the same inside or outside an index.
    return table.to_bytes()


@checked_decoder
def decode_address_table(data: Buffer, image: KernelImage) -> AddressTable:
    from ltosyms.dwarf import AddressTable
    from ltosyms.errors import CacheError

    try:
        # The index checked the CRC-32 of these bytes when the file was new or had changed
        # since it was last found intact (IndexStore.get_table): a second pass over 28 MB
        # (Debian 6.1) on every open would find nothing more.
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


@checked_decoder
def decode_unit_map(data: Buffer, image: KernelImage) -> CuMap:
    from ltosyms.dwarf import CuMap

    fields, raws = unpack_columns(data, 3)
    (unit_count,) = stored_tuple(fields, 1)
    starts, ends, units = array("Q"), array("Q"), array("Q")
    for values, raw in zip((starts, ends, units), raws, strict=True):
        values.frombytes(raw)
    if not len(starts) == len(ends) == len(units):
        raise StoredValueError("stored unit map columns differ in length")
    return CuMap(starts=starts, ends=ends, units=units, unit_count=stored_int(unit_count))


def encode_chain(chain: tuple[SourceLocation, ...]) -> bytes:
    numbers: list[int | None] = []
    texts: list[str | None] = []
    for entry in chain:
        entry_numbers, entry_texts = entry.fields()
        numbers += entry_numbers
        texts += entry_texts
    return pack_flat(numbers, texts)


@checked_decoder
def decode_chain(data: Buffer, image: KernelImage) -> tuple[SourceLocation, ...]:
    from ltosyms.dwarf import SourceLocation

    numbers, texts, _blob = unpack_flat(data)
    entries = len(numbers) // 3
    if len(numbers) % 3 or len(texts) != 4 * entries:
        raise StoredValueError("a stored chain holds another number of fields")
    return tuple(
        SourceLocation.from_fields(numbers[3 * i : 3 * i + 3], texts[4 * i : 4 * i + 4])
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


@checked_decoder
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
    numbers, texts = site.fields()
    return pack_flat(numbers, texts, site.raw)


@checked_decoder
def decode_call_site(data: Buffer, image: KernelImage) -> CallSite | NoCallSite:
    from ltosyms.disasm.records import CallSite, NoCallSite

    numbers, texts, raw = unpack_flat(data)
    if not numbers and not texts:
        return NoCallSite.NO_INSTRUCTION
    if len(numbers) < 4 or len(texts) != 6:
        raise StoredValueError("a stored call site holds another number of fields")
    return CallSite.from_fields(numbers, texts, raw)


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


@checked_decoder
def decode_sweep(data: Buffer, image: KernelImage) -> Sweep:
    from ltosyms.disasm.callsite import Sweep

    fields, (addresses, sizes, mnemonics, op_strs, desyncs) = unpack_columns(data, 5)
    start, next_address, exhausted, count = stored_tuple(fields, 4)
    texts = [
        str(raw, "utf-8").split("\0") if stored_int(count) else [] for raw in (mnemonics, op_strs)
    ]
    return Sweep.from_columns(
        start=stored_int(start),
        next_address=stored_int(next_address),
        exhausted=stored_bool(exhausted),
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


@checked_decoder
def decode_patch_sites(data: Buffer, image: KernelImage) -> PatchSites:
    from ltosyms.disasm.patching import PatchColumns, PatchSites

    fields, raws = unpack_columns(data, 9)
    (available,) = stored_tuple(fields, 1)
    columns = PatchColumns(
        available=stored_bool(available),
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


@checked_decoder
def decode_code_match(data: Buffer, image: KernelImage) -> CodeMatch:
    return _match(loads(data))


def _match(value: object) -> CodeMatch:
    from ltosyms.disasm.records import CodeMatch, CodeVerdict, PatchedSite, PatchReason

    verdict, compared, differing, unexplained, sites = stored_tuple(value, 5)
    return CodeMatch(
        verdict=CodeVerdict(verdict),
        compared=stored_int(compared),
        differing=stored_int(differing),
        unexplained_offsets=tuple(stored_int(offset) for offset in stored_tuple(unexplained)),
        patched_sites=tuple(
            PatchedSite(
                offset=stored_int(offset), length=stored_int(length), reason=PatchReason(reason)
            )
            for offset, length, reason in (stored_tuple(site, 3) for site in stored_tuple(sites))
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


@checked_decoder
def decode_code_analysis(data: Buffer, image: KernelImage) -> CodeAnalysis:
    from ltosyms.disasm.records import CodeAnalysis, CodeReport

    listing, match, image_name, warnings = stored_tuple(loads(data), 4)
    return CodeAnalysis(
        report=CodeReport(
            listing=None if listing is None else _listing(listing),
            match=None if match is None else _match(match),
            image=stored_optional_str(image_name),
        ),
        warnings=tuple(stored_str(warning) for warning in stored_tuple(warnings)),
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

    arch, instructions, marker_index, marker_link_address, prefix = stored_tuple(value, 5)
    made = []
    for instruction in stored_tuple(instructions):
        offset, link_address, raw, mnemonic, op_str, is_fault = stored_tuple(instruction, 6)
        if type(raw) is not bytes:
            raise StoredValueError("instruction bytes were stored as another type")
        made.append(
            CodeInstruction(
                offset=stored_int(offset),
                link_address=stored_optional_int(link_address),
                raw=raw,
                mnemonic=stored_str(mnemonic),
                op_str=stored_str(op_str),
                is_fault=stored_bool(is_fault),
            )
        )
    return CodeListing(
        arch=stored_str(arch),
        instructions=tuple(made),
        marker_index=stored_optional_int(marker_index),
        marker_link_address=stored_optional_int(marker_link_address),
        undecoded_prefix=stored_int(prefix),
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


@checked_decoder
def decode_code_view(data: Buffer, image: KernelImage) -> CodeView:
    from ltosyms.disasm.view import CodeRow, CodeView, RowKind, ViewSource

    source, rows, note, listing = stored_tuple(loads(data), 4)
    made = []
    for row in stored_tuple(rows):
        kind, label, mnemonic, operands, target, comment, starts_at = stored_tuple(row, 7)
        made.append(
            CodeRow(
                kind=RowKind(kind),
                label=_point(label),
                mnemonic=stored_str(mnemonic),
                operands=stored_str(operands),
                target=_point(target),
                comment=stored_optional_str(comment),
                starts_at=_point(starts_at),
            )
        )
    return CodeView(
        source=ViewSource(source),
        rows=tuple(made),
        note=stored_optional_str(note),
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
    symbol, offset, section, link_address = stored_tuple(value, 4)
    return CodePoint(
        symbol=stored_optional_str(symbol),
        offset=stored_int(offset),
        section=stored_optional_str(section),
        link_address=stored_optional_int(link_address),
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


@checked_decoder
def decode_build_facts(data: Buffer, image: KernelImage) -> BuildFacts:
    from ltosyms.elf.build_facts import BuildFacts

    banner, version, compiler, ident, lto_note, llvm, clang_lto, numbered = stored_tuple(
        loads(data), 8
    )
    if version is not None:
        major, minor, sublevel = (stored_int(part) for part in stored_tuple(version, 3))
        version = (major, minor, sublevel)
    return BuildFacts(
        banner=stored_optional_str(banner),
        version=version,
        compiler=stored_optional_str(compiler),
        compiler_ident=stored_optional_str(ident),
        lto_note=None if lto_note is None else stored_bool(lto_note),
        llvm_symbols=stored_int(llvm),
        clang_lto=stored_bool(clang_lto),
        numbered_functions=stored_int(numbered),
    )


# -- flat records (their records are made above this layer) ----------------------------------

FlatRecord = tuple[list[int | None], list[str | None], bytes]


def encode_flat_record(record: FlatRecord) -> bytes:
    numbers, texts, blob = record
    try:
        return pack_flat(numbers, texts, blob)
    except struct.error as error:  # a number out of the unsigned 64-bit range
        raise StoredValueError(f"not a flat record: {error}") from None


def decode_flat_record(data: Buffer, image: KernelImage) -> FlatRecord:
    return unpack_flat(data)
