"""Decoding: parsed oops reports x kernel images -> resolved frames with source locations."""
