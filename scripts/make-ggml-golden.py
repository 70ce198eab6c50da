#!/usr/bin/env python3
"""Writes src/numerics/testdata/ggml_golden.bin: the conformance data of lowbit's ggml block types.

    build/peers/venv/bin/python scripts/make-ggml-golden.py [--out PATH]

Run it in the peers' venv (scripts/conformance --peers-only creates it); it needs the `gguf`
package (0.19.0 made the committed file) and numpy. Everything is seeded, so rerunning it gives
the same bytes unless gguf's results change — which is what the C++ test would then report.

Reference: the `gguf` package's numpy (de)quantizers, which mirror ggml's dequantize_row_* and
quantize_row_*_ref operation for operation (one rounding per numpy ufunc, as in the C code).
  * dequantize records: seeded random blocks of every type gguf can dequantize and lowbit
    implements, with every f16 scale field forced to a finite value (an f16 NaN widens to a
    signaling NaN in numpy but to a quiet one in ggml on F16C hardware and in lowbit, so
    NaN scales would test numpy, not ggml); plus the plain types, where numpy's own
    conversion (astype) is the reference because ggml has no dequantizer for them.
  * quantize records: seeded random floats (plus hand-picked edge blocks: zeros, constant
    blocks, ± ties for the absolute max, exact .5 rounding boundaries, scales that over- and
    underflow f16) through gguf's quantizers for F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1.
    No NaN or Inf inputs: ggml's behaviour on them is undefined C (float-to-int casts) and
    numpy's differs from it; the C++ tests cover those cases separately.

File layout (all integers little-endian):
    magic    8 bytes  b"LBGGMLG1"
    count    u32      number of records
    records, each:
      kind   u32      0 = dequantize (bytes -> values), 1 = quantize (values -> bytes)
      type   u32      ggml type number (GGMLQuantizationType)
      n      u32      number of values
      m      u32      number of bytes (= n / block_size * type_size)
      bytes  m bytes  the encoded blocks: input of a dequantize record, expected output of a quantize record
      values n × u32  float32 bit patterns: expected output of a dequantize record, input of a quantize record
The C++ test (GgmlGolden in src/numerics/ggml_quants_test.cc) compares every value and byte bit for bit.
"""
import argparse
import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

MAGIC = b"LBGGMLG1"
DEQUANTIZE, QUANTIZE = 0, 1

# Byte offsets of the f16 scale fields inside one block, per type (docs/FORMATS.md).
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ4_NL: [0], T.IQ4_XS: [0], T.TQ1_0: [52], T.TQ2_0: [64], T.MXFP4: [], T.NVFP4: [],
}
BLOCK_VALUES = 1024  # values per dequantize record of a block type (4 super-blocks, 32 small blocks)
PLAIN_VALUES = 512
QUANT_VALUES = 1024


def finite_f16(bits: np.ndarray) -> np.ndarray:
    """Random f16 patterns with Inf/NaN (exponent 31) turned into finite ones (exponent 15)."""
    bits = bits.astype(np.uint16)
    special = (bits & 0x7C00) == 0x7C00
    return np.where(special, bits ^ np.uint16(0x4000), bits).astype(np.uint16)


def random_blocks(rng: np.random.Generator, qtype: T, n_values: int) -> np.ndarray:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = n_values // block_size
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for offset in F16_FIELDS[qtype]:
        # Half the scales random finite f16 patterns (every exponent, subnormals included),
        # half of a realistic size, so both extremes and ordinary weights are covered.
        patterns = finite_f16(rng.integers(0, 1 << 16, size=n_blocks))
        realistic = (rng.standard_normal(n_blocks) * 0.02).astype(np.float16).view(np.uint16)
        field = np.where(rng.random(n_blocks) < 0.5, patterns, realistic).astype("<u2")
        raw[:, offset:offset + 2] = field.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


def plain_bytes(rng: np.random.Generator, qtype: T, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random data of a plain type and its float32 values (numpy's conversion)."""
    if qtype == T.F32:
        bits = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype("<u4")  # NaNs too: bits are kept
        return bits.view(np.uint8), bits.view(np.float32)
    if qtype == T.F16:
        bits = rng.integers(0, 1 << 16, size=n).astype(np.uint16)
        nan = ((bits & 0x7C00) == 0x7C00) & ((bits & 0x03FF) != 0)
        bits = np.where(nan, bits & np.uint16(0xFC00), bits).astype("<u2")  # NaN -> Inf of the same sign
        return bits.view(np.uint8), np.asarray(dequantize(bits.view(np.uint8), T.F16), dtype=np.float32)
    if qtype == T.BF16:
        bits = rng.integers(0, 1 << 16, size=n).astype("<u2")  # NaNs too: widening is a shift
        return bits.view(np.uint8), np.asarray(dequantize(bits.view(np.uint8), T.BF16), dtype=np.float32)
    if qtype in (T.I8, T.I16, T.I32, T.I64):
        dtype = {T.I8: "<i1", T.I16: "<i2", T.I32: "<i4", T.I64: "<i8"}[qtype]
        width = np.dtype(dtype).itemsize * 8
        raw = rng.integers(0, 256, size=n * width // 8, dtype=np.uint8)
        values = raw.view(dtype).copy()
        if width >= 32:
            # Small numbers and ties of the int -> float rounding (2^24 + 1 rounds down to even,
            # 2^24 + 3 up), where the conversion is interesting.
            special = [0, 1, -1, 2**24, 2**24 + 1, 2**24 + 3, -(2**24 + 1), -(2**24 + 3), 2**31 - 1, -(2**31)]
            if width == 64:
                special += [2**63 - 1, -(2**63), 2**53 + 1, 2**40 + 2**15]
            values[:len(special)] = special
            values[len(special):n // 2] = rng.integers(-(2**26), 2**26, size=n // 2 - len(special))
        return values.view(np.uint8), values.astype(np.float32)
    if qtype == T.F64:
        bits = rng.integers(0, 1 << 63, size=n, dtype=np.uint64) | (rng.integers(0, 2, size=n, dtype=np.uint64) << 63)
        values = bits.view(np.float64).copy()
        values[np.isnan(values)] = np.inf
        half = n // 2
        values[:half] = rng.standard_normal(half) * 10.0 ** rng.integers(-45, 45, size=half)
        special = [1 + 2**-24, 1 + 3 * 2**-24, -(1 + 2**-24), 2**-149, 2**-150, 3 * 2**-151, 2**-151, 3.4028235677973366e38,
                   3.4028235677973362e38, 1e39, -1e39, 0.0, -0.0, 1e-46]
        values[:len(special)] = special
        with np.errstate(over="ignore"):
            return values.astype("<f8").view(np.uint8), values.astype(np.float32)
    raise ValueError(qtype)


def quant_input(rng: np.random.Generator, n: int) -> np.ndarray:
    """Floats for the quantizers: hand-picked edge blocks of 32, then random blocks of varied scale."""
    edge = [
        np.zeros(32),
        np.full(32, 0.5),                                     # max == min: Q4_1/Q5_1 get d = 0
        np.r_[3.0, -3.0, rng.uniform(-2, 2, 30)],              # |max| tie: the first (+3) decides the sign
        np.r_[-3.0, 3.0, rng.uniform(-2, 2, 30)],
        np.r_[127.0, np.arange(-15.5, 15.5, 1.0), 0.5][:32],  # Q8_0: d = 1, exact .5 boundaries
        np.r_[-8.0, np.arange(-7.5, 8.0, 0.5)][:32],           # Q4_0: d = 1, truncation at .5 steps
        np.r_[-16.0, np.arange(-15.0, 16.0, 1.0)][:32],        # Q5_0: d = 1
        np.r_[0.0, 15.0, np.arange(0.25, 15.0, 0.5)][:32],     # Q4_1: d = 1, min 0
        np.r_[0.0, 31.0, np.arange(0.5, 30.5, 1.0)][:32],      # Q5_1: d = 1, min 0
        rng.standard_normal(32) * 1e6,                         # scales overflow f16 (d = Inf)
        rng.standard_normal(32) * 1e-9,                        # scales underflow to f16 subnormals or 0
        rng.standard_normal(32) * 1e-30,                       # f16 scale 0, codes still computed
        np.r_[1e-3 * rng.standard_normal(31), 40.0],           # one outlier
        rng.uniform(5, 6, 32),                                 # all positive, narrow range
        rng.uniform(-6, -5, 32),                               # all negative
    ]
    blocks = [np.asarray(b, dtype=np.float64) for b in edge]
    while len(blocks) * 32 < n:
        scale = 10.0 ** rng.uniform(-4, 4)
        kind = rng.integers(0, 3)
        if kind == 0:
            b = rng.standard_normal(32) * scale
        elif kind == 1:
            b = rng.uniform(-scale, scale, 32) + rng.uniform(-scale, scale)
        else:
            b = rng.laplace(0, scale, 32)
        blocks.append(b)
    return np.concatenate(blocks)[:n].astype(np.float32)


def special_floats(rng: np.random.Generator, n: int, with_nan: bool) -> np.ndarray:
    """Inputs for the f16/bf16 narrowings: random patterns plus ties, subnormals, overflow edges."""
    bits = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32).copy()
    if not with_nan:
        values[np.isnan(values)] = np.float32(np.inf)
    half = n // 2
    values[:half] = (rng.standard_normal(half) * 10.0 ** rng.uniform(-9, 6, half)).astype(np.float32)
    special = np.array([0.0, -0.0, 65504.0, 65519.99, 65520.0, -65520.0, 6.1035156e-05, 5.9604645e-08,
                        2.9802322e-08, 2.9802326e-08, 1.0 + 2**-11, 1.0 + 3 * 2**-11, 1.0 + 2**-8, 1.0 + 3 * 2**-8,
                        3.3895314e38, 3.4028235e38, 1e-40, -1e-45, np.inf, -np.inf], dtype=np.float32)
    values[half:half + len(special)] = special
    if with_nan:
        nan_bits = np.array([0x7FC00000, 0xFFC00001, 0x7F800001, 0xFF80FFFF, 0x7FFFFFFF], dtype=np.uint32)
        values[half + len(special):half + len(special) + len(nan_bits)] = nan_bits.view(np.float32)
    return values


def record(kind: int, qtype: T, data: np.ndarray, values: np.ndarray) -> bytes:
    data = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
    values = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    if qtype == T.Q8_1:
        type_size = 36  # gguf-py says 40; ggml's block_q8_1 is 36 bytes
    assert values.size % block_size == 0 and data.size == values.size // block_size * type_size, qtype
    header = struct.pack("<IIII", kind, int(qtype), values.size, data.size)
    return header + data.tobytes() + values.view("<u4").tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--out", default=os.path.join(root, "src", "numerics", "testdata", "ggml_golden.bin"))
    args = parser.parse_args()

    records = []
    with np.errstate(all="ignore"):
        for i, qtype in enumerate(F16_FIELDS):
            rng = np.random.default_rng(1000 + i)
            data = random_blocks(rng, qtype, BLOCK_VALUES)
            values = np.asarray(dequantize(data, qtype), dtype=np.float32)
            records.append(record(DEQUANTIZE, qtype, data, values))
        for i, qtype in enumerate([T.F32, T.F16, T.BF16, T.I8, T.I16, T.I32, T.I64, T.F64]):
            rng = np.random.default_rng(2000 + i)
            data, values = plain_bytes(rng, qtype, PLAIN_VALUES)
            records.append(record(DEQUANTIZE, qtype, data, values))
        for i, qtype in enumerate([T.F32, T.F16, T.BF16]):
            rng = np.random.default_rng(3000 + i)
            values = special_floats(rng, QUANT_VALUES // 2, with_nan=qtype != T.F16)
            encoded = np.asarray(quantize(values, qtype)).view(np.uint8)
            records.append(record(QUANTIZE, qtype, encoded, values))
        for i, qtype in enumerate([T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]):
            rng = np.random.default_rng(4000 + i)
            values = quant_input(rng, QUANT_VALUES)
            encoded = np.asarray(quantize(values, qtype)).view(np.uint8)
            records.append(record(QUANTIZE, qtype, encoded, values))

    blob = MAGIC + struct.pack("<I", len(records)) + b"".join(records)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(blob)
    print(f"{args.out}: {len(records)} records, {len(blob)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
