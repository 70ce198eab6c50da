#!/usr/bin/env python3
"""Writes the seed corpus for fuzz/gguf_fuzz.cc into fuzz/corpus/gguf/.

Seeds are whole GGUF files (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md),
packed here with struct so they do not come from the reader's own writer: valid small
files of versions 1, 2 and 3 with every metadata value type, arrays (nested, empty, of
strings), a custom alignment and tensors of plain and block types; then near misses, each
one field away from valid, so the fuzzer starts next to the reader's validation branches.
Standard library only; the output is deterministic, so rerunning it changes nothing.

    python3 fuzz/make_gguf_corpus.py [output_dir]
"""
import os
import struct
import sys

# Value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR_FORMATS = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "B",
                  U64: "Q", I64: "q", F64: "d"}

# ggml types: number -> (block size, bytes per block).
GGML = {
    "F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q4_K": (12, 256, 144),
    "Q6_K": (14, 256, 210), "IQ4_NL": (20, 32, 18), "I32": (26, 1, 4), "BF16": (30, 1, 2),
}


class Gguf:
    """Encodes the fields of one version: counts, lengths and dims are u32 in version 1."""

    def __init__(self, version=3):
        self.version = version

    def n(self, value):
        return struct.pack("<I" if self.version == 1 else "<Q", value)

    def string(self, text):
        data = text.encode() if isinstance(text, str) else text
        return self.n(len(data)) + data

    def value(self, vtype, value):
        """The payload of a value; arrays are (element type, [elements])."""
        if vtype in SCALAR_FORMATS:
            return struct.pack("<" + SCALAR_FORMATS[vtype], value)
        if vtype == STRING:
            return self.string(value)
        element_type, elements = value
        return struct.pack("<I", element_type) + self.n(len(elements)) + b"".join(
            self.value(element_type, e) for e in elements)

    def kv(self, key, vtype, value):
        return self.string(key) + struct.pack("<I", vtype) + self.value(vtype, value)

    def tensor_info(self, name, dims, ggml_type, offset):
        out = self.string(name) + struct.pack("<I", len(dims))
        out += b"".join(self.n(d) for d in dims)
        return out + struct.pack("<IQ", ggml_type, offset)

    def file(self, kvs, tensors=(), alignment=32, header=None):
        """kvs: [(key, type, value)]; tensors: [(name, ggml type name, dims)], laid out in
        order, each at the next aligned offset; the data is a byte pattern and the file ends
        at the last tensor's end."""
        infos, data = b"", b""
        for index, (name, type_name, dims) in enumerate(tensors):
            number, block, size = GGML[type_name]
            elements = 1
            for d in dims:
                elements *= d
            data += b"\0" * (-len(data) % alignment)
            infos += self.tensor_info(name, dims, number, len(data))
            data += bytes((index * 31 + i * 7 + 3) & 0xFF for i in range(elements // block * size))
        if header is None:
            header = b"GGUF" + struct.pack("<I", self.version) + self.n(len(tensors)) + self.n(len(kvs))
        out = header + b"".join(self.kv(*kv) for kv in kvs) + infos
        if tensors:
            out += b"\0" * (-len(out) % alignment)
        return out + data


def seeds():
    v3, v2, v1 = Gguf(3), Gguf(2), Gguf(1)
    every_type = [
        ("general.architecture", STRING, "llama"),
        ("u8", U8, 255), ("i8", I8, -128), ("u16", U16, 65535), ("i16", I16, -32768),
        ("u32", U32, 4000000000), ("i32", I32, -2), ("u64", U64, 2**64 - 1), ("i64", I64, -2**63),
        ("f32", F32, 0.1), ("f64", F64, -1e300), ("true", BOOL, 1), ("false", BOOL, 0),
        ("empty", STRING, ""), ("utf8", STRING, "h\u00e9llo \u65e5\u672c \U0001F642"),
        ("tokens", ARRAY, (STRING, ["<unk>", "<s>", "</s>", "", "\u0120the"])),
        ("scores", ARRAY, (F32, [0.0, -1.5, 2.25])),
        ("types", ARRAY, (I32, [2, 3, 3, 1, 1])),
        ("bools", ARRAY, (BOOL, [0, 1])),
        ("none", ARRAY, (U64, [])),
        ("nested", ARRAY, (ARRAY, [(I32, [1, 2]), (STRING, ["x"]), (ARRAY, [(U8, [])])])),
    ]
    small_model = [
        ("general.architecture", STRING, "llama"), ("llama.block_count", U32, 1),
        ("llama.embedding_length", U32, 32), ("tokenizer.ggml.tokens", ARRAY, (STRING, ["a", "b", "c", "d"])),
    ]
    model_tensors = [("token_embd.weight", "Q8_0", [32, 4]), ("blk.0.attn_norm.weight", "F32", [32]),
                     ("blk.0.attn_q.weight", "Q4_0", [32, 32]), ("blk.0.ffn_up.weight", "F16", [32, 2, 2]),
                     ("output.weight", "BF16", [32, 1, 1, 4])]
    out = {
        "v3_every_value_type": v3.file(every_type, [("w", "F32", [3, 2])]),
        "v3_small_model": v3.file(small_model, model_tensors),
        "v3_block_types": v3.file([], [("q4_1", "Q4_1", [64]), ("q5_0", "Q5_0", [32]), ("q5_1", "Q5_1", [32]),
                                       ("q2_k", "Q2_K", [256]), ("q4_k", "Q4_K", [256]), ("q6_k", "Q6_K", [256]),
                                       ("iq4_nl", "IQ4_NL", [32]), ("i32", "I32", [3])]),
        "v3_alignment_64": v3.file([("general.alignment", U32, 64), ("x", STRING, "y")],
                                   [("a", "F32", [5]), ("b", "F16", [3, 3])], alignment=64),
        "v3_alignment_1": v3.file([("general.alignment", U32, 1)], [("a", "F16", [3]), ("b", "F32", [1])],
                                  alignment=1),
        "v3_metadata_only": v3.file(every_type[:6]),
        "v2_small_model": v2.file(small_model + [("f64", F64, 0.5)], model_tensors[:3]),
        "v1_small_model": v1.file(small_model + [("eps", F32, 1e-5)], model_tensors[:2] + [("b", "F32", [3])]),
        "v1_every_value_type": v1.file(every_type[:20], [("w", "F16", [4, 2])]),
    }
    # Near misses: one field away from valid.
    base = [("k", U32, 7)]
    out.update({
        "bad_magic": b"GGUX" + v3.file(base)[4:],
        "bad_version_4": v3.file(base, header=b"GGUF" + struct.pack("<IQQ", 4, 0, 1)),
        # a key whose length runs past the end of the file
        "bad_string_length": b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**40) + b"key" + bytes(16),
        "bad_array_nested_9": v3.file([("deep", ARRAY, nest(9))]),
        "bad_bool_2": v3.file([("b", BOOL, 2)]),
        "bad_duplicate_key": v3.file([("k", U8, 1), ("k", U8, 2)]),
        "bad_alignment_48": v3.file([("general.alignment", U32, 48)], [("w", "F32", [12])], alignment=48),
        "bad_q4_0_row_33": v3.file([], [("w", "Q4_0", [32])]).replace(
            v3.tensor_info("w", [32], 2, 0), v3.tensor_info("w", [33], 2, 0)),
        "bad_overlap": overlap(v3),
        "bad_truncated_data": v3.file(small_model, model_tensors)[:-1],
    })
    return out


def nest(levels):
    """`levels` arrays one inside the other, the innermost an empty u8 array."""
    value = (U8, [])
    for _ in range(levels - 1):
        value = (ARRAY, [value])
    return value


def overlap(g):
    """Two 64-byte F32 tensors, the second starting 32 bytes into the first."""
    infos = g.tensor_info("a", [16], 0, 0) + g.tensor_info("b", [16], 0, 32)
    out = b"GGUF" + struct.pack("<I", g.version) + g.n(2) + g.n(0) + infos
    out += b"\0" * (-len(out) % 32)
    return out + bytes(range(96))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "gguf")
    os.makedirs(out_dir, exist_ok=True)
    for name, data in sorted(seeds().items()):
        assert len(data) < 4096, (name, len(data))
        with open(os.path.join(out_dir, name + ".gguf"), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds())} seeds to {out_dir}")


if __name__ == "__main__":
    main()
