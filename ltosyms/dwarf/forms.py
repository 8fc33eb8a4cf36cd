"""DWARF constants and the primitive readers every DWARF decoder in ltosyms shares.

Values are from the DWARF 5 standard (section 7, "Data Representation"); the few GNU extensions
kept here are from gcc's include/dwarf2.def. Only what the decoders read is named: tags that can
own code, the attributes of functions and units, every attribute form (a form must be known to
be skipped), range-list and line-program opcodes, and what names a variable's static address.
"""

from __future__ import annotations

# -- tags (DWARF 5 §7.5.3, table 7.3) ------------------------------------------------------------
TAG_ENTRY_POINT = 0x03
TAG_LEXICAL_BLOCK = 0x0B
TAG_COMPILE_UNIT = 0x11
TAG_INLINED_SUBROUTINE = 0x1D
TAG_MODULE = 0x1E
TAG_SUBPROGRAM = 0x2E
TAG_VARIABLE = 0x34
TAG_NAMESPACE = 0x39
TAG_PARTIAL_UNIT = 0x3C
TAG_SKELETON_UNIT = 0x4A

# Tags whose children may own code but that are not functions: walk into them.
DESCEND_TAGS = frozenset({TAG_LEXICAL_BLOCK, TAG_NAMESPACE, TAG_MODULE})

# -- attributes (DWARF 5 §7.5.4, table 7.5) ------------------------------------------------------
AT_SIBLING = 0x01
AT_LOCATION = 0x02
AT_NAME = 0x03
AT_STMT_LIST = 0x10
AT_LOW_PC = 0x11
AT_HIGH_PC = 0x12
AT_COMP_DIR = 0x1B
AT_PRODUCER = 0x25
AT_INLINE = 0x20
AT_ABSTRACT_ORIGIN = 0x31
AT_DECL_FILE = 0x3A
AT_DECL_LINE = 0x3B
AT_DECLARATION = 0x3C
AT_SPECIFICATION = 0x47
AT_RANGES = 0x55
AT_CALL_COLUMN = 0x57
AT_CALL_FILE = 0x58
AT_CALL_LINE = 0x59
AT_LINKAGE_NAME = 0x6E
AT_STR_OFFSETS_BASE = 0x72
AT_ADDR_BASE = 0x73
AT_RNGLISTS_BASE = 0x74
AT_GNU_ADDR_BASE = 0x2133  # pre-standard split DWARF (DWARF 4 + -gsplit-dwarf)
AT_GNU_RANGES_BASE = 0x2132
AT_MIPS_LINKAGE_NAME = 0x2007  # old gcc spelling of DW_AT_linkage_name

# -- forms (DWARF 5 §7.5.6, table 7.6) -----------------------------------------------------------
FORM_ADDR = 0x01
FORM_BLOCK2 = 0x03
FORM_BLOCK4 = 0x04
FORM_DATA2 = 0x05
FORM_DATA4 = 0x06
FORM_DATA8 = 0x07
FORM_STRING = 0x08
FORM_BLOCK = 0x09
FORM_BLOCK1 = 0x0A
FORM_DATA1 = 0x0B
FORM_FLAG = 0x0C
FORM_SDATA = 0x0D
FORM_STRP = 0x0E
FORM_UDATA = 0x0F
FORM_REF_ADDR = 0x10
FORM_REF1 = 0x11
FORM_REF2 = 0x12
FORM_REF4 = 0x13
FORM_REF8 = 0x14
FORM_REF_UDATA = 0x15
FORM_INDIRECT = 0x16
FORM_SEC_OFFSET = 0x17
FORM_EXPRLOC = 0x18
FORM_FLAG_PRESENT = 0x19
FORM_STRX = 0x1A
FORM_ADDRX = 0x1B
FORM_REF_SUP4 = 0x1C
FORM_STRP_SUP = 0x1D
FORM_DATA16 = 0x1E
FORM_LINE_STRP = 0x1F
FORM_REF_SIG8 = 0x20
FORM_IMPLICIT_CONST = 0x21
FORM_LOCLISTX = 0x22
FORM_RNGLISTX = 0x23
FORM_REF_SUP8 = 0x24
FORM_STRX1 = 0x25
FORM_STRX2 = 0x26
FORM_STRX3 = 0x27
FORM_STRX4 = 0x28
FORM_ADDRX1 = 0x29
FORM_ADDRX2 = 0x2A
FORM_ADDRX3 = 0x2B
FORM_ADDRX4 = 0x2C
FORM_GNU_ADDR_INDEX = 0x1F01
FORM_GNU_STR_INDEX = 0x1F02
FORM_GNU_REF_ALT = 0x1F20
FORM_GNU_STRP_ALT = 0x1F21

# How a form is laid out, for skipping. ints are fixed byte counts; the strings name a
# variable-length encoding or a size that depends on the unit (offset size, address size).
FIXED = {
    FORM_DATA1: 1,
    FORM_REF1: 1,
    FORM_FLAG: 1,
    FORM_STRX1: 1,
    FORM_ADDRX1: 1,
    FORM_DATA2: 2,
    FORM_REF2: 2,
    FORM_STRX2: 2,
    FORM_ADDRX2: 2,
    FORM_STRX3: 3,
    FORM_ADDRX3: 3,
    FORM_DATA4: 4,
    FORM_REF4: 4,
    FORM_REF_SUP4: 4,
    FORM_STRX4: 4,
    FORM_ADDRX4: 4,
    FORM_DATA8: 8,
    FORM_REF8: 8,
    FORM_REF_SIG8: 8,
    FORM_REF_SUP8: 8,
    FORM_DATA16: 16,
    FORM_FLAG_PRESENT: 0,
    FORM_IMPLICIT_CONST: 0,
}
OFFSET_SIZED = frozenset(
    {FORM_STRP, FORM_LINE_STRP, FORM_SEC_OFFSET, FORM_STRP_SUP, FORM_GNU_REF_ALT, FORM_GNU_STRP_ALT}
)
LEB = frozenset(
    {
        FORM_SDATA,
        FORM_UDATA,
        FORM_REF_UDATA,
        FORM_STRX,
        FORM_ADDRX,
        FORM_LOCLISTX,
        FORM_RNGLISTX,
        FORM_GNU_ADDR_INDEX,
        FORM_GNU_STR_INDEX,
    }
)
BLOCK_LEB = frozenset({FORM_BLOCK, FORM_EXPRLOC})
BLOCK_FIXED = {FORM_BLOCK1: 1, FORM_BLOCK2: 2, FORM_BLOCK4: 4}
KNOWN_FORMS = frozenset(
    {
        *FIXED,
        *OFFSET_SIZED,
        *LEB,
        *BLOCK_LEB,
        *BLOCK_FIXED,
        FORM_ADDR,
        FORM_REF_ADDR,
        FORM_STRING,
        FORM_INDIRECT,
    }
)
# Forms whose value is a reference to a DIE inside the same unit (offset from the unit header).
UNIT_REF_FORMS = frozenset({FORM_REF1, FORM_REF2, FORM_REF4, FORM_REF8, FORM_REF_UDATA})
STRX_FORMS = frozenset(
    {FORM_STRX, FORM_STRX1, FORM_STRX2, FORM_STRX3, FORM_STRX4, FORM_GNU_STR_INDEX}
)
ADDRX_FORMS = frozenset(
    {FORM_ADDRX, FORM_ADDRX1, FORM_ADDRX2, FORM_ADDRX3, FORM_ADDRX4, FORM_GNU_ADDR_INDEX}
)
CONSTANT_FORMS = frozenset(
    {FORM_DATA1, FORM_DATA2, FORM_DATA4, FORM_DATA8, FORM_UDATA, FORM_SDATA, FORM_IMPLICIT_CONST}
)

# -- location expression operations (DWARF 5 §7.7.1, table 7.9) ----------------------------------
OP_ADDR = 0x03
OP_ADDRX = 0xA1

# -- unit types (DWARF 5 §7.5.1) -----------------------------------------------------------------
UT_COMPILE = 0x01
UT_TYPE = 0x02
UT_PARTIAL = 0x03
UT_SKELETON = 0x04
UT_SPLIT_COMPILE = 0x05
UT_SPLIT_TYPE = 0x06

# -- range list entries (DWARF 5 §7.25) ----------------------------------------------------------
RLE_END_OF_LIST = 0x00
RLE_BASE_ADDRESSX = 0x01
RLE_STARTX_ENDX = 0x02
RLE_STARTX_LENGTH = 0x03
RLE_OFFSET_PAIR = 0x04
RLE_BASE_ADDRESS = 0x05
RLE_START_END = 0x06
RLE_START_LENGTH = 0x07

# -- line number program (DWARF 5 §6.2.5, §7.22) -------------------------------------------------
LNS_COPY = 1
LNS_ADVANCE_PC = 2
LNS_ADVANCE_LINE = 3
LNS_SET_FILE = 4
LNS_SET_COLUMN = 5
LNS_NEGATE_STMT = 6
LNS_SET_BASIC_BLOCK = 7
LNS_CONST_ADD_PC = 8
LNS_FIXED_ADVANCE_PC = 9
LNS_SET_PROLOGUE_END = 10
LNS_SET_EPILOGUE_BEGIN = 11
LNS_SET_ISA = 12
LNE_END_SEQUENCE = 1
LNE_SET_ADDRESS = 2
LNE_DEFINE_FILE = 3
LNE_SET_DISCRIMINATOR = 4
LNCT_PATH = 1
LNCT_DIRECTORY_INDEX = 2
LNCT_TIMESTAMP = 3
LNCT_SIZE = 4
LNCT_MD5 = 5


def read_uleb(data: bytes, position: int) -> tuple[int, int]:
    """Unsigned LEB128 at ``position`` (DWARF 5 §7.6): (value, position after it)."""
    byte = data[position]
    position += 1
    if byte < 0x80:
        return byte, position
    value = byte & 0x7F
    shift = 7
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def read_sleb(data: bytes, position: int) -> tuple[int, int]:
    """Signed LEB128 at ``position`` (DWARF 5 §7.6): (value, position after it)."""
    value = 0
    shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                value -= 1 << shift
            return value, position
