#!/usr/bin/env python3
"""Bit-exact check of an f32 GGUF against the `gguf` package's dequantization of a source GGUF.

    dequant_check.py SOURCE.gguf CANDIDATE.gguf [--json OUT.json]

For every tensor of SOURCE, the tensor of the same name in CANDIDATE must be F32 with the same shape and its
values must equal, bit for bit (compared as uint32), gguf.quants.dequantize() of the source tensor. Prints one
line per source tensor type and the first mismatching tensors; exit 0 when everything matches, 1 otherwise,
2 when a file cannot be read. Used by scripts/conformance (run it in build/peers/venv).
"""
import argparse
import json
import sys
from collections import OrderedDict

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize


def dequantize_tensor(tensor) -> np.ndarray:
    """Flat f32 values of a reader tensor, as the gguf package reconstructs them."""
    qtype = tensor.tensor_type
    data = np.asarray(tensor.data)
    if qtype == GGMLQuantizationType.F32:
        return data.view(np.float32).reshape(-1)
    if qtype == GGMLQuantizationType.F16:
        return data.view(np.float16).reshape(-1).astype(np.float32)
    raw = data.view(np.uint8).reshape(-1)
    return np.asarray(dequantize(raw, qtype), dtype=np.float32).reshape(-1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("candidate")
    parser.add_argument("--json", help="write the summary as JSON to this file")
    args = parser.parse_args()
    try:
        source = GGUFReader(args.source)
        candidate = GGUFReader(args.candidate)
    except Exception as error:  # noqa: BLE001 - any reader failure is a clean "cannot read"
        print(f"dequant_check: cannot read: {error}", file=sys.stderr)
        return 2

    by_name = {t.name: t for t in candidate.tensors}
    by_type: "OrderedDict[str, dict]" = OrderedDict()
    problems: list[str] = []
    mismatched: list[dict] = []
    for tensor in source.tensors:
        tname = tensor.tensor_type.name
        stats = by_type.setdefault(tname, {"tensors": 0, "elements": 0, "mismatched_tensors": 0,
                                           "mismatched_values": 0, "max_abs_diff": 0.0})
        stats["tensors"] += 1
        stats["elements"] += int(tensor.n_elements)
        other = by_name.pop(tensor.name, None)
        if other is None:
            problems.append(f"{tensor.name}: missing from the candidate")
            stats["mismatched_tensors"] += 1
            continue
        if other.tensor_type != GGMLQuantizationType.F32:
            problems.append(f"{tensor.name}: candidate type {other.tensor_type.name}, expected F32")
            stats["mismatched_tensors"] += 1
            continue
        if list(map(int, other.shape)) != list(map(int, tensor.shape)):
            problems.append(f"{tensor.name}: candidate shape {list(map(int, other.shape))}, "
                            f"source {list(map(int, tensor.shape))}")
            stats["mismatched_tensors"] += 1
            continue
        expected = dequantize_tensor(tensor)
        actual = np.asarray(other.data).view(np.float32).reshape(-1)
        if expected.size != actual.size:
            problems.append(f"{tensor.name}: {actual.size} values, expected {expected.size}")
            stats["mismatched_tensors"] += 1
            continue
        differ = expected.view(np.uint32) != actual.view(np.uint32)
        count = int(np.count_nonzero(differ))
        if count:
            with np.errstate(invalid="ignore", over="ignore"):
                diff = np.abs(expected[differ].astype(np.float64) - actual[differ].astype(np.float64))
            max_diff = float(np.nanmax(diff)) if np.any(~np.isnan(diff)) else float("nan")
            first = int(np.flatnonzero(differ)[0])
            stats["mismatched_tensors"] += 1
            stats["mismatched_values"] += count
            stats["max_abs_diff"] = max(stats["max_abs_diff"], max_diff)
            mismatched.append({"tensor": tensor.name, "type": tname, "mismatched_values": count,
                               "elements": int(expected.size), "max_abs_diff": max_diff, "first_index": first,
                               "expected": float(expected[first]), "actual": float(actual[first])})
    extra = sorted(by_name)
    if extra:
        problems.append(f"candidate has {len(extra)} tensor(s) not in the source: {', '.join(extra[:5])}")

    ok = not problems and not mismatched
    summary = {"source": args.source, "candidate": args.candidate, "ok": ok,
               "tensors": len(source.tensors), "by_type": by_type, "problems": problems,
               "mismatched": mismatched}
    for tname, s in by_type.items():
        print(f"{tname:8s} {s['tensors']:4d} tensors {s['elements']:>12,d} values: "
              f"{s['mismatched_tensors']} tensors / {s['mismatched_values']:,d} values differ, "
              f"max |diff| {s['max_abs_diff']:.3g}")
    for p in problems[:10]:
        print("problem:", p)
    for m in mismatched[:10]:
        print(f"mismatch: {m['tensor']} ({m['type']}): {m['mismatched_values']:,d}/{m['elements']:,d} values, "
              f"max |diff| {m['max_abs_diff']:.3g}, first at {m['first_index']}: "
              f"expected {m['expected']!r}, got {m['actual']!r}")
    print("dequant_check:", "all tensors bit-exact" if ok else "MISMATCH")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(summary, out, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
