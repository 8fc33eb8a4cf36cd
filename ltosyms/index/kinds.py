"""Every kind of value the index keeps, declared once: its name, format version, key,
placement and codec.

A kind's version is part of where its values are stored (the row's kind column, the table
file's name, the unit format in the index header): bump it whenever the record, its meaning,
or how the stage makes it changes, and values of the old version are not read again.

Keys are encoded here too, so a stage names its values with plain Python values (an address,
a ``(return address, function start)`` pair) and never sees a stored key.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ltosyms.index import codecs
from ltosyms.index.encoding import Buffer

if TYPE_CHECKING:
    from ltosyms.disasm.callsite import Sweep
    from ltosyms.disasm.patching import PatchSites
    from ltosyms.disasm.records import (
        CallSite,
        CodeAnalysis,
        CodeAnalysisKey,
        CodeMatch,
        CodeMatchKey,
        NoCallSite,
    )
    from ltosyms.disasm.view import CodeView, ImageViewKey
    from ltosyms.dwarf import AddressTable, CuData, CuMap, SourceLocation
    from ltosyms.elf.build_facts import BuildFacts
    from ltosyms.elf.image import KernelImage
    from ltosyms.elf.outer_names import OuterNames
    from ltosyms.elf.symtab import SymbolTable
    from ltosyms.index.census_codec import CensusColumns
    from ltosyms.index.codecs import FlatRecord

K = TypeVar("K")
T = TypeVar("T")


class Placement(enum.Enum):
    """Where the values of a kind are kept."""

    ROW = "row"  # a row of the index database, by kind and key
    UNIT = "unit"  # a row of the unit table, by DWARF unit offset, zlib-compressed
    TABLE = "table"  # one per image: a file of its own next to the database, memory-mapped


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind(Generic[K, T]):
    """One kind of stored value: records of type ``T`` named by keys of type ``K``."""

    name: str
    version: int
    placement: Placement
    key: Callable[[K], str | int]  # the stored key: a string for rows, the offset for units
    encode: Callable[[T], bytes]
    decode: Callable[[Buffer, KernelImage], T]  # StoredValueError for bytes of no value

    @property
    def stored_name(self) -> str:
        """The kind as the index names it: ``name/version``."""
        return f"{self.name}/{self.version}"


def _whole_image(key: None) -> str:
    """The key of kinds that hold one value per image."""
    return ""


def _text(key: str) -> str:
    return key


def _hex(address: int) -> str:
    return f"{address:x}"


def _call_site_key(key: tuple[int, int | None]) -> str:
    return_address, function_start = key
    return f"{return_address:x}/{'-' if function_start is None else f'{function_start:x}'}"


def _code_match_key(key: CodeMatchKey) -> str:
    code, marker_index, arch, marker_link_address = key
    return f"{arch}/{marker_index}/{marker_link_address:x}/{code.hex()}"


def _code_analysis_key(key: CodeAnalysisKey) -> str:
    image_name, code, marker_index, arch, marker_link_address = key
    address = "-" if marker_link_address is None else f"{marker_link_address:x}"
    return f"{image_name or '-'}/{arch}/{marker_index}/{address}/{code.hex()}"


def _image_view_key(key: ImageViewKey) -> str:
    image_name, marker_link_address = key
    return f"{image_name}/{marker_link_address:x}"


def _unit_key(cu_offset: int) -> int:
    return cu_offset


# The symbol table, with kallsyms sizes. 5: the gcc LTO series' System.map filter of weak
# `*.c.*` symbols changed the kept set; 6: packed columns of ltosyms.index.codecs.
SYMBOLS: Kind[None, SymbolTable] = Kind(
    name="symbols",
    version=6,
    placement=Placement.TABLE,
    key=_whole_image,
    encode=codecs.encode_symbols,
    decode=codecs.decode_symbols,
)
# One DWARF unit's tables (ltosyms.dwarf.unit_tables.CuData), by the .debug_info offset of
# its header. 3: packed columns.
UNITS: Kind[int, CuData] = Kind(
    name="unit",
    version=3,
    placement=Placement.UNIT,
    key=_unit_key,
    encode=codecs.encode_unit,
    decode=codecs.decode_unit,
)
# The address -> unit map (ltosyms.dwarf.unit_map). 2: a kind of its own (it was the unit
# key -1).
UNIT_MAP: Kind[None, CuMap] = Kind(
    name="unit-map",
    version=2,
    placement=Placement.ROW,
    key=_whole_image,
    encode=codecs.encode_unit_map,
    decode=codecs.decode_unit_map,
)
# Every unit of the image and its unit map in one table read in place
# (ltosyms.dwarf.address_table): written by `ltosyms index` once every unit is parsed; a
# resolver given it loads no unit. Its columns' own format is ADDRESS_TABLE_KIND inside it.
ADDRESS_TABLE: Kind[None, AddressTable] = Kind(
    name="address-table",
    version=1,
    placement=Placement.TABLE,
    key=_whole_image,
    encode=codecs.encode_address_table,
    decode=codecs.decode_address_table,
)
# The ELF symbols llvm-symbolizer names the outermost entry of a chain by
# (ltosyms.elf.outer_names). 3: a kind of its own (it was the unit key -3).
OUTER_NAMES: Kind[None, OuterNames] = Kind(
    name="outer-names",
    version=3,
    placement=Placement.ROW,
    key=_whole_image,
    encode=codecs.encode_outer_names,
    decode=codecs.decode_outer_names,
)
# The inline chain at a link address, its outermost entry named from the symbol table.
CHAINS: Kind[int, tuple[SourceLocation, ...]] = Kind(
    name="locations",
    version=2,
    placement=Placement.ROW,
    key=_hex,
    encode=codecs.encode_chain,
    decode=codecs.decode_chain,
)
# The instruction ending at a return address, by (return address, function start). 3: a call
# inside an alternative replacement aimed within it is aimed within the site. 4: a call into
# the %rax retpoline thunk names it by its register where kallsyms prints the thunk array.
CALL_SITES: Kind[tuple[int, int | None], CallSite | NoCallSite] = Kind(
    name="call-site",
    version=4,
    placement=Placement.ROW,
    key=_call_site_key,
    encode=codecs.encode_call_site,
    decode=codecs.decode_call_site,
)
# A function's instructions decoded from its start, by that start.
SWEEPS: Kind[int, Sweep] = Kind(
    name="sweep",
    version=2,
    placement=Placement.ROW,
    key=_hex,
    encode=codecs.encode_sweep,
    decode=codecs.decode_sweep,
)
# The vmlinux's boot-time patch sites (ltosyms.disasm.patching).
PATCH_SITES: Kind[None, PatchSites] = Kind(
    name="patch-sites",
    version=2,
    placement=Placement.ROW,
    key=_whole_image,
    encode=codecs.encode_patch_sites,
    decode=codecs.decode_patch_sites,
)
# What the vmlinux says about its build (ltosyms.elf.build_facts).
BUILD_FACTS: Kind[None, BuildFacts] = Kind(
    name="build-facts",
    version=2,
    placement=Placement.ROW,
    key=_whole_image,
    encode=codecs.encode_build_facts,
    decode=codecs.decode_build_facts,
)
# A Code: line compared with the image at one candidate address.
CODE_MATCHES: Kind[CodeMatchKey, CodeMatch] = Kind(
    name="code-match",
    version=2,
    placement=Placement.ROW,
    key=_code_match_key,
    encode=codecs.encode_code_match,
    decode=codecs.decode_code_match,
)
# A Code: line's listing, comparison and warnings, by the IP's image and the line. 3: padding
# between functions is one piece of the listing.
CODE_ANALYSES: Kind[CodeAnalysisKey, CodeAnalysis] = Kind(
    name="code-analysis",
    version=3,
    placement=Placement.ROW,
    key=_code_analysis_key,
    encode=codecs.encode_code_analysis,
    decode=codecs.decode_code_analysis,
)
# A Code: line's listing in a developer's terms (ltosyms.disasm.code_view), by the same key.
CODE_VIEWS: Kind[CodeAnalysisKey, CodeView] = Kind(
    name="code-view",
    version=1,
    placement=Placement.ROW,
    key=_code_analysis_key,
    encode=codecs.encode_code_view,
    decode=codecs.decode_code_view,
)
# The image's instructions around an IP whose Code: bytes the kernel could not print, by the
# image's name and the IP (an empty view: no function holds it).
IMAGE_CODE_VIEWS: Kind[ImageViewKey, CodeView] = Kind(
    name="image-code-view",
    version=1,
    placement=Placement.ROW,
    key=_image_view_key,
    encode=codecs.encode_code_view,
    decode=codecs.decode_code_view,
)


def _encode_diff_census(columns: CensusColumns) -> bytes:
    from ltosyms.index.census_codec import encode_diff_census  # only a diff needs it

    return encode_diff_census(columns)


def _decode_diff_census(data: Buffer, image: KernelImage) -> CensusColumns:
    from ltosyms.index.census_codec import decode_diff_census

    return decode_diff_census(data, image)


def _census_key(key: tuple[bool, str]) -> str:
    use_dwarf, layout = key
    return f"{'dwarf' if use_dwarf else 'symbols'}/{layout}"


# What a diff needs of the image (ltosyms.diff.census.ImageCensus, as the plain columns of
# census_codec.CensusColumns: the diff sits above this layer): the sections, the symbol groups, the
# inlined instances of every function; by whether DWARF was read and the layout of the file's
# sections (ltosyms.diff.sections.layout_of: a stripped copy has the build id too).
DIFF_CENSUS: Kind[tuple[bool, str], CensusColumns] = Kind(
    name="diff-census",
    version=3,  # 2: text columns as distinct strings and positions; 3: zlib-compressed
    placement=Placement.ROW,
    key=_census_key,
    encode=_encode_diff_census,
    decode=_decode_diff_census,
)

# A printed frame's resolution: ltosyms.decode's ResolvedFrame as the flat record of
# ltosyms.decode.stored_frames (the decoder sits above this layer), by what the log says of the
# frame and the naming era. It is the output of the resolving code, not a fact of the image
# alone: its version follows that code (tests/test_stored_frames.py holds it to a digest of the
# sources, so that a change to them cannot go out with answers of the code before).
RESOLVED_FRAMES: Kind[str, FlatRecord] = Kind(
    name="resolved-frame",
    version=5,
    placement=Placement.ROW,
    key=_text,
    encode=codecs.encode_flat_record,
    decode=codecs.decode_flat_record,
)

KINDS: tuple[Kind[Any, Any], ...] = (
    SYMBOLS,
    UNITS,
    UNIT_MAP,
    ADDRESS_TABLE,
    OUTER_NAMES,
    CHAINS,
    CALL_SITES,
    SWEEPS,
    PATCH_SITES,
    BUILD_FACTS,
    CODE_MATCHES,
    CODE_ANALYSES,
    DIFF_CENSUS,
    CODE_VIEWS,
    IMAGE_CODE_VIEWS,
    RESOLVED_FRAMES,
)

# The index header names the units' format: an index whose units have another is foreign
# (the unit table holds one kind only, so its version cannot sit in each row's key).
UNIT_FORMAT = UNITS.stored_name
