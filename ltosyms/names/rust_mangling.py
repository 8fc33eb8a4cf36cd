"""Rust symbol names demangled: the v0 scheme (``_R...``, RFC 2603, what the kernel's Rust
code uses: ``-Csymbol-mangling-version=v0`` in its Makefile) and the legacy one (``_ZN...E``).
Loaded by :mod:`ltosyms.names.rust` with the first Rust name.

A port of the rustc-demangle crate's printer in its alternate form (``{:#}``): no crate
disambiguators (``[1234abcd]``), no legacy ``h<hash>`` part, const values without their type
suffix. A name that is not valid mangling gives None, never a partial guess.

Grammar (RFC 2603, "Syntax of mangled names")::

    symbol-name = "_R" [<decimal-number>] <path> [<instantiating-crate>]
    path        = "C" <identifier>                        crate root
                | "M" <impl-path> <type>                  <T>
                | "X" <impl-path> <type> <path>           <T as Trait>
                | "Y" <type> <path>                       <T as Trait>
                | "N" <namespace> <path> <identifier>     ...::ident
                | "I" <path> {<generic-arg>} "E"          ...<T, U>
                | <backref>
"""

from __future__ import annotations

import re
from collections.abc import Callable

_BASIC_TYPES = {
    "a": "i8",
    "b": "bool",
    "c": "char",
    "d": "f64",
    "e": "str",
    "f": "f32",
    "h": "u8",
    "i": "isize",
    "j": "usize",
    "l": "i32",
    "m": "u32",
    "n": "i128",
    "o": "u128",
    "p": "_",
    "s": "i16",
    "t": "u16",
    "u": "()",
    "v": "...",
    "x": "i64",
    "y": "u64",
    "z": "!",
}
_UNSIGNED = "htmyoj"
_SIGNED = "aslxni"
_MAX_DEPTH = 500  # rustc-demangle's recursion bound: deeper is not a real symbol


class _Invalid(Exception):
    """The text is not valid mangling (internal: :func:`demangle` answers None)."""


def demangle(name: str) -> str | None:
    """The demangled Rust name, or None when ``name`` is not a Rust symbol."""
    try:
        if name.startswith("_R"):
            return _demangle_v0(name[2:])
        if name.startswith("_ZN"):
            return _demangle_legacy(name[3:])
    except (_Invalid, RecursionError, IndexError, ValueError):
        return None
    return None


# -- legacy ----------------------------------------------------------------------------------

_LEGACY_ESCAPES = {
    "SP": "@",
    "BP": "*",
    "RF": "&",
    "LT": "<",
    "GT": ">",
    "LP": "(",
    "RP": ")",
    "C": ",",
}
_HASH = re.compile(r"h[0-9a-f]{16}$")


def _demangle_legacy(text: str) -> str:
    """rustc-demangle src/legacy.rs: ``N`` length-prefixed parts, ``E`` ends; the last part
    ``h`` + 16 hex digits is a hash, left out; ``$..$`` escapes and ``..`` as ``::``."""
    parts: list[str] = []
    position = 0
    while True:
        if position >= len(text):
            raise _Invalid
        if text[position] == "E":
            break
        match = re.compile(r"\d+").match(text, position)
        if match is None:
            raise _Invalid
        length = int(match.group(0))
        start = match.end()
        if start + length > len(text):
            raise _Invalid
        parts.append(text[start : start + length])
        position = start + length
    if not parts:
        raise _Invalid
    if len(parts) > 1 and _HASH.match(parts[-1]):
        parts.pop()
    return "::".join(_legacy_part(part) for part in parts)


def _legacy_part(part: str) -> str:
    if part.startswith("_$"):
        part = part[1:]
    out: list[str] = []
    position = 0
    while position < len(part):
        char = part[position]
        if char == "$":
            end = part.find("$", position + 1)
            if end < 0:
                raise _Invalid
            code = part[position + 1 : end]
            if code in _LEGACY_ESCAPES:
                out.append(_LEGACY_ESCAPES[code])
            elif code.startswith("u") and all(c in "0123456789abcdef" for c in code[1:]):
                out.append(chr(int(code[1:], 16)))
            else:
                raise _Invalid
            position = end + 1
        elif part.startswith("..", position):
            out.append("::")
            position += 2
        else:
            out.append(char)
            position += 1
    return "".join(out)


# -- v0 ----------------------------------------------------------------------------------------


def _demangle_v0(text: str) -> str:
    if not text or not ("A" <= text[0] <= "Z" or text[0].isdigit()):
        raise _Invalid
    if not text.isascii():
        raise _Invalid
    parser = _Printer(text)
    if text[0].isdigit():  # encoding version: only 0 exists
        raise _Invalid
    out = parser.path(in_value=True)
    # An instantiating crate may follow (not printed), then only a vendor suffix
    # (".llvm.N", rustc-demangle lib.rs) may: anything else is not a v0 name.
    if (parser.peek() or "").isupper():
        parser.path(in_value=False)
    rest = text[parser.position :]
    if rest and not rest.startswith("."):
        raise _Invalid
    return out


class _Printer:
    """Parses and prints at once, as rustc-demangle's Printer does."""

    def __init__(self, text: str, position: int = 0, depth: int = 0) -> None:
        self.text = text
        self.position = position
        self.depth = depth
        self.bound_lifetimes = 0

    # -- tokens ---------------------------------------------------------------------------------

    def peek(self) -> str | None:
        return self.text[self.position] if self.position < len(self.text) else None

    def eat(self, char: str) -> bool:
        if self.peek() == char:
            self.position += 1
            return True
        return False

    def next(self) -> str:
        char = self.peek()
        if char is None:
            raise _Invalid
        self.position += 1
        return char

    def integer_62(self) -> int:
        if self.eat("_"):
            return 0
        value = 0
        while not self.eat("_"):
            char = self.next()
            if char.isdigit():
                digit = ord(char) - ord("0")
            elif "a" <= char <= "z":
                digit = 10 + ord(char) - ord("a")
            elif "A" <= char <= "Z":
                digit = 36 + ord(char) - ord("A")
            else:
                raise _Invalid
            value = value * 62 + digit
        return value + 1

    def opt_integer_62(self, tag: str) -> int:
        return self.integer_62() + 1 if self.eat(tag) else 0

    def hex_nibbles(self) -> str:
        start = self.position
        while True:
            char = self.next()
            if char == "_":
                return self.text[start : self.position - 1]
            if char not in "0123456789abcdef":
                raise _Invalid

    def ident(self) -> str:
        punycode = self.eat("u")
        digits = re.compile(r"0|[1-9]\d*").match(self.text, self.position)
        if digits is None:
            raise _Invalid
        length = int(digits.group(0))
        self.position = digits.end()
        self.eat("_")
        start = self.position
        self.position += length
        if self.position > len(self.text):
            raise _Invalid
        raw = self.text[start : self.position]
        if not punycode:
            return raw
        ascii_part, _, encoded = raw.rpartition("_")
        if not encoded:
            raise _Invalid
        return _punycode_decode(ascii_part, encoded)

    def backref(self) -> _Printer:
        start = self.position - 1
        target = self.integer_62()
        if target >= start:
            raise _Invalid
        if self.depth + 1 > _MAX_DEPTH:
            raise _Invalid
        other = _Printer(self.text, target, self.depth + 1)
        other.bound_lifetimes = self.bound_lifetimes
        return other

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _Invalid

    # -- paths ----------------------------------------------------------------------------------

    def path(self, in_value: bool) -> str:
        self.deeper()
        try:
            tag = self.next()
            if tag == "C":
                self.opt_integer_62("s")
                return self.ident()
            if tag == "N":
                namespace = self.next()
                if not namespace.isalpha():
                    raise _Invalid
                prefix = self.path(in_value)
                disambiguator = self.opt_integer_62("s")
                name = self.ident()
                if namespace.isupper():
                    kind = {"C": "closure", "S": "shim"}.get(namespace, namespace)
                    label = f":{name}" if name else ""
                    return f"{prefix}::{{{kind}{label}#{disambiguator}}}"
                return f"{prefix}::{name}" if name else prefix
            if tag in "MXY":
                if tag != "Y":
                    self.opt_integer_62("s")
                    self.path(in_value=False)  # the impl's own path is not printed
                self_type = self.type()
                if tag == "M":
                    return f"<{self_type}>"
                return f"<{self_type} as {self.path(in_value=False)}>"
            if tag == "I":
                prefix = self.path(in_value)
                arguments = self.items(self.generic_arg)
                return f"{prefix}{'::' if in_value else ''}<{', '.join(arguments)}>"
            if tag == "B":
                return self.backref().path(in_value)
            raise _Invalid
        finally:
            self.depth -= 1

    def items(self, item: Callable[[], str]) -> list[str]:
        found = []
        while not self.eat("E"):
            found.append(item())
        return found

    def generic_arg(self) -> str:
        if self.eat("L"):
            return self.lifetime(self.integer_62())
        if self.eat("K"):
            return self.const()
        return self.type()

    def lifetime(self, index: int) -> str:
        if index == 0:
            return "'_"
        depth = self.bound_lifetimes - index
        if depth < 0:
            raise _Invalid
        return f"'{chr(ord('a') + depth)}" if depth < 26 else f"'_{depth}"

    def binder(self) -> str:
        count = self.opt_integer_62("G")
        if not count:
            return ""
        names = []
        for _ in range(count):
            self.bound_lifetimes += 1
            names.append(self.lifetime(1))
        return f"for<{', '.join(names)}> "

    # -- types ----------------------------------------------------------------------------------

    def type(self) -> str:
        tag = self.next()
        if tag in _BASIC_TYPES:
            return _BASIC_TYPES[tag]
        self.deeper()
        try:
            if tag in "RQ":
                lifetime = ""
                if self.eat("L"):
                    index = self.integer_62()
                    if index:
                        lifetime = self.lifetime(index) + " "
                mutable = "mut " if tag == "Q" else ""
                return f"&{lifetime}{mutable}{self.type()}"
            if tag in "PO":
                return f"*{'mut' if tag == 'O' else 'const'} {self.type()}"
            if tag == "A":
                element = self.type()
                return f"[{element}; {self.const()}]"
            if tag == "S":
                return f"[{self.type()}]"
            if tag == "T":
                elements = self.items(self.type)
                return f"({', '.join(elements)}{',' if len(elements) == 1 else ''})"
            if tag == "F":
                return self.fn_type()
            if tag == "D":
                return self.dyn_type()
            if tag == "B":
                return self.backref().type()
            self.position -= 1
            return self.path(in_value=False)
        finally:
            self.depth -= 1

    def fn_type(self) -> str:
        saved = self.bound_lifetimes
        binder = self.binder()
        unsafe = "unsafe " if self.eat("U") else ""
        abi = ""
        if self.eat("K"):
            if self.eat("C"):
                abi = 'extern "C" '
            else:
                name = self.ident()
                if not name or not name.isascii():
                    raise _Invalid
                abi = f'extern "{name.replace("_", "-")}" '
        arguments = self.items(self.type)
        result = "" if self.eat("u") else f" -> {self.type()}"
        self.bound_lifetimes = saved
        return f"{binder}{unsafe}{abi}fn({', '.join(arguments)}){result}"

    def dyn_type(self) -> str:
        saved = self.bound_lifetimes
        binder = self.binder()
        traits = self.items(self.dyn_trait)
        self.bound_lifetimes = saved
        if not self.eat("L"):
            raise _Invalid
        index = self.integer_62()
        bound = f" + {self.lifetime(index)}" if index else ""
        return f"dyn {binder}{' + '.join(traits)}{bound}"

    def dyn_trait(self) -> str:
        opened, text = self.path_open_generics()
        arguments: list[str] = []
        while self.eat("p"):
            name = self.ident()
            arguments.append(f"{name} = {self.type()}")
        if opened is not None:
            return f"{text}<{', '.join(opened + arguments)}>"
        return f"{text}<{', '.join(arguments)}>" if arguments else text

    def path_open_generics(self) -> tuple[list[str] | None, str]:
        """A trait path whose generic list stays open for associated-type bindings."""
        if self.eat("B"):
            return self.backref().path_open_generics()
        if self.eat("I"):
            prefix = self.path(in_value=False)
            return self.items(self.generic_arg), prefix
        return None, self.path(in_value=False)

    # -- consts ---------------------------------------------------------------------------------

    def const(self) -> str:
        if self.eat("B"):
            return self.backref().const()
        self.deeper()
        try:
            tag = self.next()
            if tag == "p":
                return "_"
            if tag in _UNSIGNED:
                return self.const_uint()
            if tag in _SIGNED:
                negative = "-" if self.eat("n") else ""
                return negative + self.const_uint()
            if tag == "b":
                value = self.hex_nibbles()
                if value not in ("0", "1"):
                    raise _Invalid
                return "true" if value == "1" else "false"
            if tag == "c":
                value = self.hex_nibbles()
                if len(value) > 8:
                    raise _Invalid
                return repr(chr(int(value, 16)))
            if tag == "e":
                return '"' + self.const_str_bytes() + '"'
            if tag in "RQ":
                if self.peek() == "e":
                    self.position += 1
                    return '"' + self.const_str_bytes() + '"'
                return ("&mut " if tag == "Q" else "&") + self.const()
            if tag == "A":
                return "[" + ", ".join(self.items(self.const)) + "]"
            if tag == "T":
                values = self.items(self.const)
                return "(" + ", ".join(values) + ("," if len(values) == 1 else "") + ")"
            if tag == "V":
                name = self.path(in_value=True)
                kind = self.next()
                if kind == "U":
                    return name
                if kind == "T":
                    return f"{name}({', '.join(self.items(self.const))})"
                if kind == "S":
                    fields = []
                    while not self.eat("E"):
                        self.opt_integer_62("s")
                        field = self.ident()
                        fields.append(f"{field}: {self.const()}")
                    return f"{name} {{ {', '.join(fields)} }}"
                raise _Invalid
            raise _Invalid
        finally:
            self.depth -= 1

    def const_uint(self) -> str:
        digits = self.hex_nibbles()
        if len(digits) > 16:
            return "0x" + digits
        return str(int(digits, 16)) if digits else "0"

    def const_str_bytes(self) -> str:
        digits = self.hex_nibbles()
        if len(digits) % 2:
            raise _Invalid
        text = bytes.fromhex(digits).decode("utf-8")
        return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def _punycode_decode(ascii_part: str, encoded: str) -> str:
    """RFC 3492 decoding with rustc-demangle's parameters (base 36, tmin 1, tmax 26,
    skew 38, damp 700, initial bias 72, initial n 0x80); digits a-z then 0-9."""
    output = list(ascii_part)
    base, t_min, t_max, skew = 36, 1, 26, 38
    damp, bias, index, code = 700, 72, 0, 0x80
    position = 0
    while position < len(encoded):
        delta, weight, k = 0, 1, 0
        while True:
            k += base
            threshold = min(max(k - bias, t_min), t_max)
            if position >= len(encoded):
                raise _Invalid
            char = encoded[position]
            position += 1
            if "a" <= char <= "z":
                digit = ord(char) - ord("a")
            elif "0" <= char <= "9":
                digit = 26 + ord(char) - ord("0")
            else:
                raise _Invalid
            delta += digit * weight
            if digit < threshold:
                break
            weight *= base - threshold
        length = len(output) + 1
        index += delta
        code += index // length
        index %= length
        if code > 0x10FFFF:
            raise _Invalid
        output.insert(index, chr(code))
        index += 1
        delta //= damp
        damp = 2
        delta += delta // length
        k = 0
        while delta > ((base - t_min) * t_max) // 2:
            delta //= base - t_min
            k += base
        bias = k + ((base - t_min + 1) * delta) // (delta + skew)
    return "".join(output)
