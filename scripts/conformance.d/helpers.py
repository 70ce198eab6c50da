#!/usr/bin/env python3
"""Small parsers and the report renderer for scripts/conformance (run in build/peers/venv).

    helpers.py llama-ppl LOG                  -> "PPL STDERR" from llama-perplexity's output
    helpers.py llama-bench JSON PP TG         -> "PP_TS PP_SD TG_TS TG_SD" from `llama-bench -o json`
    helpers.py json FILE KEY[.KEY...]         -> one value of a JSON file
    helpers.py dequant-detail JSON            -> "Q4_1×210, F32×61: 0 values differ" style summary
    helpers.py types GGUF                     -> "Q4_1×210 F32×61 Q8_0×1" (tensor types in a GGUF file)
    helpers.py coverage TYPES JSON...         -> which of the comma-separated TYPES the dequant_check
                                                 summaries verified bit-exact; exit 1 unless all of them
    helpers.py render CHECKS.tsv SPEED.tsv REPORT.md TITLE [NOTE...]
                                              -> prints the tables, writes them as Markdown
"""
import json
import re
import sys
from collections import Counter


def llama_ppl(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = re.findall(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", text)
    if not m:
        raise SystemExit(f"{path}: no 'Final estimate: PPL = ...' line")
    return f"{m[-1][0]} {m[-1][1]}"


def llama_bench(path: str, prompt: int, gen: int) -> str:
    with open(path, encoding="utf-8") as f:
        runs = json.load(f)
    pp = [r for r in runs if int(r.get("n_prompt", -1)) == prompt and int(r.get("n_gen", -1)) == 0]
    tg = [r for r in runs if int(r.get("n_prompt", -1)) == 0 and int(r.get("n_gen", -1)) == gen]
    if not pp or not tg:
        raise SystemExit(f"{path}: no pp{prompt}/tg{gen} entries")
    return f"{pp[0]['avg_ts']:.2f} {pp[0]['stddev_ts']:.2f} {tg[0]['avg_ts']:.2f} {tg[0]['stddev_ts']:.2f}"


def json_get(path: str, key: str) -> str:
    with open(path, encoding="utf-8") as f:
        value = json.load(f)
    for part in key.split("."):
        value = value[part]
    return str(value)


def dequant_detail(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        s = json.load(f)
    types = ", ".join(f"{t}×{v['tensors']}" for t, v in s["by_type"].items())
    values = sum(v["mismatched_values"] for v in s["by_type"].values())
    bad = sum(v["mismatched_tensors"] for v in s["by_type"].values())
    if s["ok"]:
        return f"{types}: every value bit-exact"
    worst = max((v["max_abs_diff"] for v in s["by_type"].values()), default=0.0)
    detail = f"{types}: {bad} tensors, {values:,d} values differ (max |diff| {worst:.3g})"
    if s["mismatched"]:
        m = s["mismatched"][0]
        detail += f"; first {m['tensor']} ({m['type']})"
    if s["problems"]:
        detail += f"; {s['problems'][0]}"
    return detail


def types(path: str) -> str:
    from gguf import GGUFReader
    counts = Counter(t.tensor_type.name for t in GGUFReader(path).tensors)
    return " ".join(f"{k}×{v}" for k, v in counts.most_common())


def coverage(wanted: str, paths: list[str]) -> int:
    seen: dict[str, list[int]] = {}  # type -> [tensors checked, tensors that differ]
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                summary = json.load(f)
        except (OSError, ValueError):
            continue
        for tname, stats in summary["by_type"].items():
            entry = seen.setdefault(tname, [0, 0])
            entry[0] += stats["tensors"]
            entry[1] += stats["mismatched_tensors"]
    types = [t for t in wanted.split(",") if t]
    exact = [t for t in types if t in seen and seen[t][1] == 0]
    differ = [t for t in types if t in seen and seen[t][1] > 0]
    absent = [t for t in types if t not in seen]
    parts = [f"bit-exact: {', '.join(exact) or 'none'}"]
    if differ:
        parts.append(f"differ: {', '.join(differ)}")
    if absent:
        parts.append(f"not checked: {', '.join(absent)}")
    print(f"{len(exact)}/{len(types)} types; " + "; ".join(parts))
    return 0 if len(exact) == len(types) else 1


def read_tsv(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n").split("\t") for line in f if line.strip()]
    except FileNotFoundError:
        return []


def table(header: list[str], rows: list[list[str]]) -> tuple[str, str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    text = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
            "  ".join("-" * w for w in widths)]
    text += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    md = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(text), "\n".join(md)


def render(checks_path: str, speed_path: str, report_path: str, title: str, notes: list[str]) -> None:
    checks = read_tsv(checks_path)
    speed = read_tsv(speed_path)
    out_text = [title, ""]
    out_md = [f"# {title}", ""]
    for note in notes:
        out_text.append(note)
        out_md.append(f"- {note}")
    out_text.append("")
    out_md.append("")
    if checks:
        t, m = table(["group", "check", "result", "detail"], checks)
        out_text += [t, ""]
        out_md += ["## Checks", "", m, ""]
        failed = sum(1 for r in checks if r[2] == "FAIL")
        passed = sum(1 for r in checks if r[2] == "PASS")
        summary = f"{passed} passed, {failed} failed"
        out_text.append(summary)
        out_md += [summary, ""]
    if speed:
        header = ["weights", "file", "llama.cpp pp512 t/s", "lowbit prefill t/s", "ratio",
                  "llama.cpp tg128 t/s", "lowbit decode t/s", "ratio"]
        t, m = table(header, speed)
        out_text += ["", "Speed (report only; lowbit/llama.cpp > 1 means lowbit is faster)", t]
        out_md += ["## Speed (report only)", "", "lowbit/llama.cpp above 1 means lowbit is faster.", "", m, ""]
    print("\n".join(out_text))
    with open(report_path, "w", encoding="utf-8") as f:
        f.write("\n".join(out_md) + "\n")


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    command, args = argv[1], argv[2:]
    if command == "llama-ppl":
        print(llama_ppl(args[0]))
    elif command == "llama-bench":
        print(llama_bench(args[0], int(args[1]), int(args[2])))
    elif command == "json":
        print(json_get(args[0], args[1]))
    elif command == "dequant-detail":
        print(dequant_detail(args[0]))
    elif command == "types":
        print(types(args[0]))
    elif command == "coverage":
        sys.exit(coverage(args[0], args[1:]))
    elif command == "render":
        render(args[0], args[1], args[2], args[3], args[4:])
    else:
        raise SystemExit(f"helpers.py: unknown command {command!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
