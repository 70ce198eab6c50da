#!/usr/bin/env python3
"""Writes the seed corpus for fuzz/safetensors_header_fuzz.cc into fuzz/corpus/safetensors_header/.

Seeds are whole safetensors files: a few valid ones (every dtype, metadata, scalar and
zero-size shapes, the reference writer's space padding) and slightly broken variants,
each one mutation away from valid, so the fuzzer starts next to every validation branch.
Standard library only; the output is deterministic, so rerunning it changes nothing.

    python3 fuzz/make_safetensors_corpus.py [output_dir]
"""
import json
import os
import struct
import sys

DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def raw(header_text, data=b"", length=None):
    """A file from a header given verbatim (bytes or str) and a data section."""
    if isinstance(header_text, str):
        header_text = header_text.encode()
    if length is None:
        length = len(header_text)
    return struct.pack("<Q", length) + header_text + data


def valid(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape); laid out like the reference writer
    (largest element size first, contiguous, header space-padded to a multiple of 8)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    ordered = sorted(tensors, key=lambda t: -DTYPE_SIZES[t[1]])
    offset = 0
    data = b""
    for index, (name, dtype, shape) in enumerate(ordered):
        size = numel(shape) * DTYPE_SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        data += bytes((index * 37 + i) & 0xFF for i in range(size))
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return raw(text, data)


def entry(dtype="F32", shape=(2, 3), offsets=(0, 24), name="w"):
    return {name: {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}}


def broken(obj, data_size=24):
    return raw(json.dumps(obj, separators=(",", ":")), bytes(data_size))


def seeds():
    yield "valid_one_f32", valid([("w", "F32", [2, 3])])
    yield "valid_every_dtype", valid([(f"t_{d.lower()}", d, [2]) for d in DTYPE_SIZES],
                                     metadata={"format": "pt"})
    yield "valid_scalar_and_empty", valid([("scalar", "F64", []), ("empty", "BF16", [0, 3]),
                                           ("mask", "BOOL", [3]), ("ids", "I64", [2, 1])],
                                          metadata={"format": "pt", "note": "caf\u00e9 \"q\""})
    yield "valid_no_tensors", valid([], metadata={})
    yield "valid_unpadded", valid([("a.weight", "F16", [3]), ("b.bias", "U8", [1])], pad=False)

    yield "bad_short", b"\x08\x00\x00"
    yield "bad_length_past_end", raw(b"{}", length=4096)
    yield "bad_length_2_63", raw(b"{}", length=1 << 63)
    yield "bad_not_json", raw(b'{"w":{"dtype":"F32",')
    yield "bad_nul_padding", raw(b"{}\x00\x00\x00\x00\x00\x00")
    yield "bad_array", raw(b"[1,2,3]")
    yield "bad_entry_number", broken({"w": 5})
    yield "bad_missing_shape", broken({"w": {"dtype": "F32", "data_offsets": [0, 24]}})
    yield "bad_unknown_dtype", broken(entry(dtype="F7"))
    yield "bad_dtype_number", broken(entry(dtype=4))
    yield "bad_negative_dim", broken(entry(shape=(-2, 3)))
    yield "bad_float_dim", broken(entry(shape=(2.5, 3)))
    yield "bad_nested_dim", broken(entry(shape=([[2]], 3)))
    yield "bad_numel_overflow", broken(entry(dtype="U8", shape=(1 << 32, 1 << 32), offsets=(0, 0)), 0)
    yield "bad_bytes_overflow", broken(entry(dtype="F64", shape=(1 << 62,), offsets=(0, 0)), 0)
    yield "bad_dim_above_u64", raw(b'{"w":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]}}')
    yield "bad_size_mismatch", broken(entry(offsets=(0, 20)))
    yield "bad_reversed", broken(entry(offsets=(24, 0)))
    yield "bad_end_past_data", broken(entry(), 20)
    yield "bad_three_offsets", broken(entry(offsets=(0, 24, 24)))
    yield "bad_overlap", broken({**entry("F32", (4,), (0, 16), "a"), **entry("F32", (4,), (8, 24), "b")})
    yield "bad_metadata_list", broken({"__metadata__": ["pt"]}, 0)
    yield "bad_metadata_value", broken({"__metadata__": {"format": 1}}, 0)
    yield "bad_empty_name", broken(entry(name=""))
    yield "bad_truncated_data", valid([("w", "F32", [2, 3]), ("b", "I8", [5])])[:-3]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "safetensors_header")
    os.makedirs(out, exist_ok=True)
    total = 0
    for name, content in seeds():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(content)
        total += len(content)
    print(f"wrote {sum(1 for _ in seeds())} seeds, {total} bytes, to {out}")


if __name__ == "__main__":
    main()
