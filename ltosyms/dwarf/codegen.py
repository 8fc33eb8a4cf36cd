"""Straight-line Python for skipping and reading DIEs, generated per abbreviation shape.

Walking a unit's DIEs is the hot loop of the resolver: kernel/sched/core.c alone has 33,000
DIEs. A generic "for each attribute, dispatch on its form" loop costs a few hundred nanoseconds
per attribute. Here each abbreviation *shape* (its list of forms, plus the unit's offset and
address size) becomes either a constant byte count (every form fixed-size: the common case for
struct members, pointer types, parameters) or a small generated function whose runs of
fixed-size attributes are one ``p += n``. Functions are compiled once per shape and process and
shared by all units (a whole kernel has a few hundred shapes), so compilation costs nothing
after the first few units.

Extractors do the same for the DIEs whose attributes the resolver keeps (functions and inlined
calls): they read exactly the attributes in :data:`WANTED` and return them in the fixed layout
of :class:`DieValues` indexes, with strings and indexed addresses already resolved through the
unit (:class:`UnitStrings`). Variable extractors (:func:`compile_variable_extractor`) do the same
for the DW_TAG_variable DIEs a whole-image walk keeps: those whose location is an expression.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.forms import read_sleb, read_uleb
from ltosyms.errors import DwarfError

# Layout of the tuple an extractor returns (after the new position).
V_LOW_PC = 0
V_HIGH_PC = 1
V_HIGH_IS_OFFSET = 2
V_RANGES = 3
V_RANGES_IS_INDEX = 4
V_NAME = 5
V_LINKAGE_NAME = 6
V_ORIGIN = 7
V_SPECIFICATION = 8
V_CALL_FILE = 9
V_CALL_LINE = 10
V_CALL_COLUMN = 11
V_DECL_FILE = 12
V_DECL_LINE = 13
V_SIBLING = 14
V_INLINE = 15
V_DECLARATION = 16
V_NAME_FORM = 17  # how V_NAME is held: see :func:`name_text`
V_LINKAGE_NAME_FORM = 18
V_COUNT = 19
# Layout of the tuple a variable extractor returns (after the new position).
VAR_LOCATION = 0  # the DW_AT_location expression (bytes), None if not a block form
VAR_NAME = 1
VAR_NAME_FORM = 2  # how VAR_NAME is held, as V_NAME_FORM
VAR_ORIGIN = 3
VAR_SPECIFICATION = 4
VAR_COUNT = 5
# A name already turned into text (DW_FORM_strx names are resolved in the extractor, since
# their meaning depends on the unit's string offsets base).
TEXT = 0

_SLOT = {
    F.AT_LOW_PC: V_LOW_PC,
    F.AT_HIGH_PC: V_HIGH_PC,
    F.AT_RANGES: V_RANGES,
    F.AT_NAME: V_NAME,
    F.AT_LINKAGE_NAME: V_LINKAGE_NAME,
    F.AT_MIPS_LINKAGE_NAME: V_LINKAGE_NAME,
    F.AT_ABSTRACT_ORIGIN: V_ORIGIN,
    F.AT_SPECIFICATION: V_SPECIFICATION,
    F.AT_CALL_FILE: V_CALL_FILE,
    F.AT_CALL_LINE: V_CALL_LINE,
    F.AT_CALL_COLUMN: V_CALL_COLUMN,
    F.AT_DECL_FILE: V_DECL_FILE,
    F.AT_DECL_LINE: V_DECL_LINE,
    F.AT_SIBLING: V_SIBLING,
    F.AT_INLINE: V_INLINE,
    F.AT_DECLARATION: V_DECLARATION,
}
WANTED = frozenset(_SLOT)
_VARIABLE_SLOT = {
    F.AT_LOCATION: VAR_LOCATION,
    F.AT_NAME: VAR_NAME,
    F.AT_ABSTRACT_ORIGIN: VAR_ORIGIN,
    F.AT_SPECIFICATION: VAR_SPECIFICATION,
}

# An attribute specification from an abbreviation: (attribute, form, implicit constant).
Spec = tuple[int, int, int]
Skipper = Callable[[bytes, int], int]
Extractor = Callable[[bytes, int, Any], tuple[int, tuple[Any, ...]]]


class UnitStrings(Protocol):
    """What an extractor needs from its unit to turn raw values into names and addresses."""

    base: int  # .debug_info offset of the unit header (unit references are relative to it)

    def strx(self, index: int) -> str | None: ...
    def addrx(self, index: int) -> int | None: ...


def _uleb_skip(indent: str) -> list[str]:
    return [f"{indent}while d[p] > 127: p += 1", f"{indent}p += 1"]


class _Emitter:
    """Builds the body of one generated function for a unit layout."""

    def __init__(self, offset_size: int, address_size: int, endian: str, version: int) -> None:
        self.offset_size = offset_size
        self.address_size = address_size
        self.endian = endian
        self.version = version
        self.lines: list[str] = []
        self.pending = 0  # fixed bytes not yet added to p

    def flush(self) -> None:
        if self.pending:
            self.lines.append(f"    p += {self.pending}")
            self.pending = 0

    def fixed_size(self, form: int) -> int | None:
        if form in F.FIXED:
            return F.FIXED[form]
        if form in F.OFFSET_SIZED:
            return self.offset_size
        if form == F.FORM_ADDR:
            return self.address_size
        if form == F.FORM_REF_ADDR:
            # DWARF 2 sized DW_FORM_ref_addr like an address; 3 and later like an offset.
            return self.address_size if self.version <= 2 else self.offset_size
        return None

    def skip(self, form: int) -> None:
        size = self.fixed_size(form)
        if size is not None:
            self.pending += size
            return
        self.flush()
        out = self.lines
        if form in F.LEB:
            out.extend(_uleb_skip("    "))
        elif form == F.FORM_STRING:
            out.append("    p = d.index(0, p) + 1")
        elif form in F.BLOCK_LEB:
            out.append("    n, p = uleb(d, p)")
            out.append("    p += n")
        elif form in F.BLOCK_FIXED:
            width = F.BLOCK_FIXED[form]
            out.append(f"    p += {width} + {self._unsigned(width, 'p')}")
        elif form == F.FORM_INDIRECT:
            out.append("    p = skip_indirect(d, p)")
        else:
            raise DwarfError(f"unknown DWARF attribute form {form:#x}")

    def _unsigned(self, width: int, at: str) -> str:
        if width == 1:
            return f"d[{at}]"
        if width == 3:
            if self.endian == "<":
                return f"(d[{at}] | d[{at} + 1] << 8 | d[{at} + 2] << 16)"
            return f"(d[{at}] << 16 | d[{at} + 1] << 8 | d[{at} + 2])"
        return f"u{width * 8}(d, {at})[0]"

    def read(self, form: int, implicit: int | str, target: str) -> None:
        """Emit code that reads the raw value of ``form`` into ``target`` and advances p.
        ``implicit`` is the DW_FORM_implicit_const value, or the name holding it."""
        size = self.fixed_size(form)
        if form == F.FORM_IMPLICIT_CONST:
            self.lines.append(f"    {target} = {implicit}")
            return
        if form == F.FORM_FLAG_PRESENT:
            self.lines.append(f"    {target} = 1")
            return
        if size is not None and size in (1, 2, 3, 4, 8):
            at = f"p + {self.pending}" if self.pending else "p"
            self.lines.append(f"    {target} = {self._unsigned(size, at)}")
            self.pending += size
            return
        self.flush()
        if form in F.LEB and form != F.FORM_SDATA:
            self.lines.append(f"    {target}, p = uleb(d, p)")
        elif form == F.FORM_SDATA:
            self.lines.append(f"    {target}, p = sleb(d, p)")
        elif form == F.FORM_STRING:
            self.lines.append("    e = d.index(0, p)")
            self.lines.append(f"    {target} = d[p:e]")
            self.lines.append("    p = e + 1")
        else:
            # Blocks, data16, indirect: not a value we use; skip and record nothing.
            self.skip(form)
            self.lines.append(f"    {target} = None")

    def read_block(self, form: int, target: str) -> None:
        """Emit code that reads the bytes of a block form into ``target`` and advances p."""
        self.flush()
        if form in F.BLOCK_LEB:
            self.lines.append("    n, p = uleb(d, p)")
        else:
            width = F.BLOCK_FIXED[form]
            self.lines.append(f"    n = {self._unsigned(width, 'p')}")
            self.lines.append(f"    p += {width}")
        self.lines.append(f"    {target} = d[p:p + n]")
        self.lines.append("    p += n")


def _namespace(endian: str) -> dict[str, Any]:
    return {
        "u16": struct.Struct(endian + "H").unpack_from,
        "u32": struct.Struct(endian + "I").unpack_from,
        "u64": struct.Struct(endian + "Q").unpack_from,
        "uleb": read_uleb,
        "sleb": read_sleb,
        "skip_indirect": None,  # bound below, per layout
    }


_skippers: dict[tuple[Any, ...], int | Skipper] = {}
# Different declarations often make the same code (runs of fixed sizes add up, unwanted
# attributes are skipped alike): each distinct source is compiled once.
_compiled: dict[tuple[str, str, tuple[int, int, str, int]], Callable[..., Any]] = {}
_extractors: dict[tuple[Any, ...], Extractor] = {}
_sibling_readers: dict[tuple[Any, ...], Skipper] = {}


def _layout_key(offset_size: int, address_size: int, endian: str, version: int) -> tuple[Any, ...]:
    return (offset_size, address_size, endian, version <= 2)


def _compile(
    name: str, body: list[str], args: str, endian: str, layout: tuple[int, int, str, int]
) -> Callable[..., Any]:
    source = f"def {name}({args}):\n" + "\n".join(body) + "\n"
    key = (source, endian, layout)
    function = _compiled.get(key)
    if function is None:
        namespace = _namespace(endian)
        namespace["skip_indirect"] = _indirect_skipper(*layout)
        exec(
            compile(source, f"<dwarf {name}>", "exec"), namespace
        )  # generated above, from forms only
        function = _compiled[key] = namespace[name]
    return function


def _indirect_skipper(offset_size: int, address_size: int, endian: str, version: int) -> Skipper:
    def skip_indirect(data: bytes, position: int) -> int:
        form, position = read_uleb(data, position)
        if form == F.FORM_IMPLICIT_CONST:
            raise DwarfError("DW_FORM_indirect naming DW_FORM_implicit_const")
        skipper = compile_skipper((form,), offset_size, address_size, endian, version)
        if isinstance(skipper, int):
            return position + skipper
        return skipper(data, position)

    return skip_indirect


def compile_skipper(
    forms: Sequence[int], offset_size: int, address_size: int, endian: str, version: int
) -> int | Skipper:
    """The byte size of a DIE's attributes if constant, else a function ``(d, p) -> p``."""
    key = (tuple(forms), *_layout_key(offset_size, address_size, endian, version))
    cached = _skippers.get(key)
    if cached is not None:
        return cached
    emitter = _Emitter(offset_size, address_size, endian, version)
    for form in forms:
        emitter.skip(form)
    result: int | Skipper
    if not emitter.lines:
        result = emitter.pending
    else:
        emitter.flush()
        emitter.lines.append("    return p")
        result = _compile(
            "skip", emitter.lines, "d, p", endian, (offset_size, address_size, endian, version)
        )
    _skippers[key] = result
    return result


def sibling_offset(
    specs: Sequence[Spec], offset_size: int, address_size: int, version: int
) -> tuple[int, int] | None:
    """(byte offset, byte width) of DW_AT_sibling inside the DIE if every attribute before it
    has a fixed size and the reference itself does; else None."""
    emitter = _Emitter(offset_size, address_size, "<", version)
    position = 0
    for attribute, form, _implicit in specs:
        size = emitter.fixed_size(form)
        if attribute == F.AT_SIBLING:
            if form in F.UNIT_REF_FORMS and size in (1, 2, 4, 8):
                return position, size
            return None
        if size is None:
            return None
        position += size
    return None


def compile_sibling_reader(
    specs: Sequence[Spec], offset_size: int, address_size: int, endian: str, version: int
) -> Skipper:
    """A function ``(d, p) -> unit-relative DW_AT_sibling`` for any attribute layout."""
    key = (
        tuple((a == F.AT_SIBLING, f) for a, f, _ in specs),
        *_layout_key(offset_size, address_size, endian, version),
    )
    cached = _sibling_readers.get(key)
    if cached is not None:
        return cached
    emitter = _Emitter(offset_size, address_size, endian, version)
    for attribute, form, implicit in specs:
        if attribute == F.AT_SIBLING:
            emitter.read(form, implicit, "s")
            emitter.lines.append("    return s")
            break
        emitter.skip(form)
    else:
        raise DwarfError("abbreviation has no DW_AT_sibling")
    function: Skipper = _compile(
        "sibling", emitter.lines, "d, p", endian, (offset_size, address_size, endian, version)
    )
    _sibling_readers[key] = function
    return function


_factories: dict[tuple[Any, ...], Callable[..., Extractor]] = {}


def compile_extractor(
    specs: Sequence[Spec], offset_size: int, address_size: int, endian: str, version: int
) -> Extractor:
    """A function ``(d, p, unit) -> (p, values)`` reading the attributes in :data:`WANTED`.

    The code is generated once per shape; DW_FORM_implicit_const values (gcc gives each
    declaring file its own abbreviation) are parameters of the generated factory, not part of
    the shape, so they do not multiply compilations."""
    shape = tuple((a if a in WANTED else 0, f) for a, f, _ in specs)
    constants = tuple(i for a, f, i in specs if f == F.FORM_IMPLICIT_CONST and a in WANTED)
    layout = _layout_key(offset_size, address_size, endian, version)
    cached = _extractors.get((shape, constants, *layout))
    if cached is not None:
        return cached
    factory = _factories.get((shape, *layout))
    if factory is None:
        factory = _extractor_factory(specs, offset_size, address_size, endian, version)
        _factories[(shape, *layout)] = factory
    function: Extractor = factory(*constants)
    _extractors[(shape, constants, *layout)] = function
    return function


def _extractor_factory(
    specs: Sequence[Spec], offset_size: int, address_size: int, endian: str, version: int
) -> Callable[..., Extractor]:
    emitter = _Emitter(offset_size, address_size, endian, version)
    slots: list[str] = ["None"] * V_COUNT
    slots[V_HIGH_IS_OFFSET] = "False"
    slots[V_RANGES_IS_INDEX] = "False"
    slots[V_DECLARATION] = "False"
    slots[V_NAME_FORM] = slots[V_LINKAGE_NAME_FORM] = str(TEXT)
    parameters: list[str] = []
    for number, (attribute, form, _implicit) in enumerate(specs):
        slot = _SLOT.get(attribute)
        if form == F.FORM_IMPLICIT_CONST and attribute in WANTED:
            parameters.append(f"k{len(parameters)}")
        if slot is None or slots[slot] not in ("None", "False"):
            emitter.skip(form)
            continue
        raw = f"a{number}"
        emitter.read(form, parameters[-1] if form == F.FORM_IMPLICIT_CONST else 0, raw)
        value = _interpret(attribute, form, raw)
        if value is None:
            continue
        if attribute == F.AT_HIGH_PC:
            slots[V_HIGH_IS_OFFSET] = "True" if form in F.CONSTANT_FORMS else "False"
        elif attribute == F.AT_RANGES:
            slots[V_RANGES_IS_INDEX] = "True" if form == F.FORM_RNGLISTX else "False"
        elif attribute == F.AT_NAME:
            slots[V_NAME_FORM] = str(TEXT if form in F.STRX_FORMS else form)
        elif attribute in (F.AT_LINKAGE_NAME, F.AT_MIPS_LINKAGE_NAME):
            slots[V_LINKAGE_NAME_FORM] = str(TEXT if form in F.STRX_FORMS else form)
        slots[slot] = value
    emitter.flush()
    body = ["    def extract(d, p, u):"]
    body += ["    " + line for line in emitter.lines]
    body.append(f"        return p, ({', '.join(slots)},)")
    body.append("    return extract")
    factory: Callable[..., Extractor] = _compile(
        "factory",
        body,
        ", ".join(parameters),
        endian,
        (offset_size, address_size, endian, version),
    )
    return factory


_variable_extractors: dict[tuple[Any, ...], Extractor] = {}


def compile_variable_extractor(
    specs: Sequence[Spec], offset_size: int, address_size: int, endian: str, version: int
) -> Extractor:
    """A function ``(d, p, unit) -> (p, values)`` for a DW_TAG_variable DIE: the values are
    laid out as the ``VAR_*`` indexes say, names and references held as in :data:`V_NAME` and
    :data:`V_ORIGIN`. Only a block-form DW_AT_location is read (an expression such as
    DW_OP_addr); a location list (DW_FORM_sec_offset, loclistx) leaves ``VAR_LOCATION`` None."""
    shape = tuple((a if a in _VARIABLE_SLOT else 0, f) for a, f, _ in specs)
    key = (shape, *_layout_key(offset_size, address_size, endian, version))
    cached = _variable_extractors.get(key)
    if cached is not None:
        return cached
    emitter = _Emitter(offset_size, address_size, endian, version)
    slots: list[str] = ["None"] * VAR_COUNT
    slots[VAR_NAME_FORM] = str(TEXT)
    for number, (attribute, form, _implicit) in enumerate(specs):
        slot = _VARIABLE_SLOT.get(attribute)
        raw = f"a{number}"
        if slot is None or slots[slot] != "None":
            emitter.skip(form)
        elif attribute == F.AT_LOCATION:
            if form in F.BLOCK_LEB or form in F.BLOCK_FIXED:
                emitter.read_block(form, raw)
                slots[slot] = raw
            else:
                emitter.skip(form)
        elif (value := _interpret(attribute, form, raw)) is None:
            emitter.skip(form)
        else:
            emitter.read(form, 0, raw)
            slots[slot] = value
            if attribute == F.AT_NAME:
                slots[VAR_NAME_FORM] = str(TEXT if form in F.STRX_FORMS else form)
    emitter.flush()
    emitter.lines.append(f"    return p, ({', '.join(slots)},)")
    function: Extractor = _compile(
        "variable", emitter.lines, "d, p, u", endian, (offset_size, address_size, endian, version)
    )
    _variable_extractors[key] = function
    return function


def _interpret(attribute: int, form: int, raw: str) -> str | None:
    """The expression turning a raw attribute value into what the values tuple holds."""
    if form in (
        F.FORM_GNU_REF_ALT,
        F.FORM_GNU_STRP_ALT,
        F.FORM_REF_SIG8,
        F.FORM_STRP_SUP,
        F.FORM_REF_SUP4,
        F.FORM_REF_SUP8,
        F.FORM_DATA16,
        F.FORM_INDIRECT,
    ):
        return None  # lives in another file (dwz, type units): not resolvable here
    if form in F.BLOCK_LEB or form in F.BLOCK_FIXED:
        return None
    if attribute in (F.AT_NAME, F.AT_LINKAGE_NAME, F.AT_MIPS_LINKAGE_NAME):
        # Kept raw (section offset or bytes) and read only if a function needs the name.
        if form in (F.FORM_STRING, F.FORM_STRP, F.FORM_LINE_STRP):
            return raw
        if form in F.STRX_FORMS:
            return f"u.strx({raw})"
        return None
    if attribute in (F.AT_ABSTRACT_ORIGIN, F.AT_SPECIFICATION, F.AT_SIBLING):
        if form in F.UNIT_REF_FORMS:
            return f"u.base + {raw}"
        if form == F.FORM_REF_ADDR:
            return raw
        return None
    if attribute in (F.AT_LOW_PC, F.AT_HIGH_PC):
        if form in F.ADDRX_FORMS:
            return f"u.addrx({raw})"
        if form == F.FORM_ADDR or form in F.CONSTANT_FORMS:
            return raw
        return None
    if attribute == F.AT_RANGES:
        if form in (F.FORM_SEC_OFFSET, F.FORM_RNGLISTX, F.FORM_DATA4, F.FORM_DATA8):
            return raw
        return None
    if attribute == F.AT_DECLARATION:
        return f"bool({raw})"
    # call_file/line/column, decl_file/line, inline: plain constants.
    if form in F.CONSTANT_FORMS or form in (F.FORM_FLAG, F.FORM_FLAG_PRESENT):
        return raw
    return None


def generated_counts() -> tuple[int, int, int]:
    """How many skippers, extractor factories and sibling readers this process compiled."""
    return (
        sum(1 for value in _skippers.values() if not isinstance(value, int)),
        len(_factories),
        len(_sibling_readers),
    )
