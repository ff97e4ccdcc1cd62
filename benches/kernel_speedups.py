#!/usr/bin/env python3
"""Tabulate the distance-kernel benchmark (benches/distance.rs) as markdown.

Reads criterion's results, target/criterion/<group>/<level>/new/, where the
group id is `<kernel>/<type>/<dim>` (criterion writes `/` as `_` in directory
names, so the ids are taken from each benchmark.json), and prints one row per
kernel, type and dimension: the mean ns/call at each level and the speedup of
the fastest non-scalar level over scalar.

Usage: python3 benches/kernel_speedups.py [CRITERION_DIR]
(default: $CARGO_TARGET_DIR/criterion, else target/criterion). Stdlib only.
"""

import json
import os
import sys
from pathlib import Path

LEVELS = ["scalar", "avx2", "avx512", "neon"]
KERNELS = ["l2_squared", "dot", "cosine_distance"]
TYPES = ["f32", "f16", "u8", "i8"]


def default_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        return Path(target) / "criterion"
    return Path(__file__).resolve().parent.parent / "target" / "criterion"


def load(root: Path) -> dict:
    """{(kernel, type, dim): {level: mean ns}} from every `new/` result."""
    results: dict = {}
    for bench_file in sorted(root.glob("*/*/new/benchmark.json")):
        meta = json.loads(bench_file.read_text())
        parts = meta.get("group_id", "").split("/")
        level = meta.get("function_id")
        if len(parts) != 3 or level not in LEVELS:
            continue  # not a distance-kernel benchmark
        kernel, elem, dim = parts
        estimates = json.loads((bench_file.parent / "estimates.json").read_text())
        ns = estimates["mean"]["point_estimate"]
        results.setdefault((kernel, elem, int(dim)), {})[level] = ns
    return results


def order(key: tuple) -> tuple:
    kernel, elem, dim = key
    k = KERNELS.index(kernel) if kernel in KERNELS else len(KERNELS)
    t = TYPES.index(elem) if elem in TYPES else len(TYPES)
    return (k, kernel, t, elem, dim)


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else default_dir()
    results = load(root)
    if not results:
        print(f"no distance-kernel results under {root}", file=sys.stderr)
        return 1
    levels = [l for l in LEVELS if any(l in r for r in results.values())]
    header = ["kernel", "type", "dim"] + [f"{l} ns" for l in levels] + ["best", "speedup"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|")
    for key in sorted(results, key=order):
        row = results[key]
        cells = [key[0], key[1], str(key[2])]
        cells += [f"{row[l]:.1f}" if l in row else "-" for l in levels]
        simd = {l: ns for l, ns in row.items() if l != "scalar"}
        if simd and "scalar" in row:
            best = min(simd, key=simd.get)
            cells += [best, f"{row['scalar'] / simd[best]:.1f}x"]
        else:
            cells += ["-", "-"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
