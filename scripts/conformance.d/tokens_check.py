#!/usr/bin/env python3
"""Compares token ids of one text file from llama-tokenize, Hugging Face tokenizers and lowbit.

    tokens_check.py --text FILE --llama LLAMA_OUT --hf tokenizer.json [--lowbit LOWBIT_JSON] [--expect N] [--json OUT]

LLAMA_OUT is what `llama-tokenize -f FILE --ids --log-disable` printed (a Python-style list of ids);
LOWBIT_JSON is what `lowbit tokenize --text FILE --json` printed ({"ids": [...], "pieces": [...]}), absent or
unreadable when lowbit could not tokenize. llama.cpp is the reference: every other tokenizer must give the same
ids, and llama.cpp's count must equal --expect. Prints the counts and the first mismatch; exit 0 when all agree.
"""
import argparse
import json
import re
import sys


def parse_llama(path: str) -> list[int]:
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    # The id list is the last [...] block; anything before it would be log lines.
    start = text.rfind("[")
    end = text.rfind("]")
    if start < 0 or end < start:
        raise ValueError(f"{path}: no [id, ...] list in llama-tokenize's output")
    body = text[start + 1:end].strip()
    if not body:
        return []
    if not re.fullmatch(r"[0-9,\s]+", body):
        raise ValueError(f"{path}: the id list holds something other than ids")
    return [int(x) for x in body.replace(",", " ").split()]


def first_mismatch(reference: list[int], other: list[int]) -> int:
    """Index of the first differing id, -1 when the lists are equal."""
    n = min(len(reference), len(other))
    for i in range(n):
        if reference[i] != other[i]:
            return i
    return -1 if len(reference) == len(other) else n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", required=True)
    parser.add_argument("--llama", required=True)
    parser.add_argument("--hf", required=True, help="tokenizer.json for the Hugging Face tokenizers library")
    parser.add_argument("--lowbit")
    parser.add_argument("--expect", type=int)
    parser.add_argument("--json")
    args = parser.parse_args()

    results: dict = {"text": args.text, "problems": []}
    reference = parse_llama(args.llama)
    results["llama.cpp"] = len(reference)
    if args.expect is not None and len(reference) != args.expect:
        results["problems"].append(f"llama.cpp gives {len(reference):,d} tokens, expected {args.expect:,d}")

    from tokenizers import Tokenizer  # imported late: only the venv has it
    with open(args.text, "rb") as f:
        text = f.read().decode("utf-8")  # bytes as they are: CRLF kept
    hf = Tokenizer.from_file(args.hf).encode(text, add_special_tokens=False).ids
    candidates = {"tokenizers": hf}

    if args.lowbit:
        try:
            with open(args.lowbit, encoding="utf-8") as f:
                candidates["lowbit"] = [int(x) for x in json.load(f)["ids"]]
        except Exception as error:  # noqa: BLE001 - report any unreadable output as a failure
            results["lowbit"] = None
            results["problems"].append(f"lowbit: no id list ({type(error).__name__}: {error})")

    for name, ids in candidates.items():
        results[name] = len(ids)
        at = first_mismatch(reference, ids)
        if at >= 0:
            lo = max(0, at - 2)
            results["problems"].append(
                f"{name} differs from llama.cpp at token {at:,d}: "
                f"llama.cpp {reference[lo:at + 3]} vs {name} {ids[lo:at + 3]} "
                f"({len(ids):,d} vs {len(reference):,d} tokens)")
    results["ok"] = not results["problems"] and "lowbit" in candidates
    if "lowbit" not in candidates and not args.lowbit:
        results["problems"].append("lowbit: not run")
    counts = ", ".join(f"{k} {results[k]:,d}" if isinstance(results.get(k), int) else f"{k} -"
                       for k in ("llama.cpp", "tokenizers", "lowbit"))
    print(f"{args.text}: {counts}")
    for p in results["problems"]:
        print("  " + p)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=1)
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
