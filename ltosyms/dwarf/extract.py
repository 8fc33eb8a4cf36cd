"""What the DIE walks keep of a DIE: a layout declared once, read by generated extractors.

A function DIE (DW_TAG_subprogram, DW_TAG_inlined_subroutine) is kept as the fields of
:class:`FunctionValues`, a static variable (DW_TAG_variable with a location expression) as
those of :class:`VariableValues`. Each layout is declared once, as data: its fields with their
types and defaults (the NamedTuple) and the attributes that fill each field (a :class:`Layout`).
From that declaration an extractor is generated per abbreviation shape
(:mod:`ltosyms.dwarf.codegen`): straight-line code that reads exactly the declared attributes
among any others and turns indexed strings and addresses into values through the unit
(:class:`UnitStrings`). The layout keeps what it compiled, shared by every unit with the same
shape.

Extractors return plain tuples laid out as the NamedTuple, not instances of it: building a
tuple subclass costs a second allocation, about 0.2 us per DIE, which made the whole-image walk
(the census ``diff`` takes) a fifth slower. The modules that read fields in their per-DIE loops
take each field's position from :attr:`Layout.index` by name, once, into a module constant:
indexing a tuple with a module constant is the fastest read Python has (an
``operator.itemgetter`` over several fields, or a NamedTuple's attributes, cost more).
:meth:`Layout.record` gives the NamedTuple itself, for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.codegen import Emitter, Spec, compile_function, layout_key

# How a name field holds its name (the ``*_form`` fields): TEXT for a name already turned into
# text (DW_FORM_strx names are resolved in the extractor, since their meaning depends on the
# unit's string offsets base), else the form whose raw value it holds, read only when a
# function needs its name (:meth:`ltosyms.dwarf.info.DieReader.text`).
TEXT = 0


class FunctionValues(NamedTuple):
    """The layout of what the walks keep of a subprogram or inlined subroutine (DWARF 5 §3.3)."""

    low_pc: int | None = None
    high_pc: int | None = None
    high_is_offset: bool = False  # DW_AT_high_pc of constant class: low_pc + it (§2.17.2)
    ranges: int | None = None  # a .debug_ranges/.debug_rnglists offset, or an index:
    ranges_is_index: bool = False  # DW_FORM_rnglistx
    name: Any = None  # as name_form says
    name_form: int = TEXT
    linkage_name: Any = None  # DW_AT_linkage_name (or gcc's old DW_AT_MIPS_linkage_name)
    linkage_name_form: int = TEXT
    origin: int | None = None  # DW_AT_abstract_origin: a .debug_info offset
    specification: int | None = None  # DW_AT_specification: a .debug_info offset
    call_file: int | None = None
    call_line: int | None = None
    call_column: int | None = None
    decl_file: int | None = None
    decl_line: int | None = None
    sibling: int | None = None  # DW_AT_sibling: a .debug_info offset
    inline: int | None = None
    declaration: bool = False


class VariableValues(NamedTuple):
    """The layout of what the whole-image walk keeps of a DW_TAG_variable with a location
    expression."""

    location: bytes | None = None  # a block-form DW_AT_location (an expression)
    name: Any = None  # as name_form says
    name_form: int = TEXT
    origin: int | None = None
    specification: int | None = None


class UnitStrings(Protocol):
    """What an extractor needs from its unit to turn raw values into names and addresses."""

    base: int  # .debug_info offset of the unit header (unit references are relative to it)

    def strx(self, index: int) -> str | None: ...
    def addrx(self, index: int) -> int | None: ...


# What an extractor returns besides its new position: a tuple laid out as a layout's NamedTuple.
Values = tuple[Any, ...]
Extractor = Callable[[bytes, int, UnitStrings], tuple[int, Values]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """The attributes that fill one field of a record; the first one a DIE has wins.

    ``form_field`` names a second field that records how the value is held, set to
    ``form_note(form)``. ``block`` fields hold the bytes of a block form (an expression); with
    another form (a location list) they stay empty."""

    name: str
    attributes: tuple[int, ...]
    form_field: str | None = None
    form_note: Callable[[int], object] | None = None
    block: bool = False


def _held_as(form: int) -> int:
    return TEXT if form in F.STRX_FORMS else form


def _is_constant(form: int) -> bool:
    return form in F.CONSTANT_FORMS


def _is_rnglistx(form: int) -> bool:
    return form == F.FORM_RNGLISTX


class Layout:
    """A record declared as fields filled by attributes, and the extractors compiled for it.

    Extractors are generated once per abbreviation shape and unit layout. DW_FORM_implicit_const
    values (gcc gives each declaring file its own abbreviation) are parameters of a generated
    factory, not part of the shape, so they do not multiply compilations."""

    def __init__(self, schema: type[Any], fields: Sequence[Field]) -> None:
        self.schema = schema  # the NamedTuple: names, order, types and defaults of the fields
        self.fields = tuple(fields)
        self._field_of = {attribute: field for field in fields for attribute in field.attributes}
        self.attributes = frozenset(self._field_of)
        names: tuple[str, ...] = schema._fields
        declared = {field.name for field in fields} | {f.form_field for f in fields if f.form_field}
        if not declared <= set(names):
            raise TypeError(f"{schema.__name__} has no field {sorted(declared - set(names))}")
        # Position of each field in the tuples extractors return (a missing name is a
        # KeyError where a reader takes its positions: at import).
        self.index = {name: position for position, name in enumerate(names)}
        defaults: dict[str, Any] = schema._field_defaults
        self._defaults = {name: repr(value) for name, value in defaults.items()}
        self._factories: dict[tuple[Any, ...], Callable[..., Extractor]] = {}
        self._extractors: dict[tuple[Any, ...], Extractor] = {}

    def record(self, values: Values) -> Any:
        """``values`` as the NamedTuple (fields by attribute: for tests and debugging)."""
        return self.schema._make(values)

    def extractor(
        self, specs: Sequence[Spec], offset_size: int, address_size: int, endian: str, version: int
    ) -> Extractor:
        """A function ``(d, p, unit) -> (p after the DIE's attributes, record)``."""
        wanted = self.attributes
        shape = tuple((a if a in wanted else 0, f) for a, f, _ in specs)
        constants = tuple(i for a, f, i in specs if f == F.FORM_IMPLICIT_CONST and a in wanted)
        layout = layout_key(offset_size, address_size, endian, version)
        cached = self._extractors.get((shape, constants, *layout))
        if cached is not None:
            return cached
        factory = self._factories.get((shape, *layout))
        if factory is None:
            factory = self._factory(specs, offset_size, address_size, endian, version)
            self._factories[(shape, *layout)] = factory
        function = factory(*constants)
        self._extractors[(shape, constants, *layout)] = function
        return function

    def _factory(
        self, specs: Sequence[Spec], offset_size: int, address_size: int, endian: str, version: int
    ) -> Callable[..., Extractor]:
        emitter = Emitter(offset_size, address_size, endian, version)
        values = dict(self._defaults)  # field -> source of its value
        filled: set[str] = set()
        parameters: list[str] = []
        for number, (attribute, form, _implicit) in enumerate(specs):
            field = self._field_of.get(attribute)
            if field is not None and form == F.FORM_IMPLICIT_CONST:
                parameters.append(f"k{len(parameters)}")
            if field is None or field.name in filled:
                emitter.skip(form)
                continue
            raw = f"a{number}"
            if field.block:
                if form in F.BLOCK_LEB or form in F.BLOCK_FIXED:
                    emitter.read_block(form, raw)
                    values[field.name] = raw
                    filled.add(field.name)
                else:
                    emitter.skip(form)
                continue
            value = _interpret(attribute, form, raw)
            if value is None:
                emitter.skip(form)
                continue
            emitter.read(form, parameters[-1] if form == F.FORM_IMPLICIT_CONST else 0, raw)
            values[field.name] = value
            filled.add(field.name)
            if field.form_field is not None and field.form_note is not None:
                values[field.form_field] = repr(field.form_note(form))
        emitter.flush()
        name = self.schema.__name__.lower()
        body = [f"    def {name}(d, p, u):"]
        body += ["    " + line for line in emitter.lines]
        fields: tuple[str, ...] = self.schema._fields
        body.append(f"        return p, ({', '.join(values[f] for f in fields)},)")
        body.append(f"    return {name}")
        factory: Callable[..., Extractor] = compile_function(
            f"{name}_factory",
            body,
            ", ".join(parameters),
            endian,
            (offset_size, address_size, endian, version),
        )
        return factory


FUNCTION_LAYOUT = Layout(
    FunctionValues,
    (
        Field(name="low_pc", attributes=(F.AT_LOW_PC,)),
        Field(
            name="high_pc",
            attributes=(F.AT_HIGH_PC,),
            form_field="high_is_offset",
            form_note=_is_constant,
        ),
        Field(
            name="ranges",
            attributes=(F.AT_RANGES,),
            form_field="ranges_is_index",
            form_note=_is_rnglistx,
        ),
        Field(name="name", attributes=(F.AT_NAME,), form_field="name_form", form_note=_held_as),
        Field(
            name="linkage_name",
            attributes=(F.AT_LINKAGE_NAME, F.AT_MIPS_LINKAGE_NAME),
            form_field="linkage_name_form",
            form_note=_held_as,
        ),
        Field(name="origin", attributes=(F.AT_ABSTRACT_ORIGIN,)),
        Field(name="specification", attributes=(F.AT_SPECIFICATION,)),
        Field(name="call_file", attributes=(F.AT_CALL_FILE,)),
        Field(name="call_line", attributes=(F.AT_CALL_LINE,)),
        Field(name="call_column", attributes=(F.AT_CALL_COLUMN,)),
        Field(name="decl_file", attributes=(F.AT_DECL_FILE,)),
        Field(name="decl_line", attributes=(F.AT_DECL_LINE,)),
        Field(name="sibling", attributes=(F.AT_SIBLING,)),
        Field(name="inline", attributes=(F.AT_INLINE,)),
        Field(name="declaration", attributes=(F.AT_DECLARATION,)),
    ),
)
VARIABLE_LAYOUT = Layout(
    VariableValues,
    (
        Field(name="location", attributes=(F.AT_LOCATION,), block=True),
        Field(name="name", attributes=(F.AT_NAME,), form_field="name_form", form_note=_held_as),
        Field(name="origin", attributes=(F.AT_ABSTRACT_ORIGIN,)),
        Field(name="specification", attributes=(F.AT_SPECIFICATION,)),
    ),
)


def _interpret(attribute: int, form: int, raw: str) -> str | None:
    """The expression turning a raw attribute value into what its field holds; None when the
    form gives nothing usable for the attribute (then the attribute is skipped)."""
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
