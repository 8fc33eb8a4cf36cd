"""Straight-line Python for skipping and reading DIEs, generated per abbreviation shape.

Walking a unit's DIEs is the hot loop of the resolver: kernel/sched/core.c alone has 33,000
DIEs. A generic "for each attribute, dispatch on its form" loop costs a few hundred nanoseconds
per attribute. Here each abbreviation *shape* (its list of forms, plus the unit's offset and
address size) becomes either a constant byte count (every form fixed-size: the common case for
struct members, pointer types, parameters) or a small generated function whose runs of
fixed-size attributes are one ``p += n``. Functions are compiled once per shape and process and
shared by all units (a whole kernel has a few hundred shapes), so compilation costs nothing
after the first few units.

:mod:`ltosyms.dwarf.extract` uses the same emitter for the DIEs whose attributes the walks
keep: its extractors read exactly the attributes of a declared record.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.forms import read_sleb, read_uleb
from ltosyms.errors import DwarfError

# An attribute specification from an abbreviation: (attribute, form, implicit constant).
Spec = tuple[int, int, int]
Skipper = Callable[[bytes, int], int]


def _uleb_skip(indent: str) -> list[str]:
    return [f"{indent}while d[p] > 127: p += 1", f"{indent}p += 1"]


class Emitter:
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
_compiled: dict[tuple[Any, ...], Callable[..., Any]] = {}
_sibling_readers: dict[tuple[Any, ...], Skipper] = {}


def layout_key(offset_size: int, address_size: int, endian: str, version: int) -> tuple[Any, ...]:
    """What generated code depends on besides the forms: a unit's layout."""
    return (offset_size, address_size, endian, version <= 2)


def compile_function(
    name: str,
    body: list[str],
    args: str,
    endian: str,
    layout: tuple[int, int, str, int],
    names: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """``def name(args): body``, compiled once per source and layout. ``names`` are globals
    the body uses besides the readers every generated function has (``uleb``, ``u32``...)."""
    source = f"def {name}({args}):\n" + "\n".join(body) + "\n"
    key = (source, endian, layout, *(names or {}).items())
    function = _compiled.get(key)
    if function is None:
        namespace = _namespace(endian)
        namespace.update(names or {})
        namespace["skip_indirect"] = _indirect_skipper(*layout)
        exec(
            compile(source, f"<dwarf {name}>", "exec"), namespace
        )  # generated above, from forms only
        function = _compiled[key] = namespace[name]
    return function


def _indirect_skipper(offset_size: int, address_size: int, endian: str, version: int) -> Skipper:
    def skip_indirect(data: bytes, position: int) -> int:
        form, position = read_uleb(data, position)
        while form == F.FORM_INDIRECT:  # a form naming a form naming ...: read on, no recursion
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
    key = (tuple(forms), *layout_key(offset_size, address_size, endian, version))
    cached = _skippers.get(key)
    if cached is not None:
        return cached
    emitter = Emitter(offset_size, address_size, endian, version)
    for form in forms:
        emitter.skip(form)
    result: int | Skipper
    if not emitter.lines:
        result = emitter.pending
    else:
        emitter.flush()
        emitter.lines.append("    return p")
        result = compile_function(
            "skip", emitter.lines, "d, p", endian, (offset_size, address_size, endian, version)
        )
    _skippers[key] = result
    return result


def sibling_offset(
    specs: Sequence[Spec], offset_size: int, address_size: int, version: int
) -> tuple[int, int] | None:
    """(byte offset, byte width) of DW_AT_sibling inside the DIE if every attribute before it
    has a fixed size and the reference itself does; else None."""
    emitter = Emitter(offset_size, address_size, "<", version)
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
        *layout_key(offset_size, address_size, endian, version),
    )
    cached = _sibling_readers.get(key)
    if cached is not None:
        return cached
    emitter = Emitter(offset_size, address_size, endian, version)
    for attribute, form, implicit in specs:
        if attribute == F.AT_SIBLING:
            emitter.read(form, implicit, "s")
            emitter.lines.append("    return s")
            break
        emitter.skip(form)
    else:
        raise DwarfError("abbreviation has no DW_AT_sibling")
    function: Skipper = compile_function(
        "sibling", emitter.lines, "d, p", endian, (offset_size, address_size, endian, version)
    )
    _sibling_readers[key] = function
    return function
