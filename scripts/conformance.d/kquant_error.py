#!/usr/bin/env python3
"""Squared error of two quantizations of the same f32 model, tensor by tensor, in the tensors of a type.

    kquant_error.py SOURCE_F32.gguf LLAMA.gguf LOWBIT.gguf TYPE [--json OUT.json]

For every tensor that both LLAMA.gguf (made by llama-quantize) and LOWBIT.gguf (made by `lowbit quantize
--format gguf:TYPE`) store as TYPE, the sum of squared differences from SOURCE's f32 values, each file
decoded by the gguf package's dequantize(). Prints the totals and how many tensors each file wins; exit 0
when lowbit's total error is the same or lower, 1 otherwise, 2 when a file cannot be read or no tensor
is stored as TYPE by both. Used by scripts/conformance (run it in build/peers/venv).
"""
import argparse
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize


def values(tensor) -> np.ndarray:
    qtype = tensor.tensor_type
    data = np.asarray(tensor.data)
    if qtype == GGMLQuantizationType.F32:
        return data.view(np.float32).reshape(-1).astype(np.float64)
    if qtype == GGMLQuantizationType.F16:
        return data.view(np.float16).reshape(-1).astype(np.float64)
    return np.asarray(dequantize(data.view(np.uint8).reshape(-1), qtype), dtype=np.float64).reshape(-1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("llama")
    parser.add_argument("lowbit")
    parser.add_argument("type")
    parser.add_argument("--json")
    args = parser.parse_args()
    try:
        qtype = GGMLQuantizationType[args.type.upper()]
        readers = [GGUFReader(p) for p in (args.source, args.llama, args.lowbit)]
    except Exception as e:  # noqa: BLE001 - any unreadable input is a setup problem
        print(f"kquant_error: {e}", file=sys.stderr)
        return 2
    source, llama, lowbit = ({t.name: t for t in r.tensors} for r in readers)
    rows = []
    for name, t in lowbit.items():
        if t.tensor_type != qtype or name not in llama or llama[name].tensor_type != qtype or name not in source:
            continue
        w = values(source[name])
        e_llama = float(np.sum((values(llama[name]) - w) ** 2))
        e_lowbit = float(np.sum((values(t) - w) ** 2))
        rows.append({"tensor": name, "llama": e_llama, "lowbit": e_lowbit})
    if not rows:
        print(f"kquant_error: no tensor is {args.type} in both files", file=sys.stderr)
        return 2
    total_llama = sum(r["llama"] for r in rows)
    total_lowbit = sum(r["lowbit"] for r in rows)
    wins = sum(r["lowbit"] <= r["llama"] for r in rows)
    summary = {"type": args.type, "tensors": len(rows), "llama_error": total_llama, "lowbit_error": total_lowbit,
               "ratio": total_lowbit / total_llama if total_llama > 0 else float("nan"), "lowbit_wins": wins,
               "rows": rows}
    print(f"{args.type}: {len(rows)} tensors, squared error lowbit {total_lowbit:.6g} vs llama.cpp {total_llama:.6g} "
          f"(ratio {summary['ratio']:.4f}); lowbit lower or equal on {wins}/{len(rows)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0 if total_lowbit <= total_llama else 1


if __name__ == "__main__":
    sys.exit(main())
