"""The DWARF layer: debug sections in, source locations and function extents out."""
