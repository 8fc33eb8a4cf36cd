"""A whole-image pass over DWARF: every out-of-line function and every inlined instance.

Questions about one address go CU by CU (docs/kernel-facts.md#dwarf-on-kernels). A diff of two
builds asks about *all* functions at once: where each out-of-line copy came from (name, declaring
file, compilation unit) and how many times each function was inlined, into which callers. That needs
one linear walk of ``.debug_info``. The walk is the shared DIE reader's
(:meth:`ltosyms.dwarf.info.DieReader.program_dies`: abbreviations compiled to straight-line code,
uninteresting subtrees jumped over with ``DW_AT_sibling``); this module turns what it finds into
names:

- names behind ``DW_AT_abstract_origin`` / ``DW_AT_specification`` are resolved inside the unit
  once it is walked, and across units (gcc LTO's ``<artificial>`` units, ``DW_FORM_ref_addr``)
  by reading the one referenced DIE;
- each inlined instance is charged to the outermost out-of-line function holding it;
- large sections are split by compilation unit over worker processes.

Malformed DWARF raises :class:`ltosyms.errors.DwarfError`.
"""

from __future__ import annotations

import bisect
import logging
import multiprocessing
import os
import posixpath
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.build import unit_range_reader
from ltosyms.dwarf.extract import FUNCTION_LAYOUT, VARIABLE_LAYOUT, Values
from ltosyms.dwarf.forms import read_uleb
from ltosyms.dwarf.info import DieReader
from ltosyms.dwarf.line import LineHeader, read_line_header
from ltosyms.dwarf.ranges import RangeReader
from ltosyms.dwarf.sections import DwarfSections
from ltosyms.dwarf.units import Unit
from ltosyms.errors import DwarfError
from ltosyms.limits import MAX_NAME_HOPS

log = logging.getLogger(__name__)

PARALLEL_THRESHOLD = 48 << 20  # bytes of .debug_info above which units go to worker processes


# -- public records ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DwarfFunction:
    """One out-of-line function (a ``DW_TAG_subprogram`` with code).

    ``unit`` is the compilation unit that declares the function (for gcc LTO's ``<artificial>``
    units, the unit of the abstract origin), as a source-relative path like ``kernel/fork.c``.
    """

    name: str
    linkage_name: str | None
    decl_file: str | None
    unit: str
    low_pc: int
    ranges: tuple[tuple[int, int], ...]  # [start, end) link addresses

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.name, self.decl_file)


@dataclass(frozen=True, slots=True, kw_only=True)
class InlinedFunction:
    """Every inlined instance of one function (``DW_TAG_inlined_subroutine`` DIEs).

    ``callers`` gives, per out-of-line function holding instances, its ``low_pc`` (a link
    address, to be named with the symbol table) and how many instances it holds.
    """

    name: str
    decl_file: str | None
    count: int
    callers: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DwarfVariable:
    name: str
    unit: str
    link_address: int


class DwarfCensus:
    """The result of :func:`take_census`: functions by address, inlined instances by function."""

    def __init__(
        self,
        functions: list[DwarfFunction],
        inlined: dict[tuple[str, str | None], InlinedFunction],
        variables: list[DwarfVariable],
        source_root: str,
        unit_count: int,
    ) -> None:
        self.functions = functions
        self.inlined = inlined
        self.variables = variables
        self.source_root = source_root
        self.unit_count = unit_count
        spans = sorted(
            (start, end, index)
            for index, function in enumerate(functions)
            for start, end in function.ranges
            if end > start
        )
        self._span_starts = [span[0] for span in spans]
        self._spans = spans
        self._variables_by_address = {v.link_address: v for v in variables}

    def function_at(self, link_address: int) -> DwarfFunction | None:
        """The out-of-line function whose code holds ``link_address`` (range starts win)."""
        position = bisect.bisect_right(self._span_starts, link_address) - 1
        best: DwarfFunction | None = None
        # Spans do not nest for C, but zero-length or overlapping junk does occur: look back a
        # little for the innermost span holding the address.
        for candidate in range(position, max(position - 4, -1), -1):
            start, end, index = self._spans[candidate]
            if start <= link_address < end:
                function = self.functions[index]
                if start == link_address:
                    return function
                best = best or function
        return best

    def variable_at(self, link_address: int) -> DwarfVariable | None:
        return self._variables_by_address.get(link_address)


# -- entry point -------------------------------------------------------------------------------


def take_census(sections: DwarfSections, workers: int | None = None) -> DwarfCensus:
    """Walk all of ``.debug_info`` once. :class:`DwarfError` if the sections hold no DWARF or
    it cannot be decoded. A module's sections come relocated to the addresses its image lays
    them out at (as the module loader does), so its census answers like a vmlinux's."""
    if not sections.has_dwarf():
        raise DwarfError(f"{sections.name}: has no DWARF (.debug_info)")
    try:
        return _take_census(sections, workers)
    except DwarfError as error:
        raise DwarfError(f"{sections.name}: {error}") from None


def _take_census(sections: DwarfSections, workers: int | None) -> DwarfCensus:
    reader = DieReader(sections, every_unit=True)
    try:
        return _scan_all(reader, workers)
    finally:
        reader.forget_units()


def _scan_all(reader: DieReader, workers: int | None) -> DwarfCensus:
    offsets = reader.index.offsets
    units = [
        (offset, end - offset)
        for offset, end in zip(offsets, [*offsets[1:], reader.info.size], strict=True)
    ]
    if workers is None:
        workers = os.cpu_count() or 1
    batches = _split(units, workers if reader.info.size > PARALLEL_THRESHOLD else 1)
    if len(batches) > 1 and "fork" in multiprocessing.get_all_start_methods():
        _FORKED["reader"] = reader  # inherited by the forked workers, not pickled
        try:
            context = multiprocessing.get_context("fork")
            with context.Pool(len(batches)) as pool:
                results = pool.map(_scan_batch_in_worker, batches)
        except OSError as error:  # no processes to be had: the same work in this one
            log.info("DWARF census without worker processes: %s", error)
            results = [_scan_units(reader, batch) for batch in batches]
        finally:
            _FORKED.clear()
    else:
        results = [_scan_units(reader, batch) for batch in batches]
    return _assemble(len(units), results)


def _split(units: list[tuple[int, int]], parts: int) -> list[list[int]]:
    """Cut the (offset, size) unit list into ``parts`` runs of about equal bytes."""
    if parts <= 1 or len(units) < 2:
        return [[offset for offset, _size in units]]
    total = sum(size for _offset, size in units)
    share = total / parts
    batches: list[list[int]] = [[]]
    filled = 0
    for offset, size in units:
        if filled >= share * len(batches) and len(batches) < parts:
            batches.append([])
        batches[-1].append(offset)
        filled += size
    return [batch for batch in batches if batch]


# -- names and paths of one unit ---------------------------------------------------------------


class _UnitNames:
    """A unit's name and the names of its line table's files, as the census gives them:
    joined with ``DW_AT_comp_dir`` and normalized (the file table is read only if asked)."""

    def __init__(self, reader: DieReader, unit: Unit) -> None:
        self.reader = reader
        self.unit = unit
        self.comp_dir = unit.top_string(F.AT_COMP_DIR) or ""
        name = unit.top_string(F.AT_NAME) or ""
        self.name = _join(self.comp_dir, "", name) if name and not name.startswith("<") else name
        self._header: LineHeader | None = None
        self._read = False
        self._files: dict[int, str | None] = {}

    def file_name(self, number: int) -> str | None:
        """The path of file ``number`` of the unit's line table (None: no such file)."""
        if number in self._files:
            return self._files[number]
        header = self._line_header()
        path: str | None = None
        if header is not None and 0 <= number < len(header.files):
            name, index = header.files[number]
            directories = header.directories
            if header.version >= 5:
                directory = directories[index] if index < len(directories) else ""
                path = _join(self.comp_dir, directory, name)
            elif index >= 0:  # DWARF 2-4 number files from 1: entry 0 is a placeholder
                # Directory 0 is the compilation directory (DWARF 4 §6.2.4,
                # include_directories); the header lists the others from 1.
                directory = self.comp_dir if index == 0 else ""
                if 0 < index <= len(directories):
                    directory = directories[index - 1]
                path = _join(self.comp_dir, directory, name)
        self._files[number] = path
        return path

    def _line_header(self) -> LineHeader | None:
        if not self._read:
            self._read = True
            try:
                statement_list = self.unit.top_constant(F.AT_STMT_LIST)
                if statement_list is not None:
                    table = read_line_header(
                        self.reader.sections,
                        statement_list,
                        self.unit,
                        self.comp_dir,
                        self.unit.header.address_size,
                    )
                    self._header = table.header
            except DwarfError as error:
                log.debug("unit %#x: unreadable line table header: %s", self.unit.base, error)
        return self._header


def _join(comp_dir: str, directory: str, name: str) -> str:
    if not name.startswith("/"):
        name = posixpath.join(directory, name) if directory else name
        if not name.startswith("/") and comp_dir:
            name = posixpath.join(comp_dir, name)
    return posixpath.normpath(name)


# -- the scan ----------------------------------------------------------------------------------

# Where a DIE's name comes from: (name, decl file, unit name), paths absolute. While a unit is
# scanned, a DIE not named inside the unit is its offset (_Origin) until the cross-unit resolver
# reads it.
_Source = tuple[str, str | None, str]
_Origin = _Source | int


@dataclass(slots=True)
class _BatchResult:
    """What one run of units gives, every name resolved (unnamable DIEs are left out)."""

    unit_names: dict[int, str]  # unit offset -> absolute name
    functions: list[tuple[_Source, str | None, int, tuple[tuple[int, int], ...]]]
    inlined: Counter[tuple[_Source, int]]  # (origin, caller low_pc) -> instances
    variables: list[tuple[_Source, int]]


# The DWARF reader, set by take_census just before forking the workers that use it.
_FORKED: dict[str, DieReader] = {}


def _scan_batch_in_worker(batch: list[int]) -> _BatchResult:
    return _scan_units(_FORKED["reader"], batch)


def _scan_units(reader: DieReader, unit_offsets: Sequence[int]) -> _BatchResult:
    result = _BatchResult(unit_names={}, functions=[], inlined=Counter(), variables=[])
    # References out of a unit are resolved here too, in the worker: most point back into the
    # unit just walked (a variable's declaration), whose abbreviations are still at hand.
    other_units = _CrossUnitResolver(reader)
    # Every unit is walked before any name is resolved: a gcc LTO unit's DIEs point into the
    # units after it (the abstract instances, 45,000 DIEs for the corpus kernel), and the walk
    # of those reads their subprograms anyway, which then need not be read again one by one.
    resolutions = [
        _scan_unit(reader, unit_offset, other_units, result) for unit_offset in unit_offsets
    ]
    for resolve_names in resolutions:
        resolve_names()
    return result


# Positions of the fields the scan reads of the DIEs the whole-program walk keeps.
_LOW_PC = FUNCTION_LAYOUT.index["low_pc"]
_HIGH_PC = FUNCTION_LAYOUT.index["high_pc"]
_HIGH_IS_OFFSET = FUNCTION_LAYOUT.index["high_is_offset"]
_RANGES = FUNCTION_LAYOUT.index["ranges"]
_RANGES_IS_INDEX = FUNCTION_LAYOUT.index["ranges_is_index"]
_NAME = FUNCTION_LAYOUT.index["name"]
_NAME_FORM = FUNCTION_LAYOUT.index["name_form"]
_LINKAGE_NAME = FUNCTION_LAYOUT.index["linkage_name"]
_LINKAGE_NAME_FORM = FUNCTION_LAYOUT.index["linkage_name_form"]
_ORIGIN = FUNCTION_LAYOUT.index["origin"]
_SPECIFICATION = FUNCTION_LAYOUT.index["specification"]
_DECL_FILE = FUNCTION_LAYOUT.index["decl_file"]
_VARIABLE_LOCATION = VARIABLE_LAYOUT.index["location"]
_VARIABLE_NAME = VARIABLE_LAYOUT.index["name"]
_VARIABLE_NAME_FORM = VARIABLE_LAYOUT.index["name_form"]
_VARIABLE_ORIGIN = VARIABLE_LAYOUT.index["origin"]
_VARIABLE_SPECIFICATION = VARIABLE_LAYOUT.index["specification"]

# A subprogram or variable DIE as met in the unit: name, decl file number, links to resolve.
# The name is kept as the extractor left it (name_form, name), read only if asked for.
_Named = tuple[int, Any, int | None, int | None, int | None]  # name form, name, file, origin, spec


def _scan_unit(
    reader: DieReader, unit_offset: int, other_units: _CrossUnitResolver, result: _BatchResult
) -> Callable[[], None]:
    """Code and inlined instances of one unit's DIEs, and what names them in ``result`` once
    called (after every unit is walked). Long because it is the loop over every DIE the walk
    kept (a big unit has 40,000)."""
    unit, dies = reader.program_dies(unit_offset)
    names = other_units.names_of(unit)
    if unit.top_tag in (F.TAG_COMPILE_UNIT, F.TAG_PARTIAL_UNIT):
        result.unit_names[unit_offset] = names.name
    text = reader.text
    named: dict[int, _Named] = {}  # subprogram and variable DIEs by .debug_info offset
    subprograms: dict[int, _Named] = {}  # the subprograms of named
    concrete: list[tuple[int, str | None, int, tuple[tuple[int, int], ...]]] = []
    inline_sites: Counter[tuple[int, int]] = Counter()  # (origin offset, caller low_pc)
    variables: list[tuple[int, int]] = []  # (DIE offset, link address)
    ranges: list[RangeReader] = []  # the unit's range reader, made when first needed
    # Per DIE, the low_pc of the outermost out-of-line function holding it (-1: none): the
    # caller its inlined instances are charged to. A DIE outside any function has parent -1,
    # which reads the last entry: still -1 while any other DIE is looked at.
    callers = [-1] * len(dies.offsets)
    inlined_tag, subprogram_tag = F.TAG_INLINED_SUBROUTINE, F.TAG_SUBPROGRAM
    for node, (die_offset, tag, parent, values) in enumerate(
        zip(dies.offsets, dies.tags, dies.parents, dies.values, strict=True)
    ):
        caller = callers[parent]
        if tag == inlined_tag:
            callers[node] = caller
            origin = values[_ORIGIN]
            if origin is not None:
                inline_sites[(origin, caller)] += 1
        elif tag == subprogram_tag:
            named[die_offset] = subprograms[die_offset] = (
                values[_NAME_FORM],
                values[_NAME],
                values[_DECL_FILE],
                values[_ORIGIN],
                values[_SPECIFICATION],
            )
            spans = _code_spans(reader, unit, values, ranges)
            if spans:
                linkage = text(values[_LINKAGE_NAME_FORM], values[_LINKAGE_NAME])
                concrete.append((die_offset, linkage, spans[0][0], tuple(spans)))
                if caller == -1:
                    caller = spans[0][0]
            callers[node] = caller
        else:  # a variable (VariableValues)
            link_address = _static_address(unit, values[_VARIABLE_LOCATION])
            if link_address:
                named[die_offset] = (
                    values[_VARIABLE_NAME_FORM],
                    values[_VARIABLE_NAME],
                    None,
                    None,
                    values[_VARIABLE_SPECIFICATION] or values[_VARIABLE_ORIGIN],
                )
                variables.append((die_offset, link_address))
    other_units.walked(unit.base, subprograms, names)
    in_unit = _InUnitResolver(named, names, text).resolve

    def resolve(die: int) -> _Source | None:
        origin = in_unit(die)
        return other_units.resolve(origin) if isinstance(origin, int) else origin

    def resolve_names() -> None:
        for die, linkage, low_pc, code_spans in concrete:
            if (source := resolve(die)) is not None:
                result.functions.append((source, linkage, low_pc, code_spans))
        for (origin_offset, caller_low_pc), count in inline_sites.items():
            if (source := resolve(origin_offset)) is not None:
                result.inlined[(source, caller_low_pc)] += count
        for die, link_address in variables:
            if (source := resolve(die)) is not None:
                result.variables.append((source, link_address))

    return resolve_names


def _code_spans(
    reader: DieReader, unit: Unit, values: Values, ranges: list[RangeReader]
) -> list[tuple[int, int]]:
    """[start, end) spans of a subprogram's code, the entry point first; [] if it has none (or
    the linker discarded it: its DW_AT_low_pc is 0)."""
    low_pc = values[_LOW_PC]
    if low_pc is not None:
        high_pc = values[_HIGH_PC]
        if high_pc is None:
            return [(low_pc, low_pc + 1)]
        if values[_HIGH_IS_OFFSET]:
            high_pc += low_pc
        return [(low_pc, high_pc)] if low_pc else []
    if values[_RANGES] is None:
        return []
    if not ranges:
        ranges.append(unit_range_reader(reader, unit))
    try:
        spans = ranges[0].ranges_of(values[_RANGES], values[_RANGES_IS_INDEX])
    except DwarfError as error:  # one function's damaged list: that function has no code
        log.debug("unit %#x: %s", unit.base, error)
        return []
    # The entry point (DW_AT_low_pc absent) is the lowest range for C functions; gcc's
    # `.cold` part sits in a second range at a higher address.
    return sorted(span for span in spans if span[0])


def _static_address(unit: Unit, expression: bytes | None) -> int | None:
    """The address a location expression names when it is exactly one DW_OP_addr or
    DW_OP_addrx (DWARF 5 §2.5.1.1): a variable with static storage."""
    if not expression:
        return None
    size = unit.header.address_size
    if expression[0] == F.OP_ADDR and len(expression) == 1 + size:
        return int.from_bytes(expression[1:], "little" if unit.endian == "<" else "big")
    if expression[0] == F.OP_ADDRX:
        try:
            index, after = read_uleb(expression, 1)
            return unit.addrx(index) if after == len(expression) else None
        except (IndexError, DwarfError):  # a cut index, or one past .debug_addr
            return None
    return None


class _InUnitResolver:
    """(name, decl file, unit name) of DIEs met in one unit, through their abstract origins
    and specifications; a DIE it cannot name stays its offset, for :class:`_CrossUnitResolver`.
    """

    def __init__(
        self, named: dict[int, _Named], names: _UnitNames, text: Callable[[int, Any], str | None]
    ) -> None:
        self.named = named
        self.names = names
        self.text = text
        self.resolved: dict[int, _Origin] = {}

    def resolve(self, die: int, depth: int = 0) -> _Origin:
        resolved = self.resolved
        if die in resolved:
            return resolved[die]
        if depth > MAX_NAME_HOPS:  # a chain no compiler makes: leave the rest unnamed here
            return die
        resolved[die] = die  # cycle guard
        entry = self.named.get(die)
        if entry is None:
            return die
        name_form, raw_name, file_number, origin, spec = entry
        name = self.text(name_form, raw_name)
        outcome: _Origin
        if name is not None:
            decl_file = self.names.file_name(file_number) if file_number is not None else None
            outcome = (name, decl_file, self.names.name)
            # A definition that names itself but declares nothing takes its declaration's file.
            if (
                file_number is None
                and spec is not None
                and isinstance(inner := self.resolve(spec, depth + 1), tuple)
            ):
                outcome = (name, inner[1], inner[2])
        else:
            link = origin if origin is not None else spec
            outcome = self.resolve(link, depth + 1) if link is not None else die
        resolved[die] = outcome
        return outcome


# -- assembling --------------------------------------------------------------------------------


class _CrossUnitResolver:
    """Resolves a DIE offset in any unit (gcc LTO, clang LTO): a subprogram of a unit walked
    already from what the walk read of it, any other DIE by reading that DIE alone."""

    def __init__(self, reader: DieReader) -> None:
        self.reader = reader
        self.cache: dict[int, _Source | None] = {}
        self.units: dict[int, _UnitNames] = {}
        self._walked: dict[int, tuple[dict[int, _Named], _UnitNames]] = {}

    def walked(self, unit_offset: int, subprograms: dict[int, _Named], names: _UnitNames) -> None:
        """The subprogram DIEs the walk of a unit read, by offset: what the same DIE read
        alone would give (name, declaring file, abstract origin, specification)."""
        self._walked[unit_offset] = (subprograms, names)

    def names_of(self, unit: Unit) -> _UnitNames:
        names = self.units.get(unit.base)
        if names is None:
            names = self.units[unit.base] = _UnitNames(self.reader, unit)
        return names

    def resolve(self, die_offset: int, depth: int = 0) -> _Source | None:
        if die_offset in self.cache:
            return self.cache[die_offset]
        self.cache[die_offset] = None  # cycle guard
        outcome: _Source | None = None
        try:
            read = self._read(die_offset)
        except DwarfError as error:  # names what it can: a DIE it cannot read names nothing
            log.debug("DIE %#x: %s", die_offset, error)
            return None
        names, name, file_number, link = read
        if depth < MAX_NAME_HOPS:
            inner = self.resolve(link, depth + 1) if link is not None else None
            if name is not None:
                decl_file = None
                if file_number is not None:
                    decl_file = names.file_name(file_number)
                if decl_file is None and inner is not None:
                    decl_file = inner[1]
                outcome = (name, decl_file, names.name)
            else:
                outcome = inner
        self.cache[die_offset] = outcome
        return outcome

    def _read(self, die_offset: int) -> tuple[_UnitNames, str | None, int | None, int | None]:
        """(the unit's names, DW_AT_name, DW_AT_decl_file, the offset DW_AT_abstract_origin
        or else DW_AT_specification points at) of the DIE at ``die_offset``."""
        walked = self._walked.get(self.reader.index.unit_containing(die_offset))
        entry = walked[0].get(die_offset) if walked is not None else None
        if walked is not None and entry is not None:
            name_form, raw_name, file_number, origin, spec = entry
            name = self.reader.text(name_form, raw_name)
            return walked[1], name, file_number, origin if origin is not None else spec
        unit, _tag, values = self.reader.attributes_at(die_offset)
        names = self.names_of(unit)
        name_entry = values.get(F.AT_NAME)
        name = unit.form_string(*name_entry) if name_entry is not None else None
        decl = values.get(F.AT_DECL_FILE)
        file = decl[1] if decl is not None and isinstance(decl[1], int) else None
        link = values.get(F.AT_ABSTRACT_ORIGIN) or values.get(F.AT_SPECIFICATION)
        target = None
        if link is not None:
            form, value = link
            if form in F.UNIT_REF_FORMS:
                target = unit.base + value
            elif form == F.FORM_REF_ADDR:
                target = value
        return names, name, file, target


class _RelativePaths(dict[str | None, str | None]):
    """Paths made relative to the source root, each worked out once: looked up by indexing
    (in C for a path seen before; a hundred thousand lookups per image)."""

    def __init__(self, root: str) -> None:
        super().__init__({None: None})
        self.root = root

    def __missing__(self, path: str | None) -> str | None:
        assert path is not None  # None is a key from the start
        relative = self[path] = _relative(path, self.root)
        return relative


def _assemble(unit_count: int, results: Iterable[_BatchResult]) -> DwarfCensus:
    results = list(results)
    unit_names: dict[int, str] = {}
    for batch in results:
        unit_names.update(batch.unit_names)
    relative = _RelativePaths(_source_root(unit_names.values()))
    functions = []
    for batch in results:
        for (name, decl_file, unit_name), linkage, low_pc, spans in batch.functions:
            functions.append(
                DwarfFunction(
                    name=name,
                    linkage_name=linkage,
                    decl_file=relative[decl_file],
                    unit=relative[unit_name] or "",
                    low_pc=low_pc,
                    ranges=spans,
                )
            )
    # Plain dicts, not Counters: a Counter calls __missing__ (Python) for each new key, and
    # there are a hundred thousand (function, caller) pairs per image.
    counts: dict[tuple[str, str | None], int] = {}
    callers: dict[tuple[str, str | None], dict[int, int]] = {}
    for batch in results:
        for (source, caller_low_pc), count in batch.inlined.items():
            key = (source[0], relative[source[1]])
            by_caller = callers.get(key)
            if by_caller is None:
                by_caller = callers[key] = {}
                counts[key] = count
            else:
                counts[key] += count
            by_caller[caller_low_pc] = by_caller.get(caller_low_pc, 0) + count
    inlined = {
        key: InlinedFunction(
            name=key[0],
            decl_file=key[1],
            count=count,
            callers=tuple(sorted(callers[key].items(), key=lambda c: (-c[1], c[0]))),
        )
        for key, count in counts.items()
    }
    variables = []
    for batch in results:
        for source, link_address in batch.variables:
            variables.append(
                DwarfVariable(
                    name=source[0],
                    unit=relative[source[2]] or "",
                    link_address=link_address,
                )
            )
    log.info(
        "DWARF census: %d units, %d functions, %d inlined functions, %d variables",
        unit_count,
        len(functions),
        len(inlined),
        len(variables),
    )
    return DwarfCensus(functions, inlined, variables, relative.root, unit_count)


# Top-level directories of the kernel tree: a path component after which the rest of a path is
# source-relative (Makefile "core-y"/"drivers-y" directories plus include/ and scripts/).
KERNEL_TOP_DIRECTORIES = frozenset(
    {
        "arch",
        "block",
        "certs",
        "crypto",
        "drivers",
        "fs",
        "include",
        "init",
        "io_uring",
        "ipc",
        "kernel",
        "lib",
        "mm",
        "net",
        "rust",
        "samples",
        "scripts",
        "security",
        "sound",
        "tools",
        "usr",
        "virt",
    }
)


def _source_root(unit_names: Iterable[str]) -> str:
    """The deepest directory holding nine in ten of the absolute unit names: the source tree.

    Generated files (in the build directory) and a few assembler units may lie elsewhere, so
    the root is not the common prefix of all names.
    """
    names = [name for name in unit_names if name.startswith("/")]
    votes: Counter[str] = Counter()
    for name in names:
        parts = name.split("/")[:-1]
        for depth in range(2, len(parts) + 1):
            votes["/".join(parts[:depth])] += 1
    needed = 0.9 * len(names)
    candidates = [prefix for prefix, count in votes.items() if count >= needed]
    return max(candidates, key=len) if candidates else ""


def _relative(path: str, root: str) -> str:
    if root and path.startswith(root + "/"):
        return path[len(root) + 1 :]
    # Generated files live in the build directory; headers may come from elsewhere.
    parts = path.split("/")
    for position, part in enumerate(parts[:-1]):
        if part in KERNEL_TOP_DIRECTORIES and position:
            return "/".join(parts[position:])
    return path
