#!/usr/bin/env python3
"""Independent check of `omen data synth` and `omen data gt` output.

Reads the big-ann-benchmarks files with numpy alone (header: int32 n, int32 d
little-endian, then n*d values; ground truth: int32 nq, int32 k, nq*k int32
ids, nq*k f32 distances), recomputes the exact k-NN by float64 brute force,
and compares:

- shapes and headers against the file sizes;
- distances rank by rank, within a relative tolerance (the Rust kernels sum
  in f32, numpy here in f64);
- ids rank by rank: at least --min-agreement of them must be identical, and
  every disagreement must be a tie (the two ids' true distances agree within
  the tolerance), since near-equal distances may swap order under rounding.

Usage:
  python3 tests/python/check_dataset.py --data DIR --gt DIR/gt.ibin --metric l2
  python3 tests/python/check_dataset.py --base B.u8bin --queries Q.u8bin --gt G --metric cos

Exit status 0 when every check passes, 1 otherwise.
"""

import argparse
import os
import sys
import time

import numpy as np

DTYPES = {".fbin": np.float32, ".f16bin": np.float16, ".u8bin": np.uint8, ".i8bin": np.int8}


def read_vectors(path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in DTYPES:
        sys.exit(f"{path}: unknown extension {ext!r}; expected one of {sorted(DTYPES)}")
    dtype = np.dtype(DTYPES[ext])
    header = np.fromfile(path, dtype="<i4", count=2)
    if header.size != 2:
        sys.exit(f"{path}: shorter than the 8-byte header")
    n, d = int(header[0]), int(header[1])
    expected = 8 + n * d * dtype.itemsize
    actual = os.path.getsize(path)
    check(n > 0 and d > 0, f"{path}: header n={n}, d={d} must be positive")
    check(actual == expected, f"{path}: {actual} bytes, header implies {expected}")
    data = np.fromfile(path, dtype=dtype.newbyteorder("<"), offset=8, count=n * d)
    return data.reshape(n, d)


def read_ground_truth(path):
    header = np.fromfile(path, dtype="<i4", count=2)
    nq, k = int(header[0]), int(header[1])
    expected = 8 + nq * k * 8
    actual = os.path.getsize(path)
    check(actual == expected, f"{path}: {actual} bytes, header nq={nq}, k={k} implies {expected}")
    ids = np.fromfile(path, dtype="<i4", offset=8, count=nq * k).reshape(nq, k)
    dist = np.fromfile(path, dtype="<f4", offset=8 + nq * k * 4, count=nq * k).reshape(nq, k)
    return ids, dist


FAILURES = []


def check(ok, message):
    if not ok:
        FAILURES.append(message)
        print(f"FAIL: {message}", file=sys.stderr)
    return ok


def distances(metric, q, base, base_sq, base_norm):
    """float64 distances of query block q (m × d) to every base row (m × n)."""
    dots = q @ base.T
    if metric == "l2":
        return np.maximum((q * q).sum(1)[:, None] - 2.0 * dots + base_sq[None, :], 0.0)
    if metric == "ip":
        return -dots
    qn = np.sqrt((q * q).sum(1))[:, None]
    denom = qn * base_norm[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(denom > 0, 1.0 - dots / denom, 1.0)
    return cos


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="directory with base.* and query.* from omen data synth")
    ap.add_argument("--base")
    ap.add_argument("--queries")
    ap.add_argument("--gt", required=True, help="ground-truth file from omen data gt")
    ap.add_argument("--metric", choices=["l2", "ip", "cos"], default="l2")
    ap.add_argument("--rtol", type=float, default=1e-4, help="relative distance tolerance")
    ap.add_argument("--min-agreement", type=float, default=0.999, help="fraction of identical ids")
    ap.add_argument("--block", type=int, default=64, help="queries per numpy block")
    args = ap.parse_args()

    if args.data:
        names = os.listdir(args.data)
        pick = lambda stem: next(
            (os.path.join(args.data, f) for f in sorted(names)
             if f.startswith(stem + ".") and os.path.splitext(f)[1] in DTYPES), None)
        args.base = args.base or pick("base")
        args.queries = args.queries or pick("query")
    if not args.base or not args.queries:
        sys.exit("give --data DIR or both --base and --queries")

    started = time.time()
    base = read_vectors(args.base)
    queries = read_vectors(args.queries)
    ids, gt_dist = read_ground_truth(args.gt)
    n, d = base.shape
    nq, k = ids.shape
    print(f"base {args.base}: {n} x {d} {base.dtype}; queries {args.queries}: {queries.shape[0]} x "
          f"{queries.shape[1]}; ground truth {args.gt}: {nq} x k={k}; metric {args.metric}")
    check(queries.shape[1] == d, f"query dimension {queries.shape[1]} != base dimension {d}")
    check(queries.shape[0] == nq, f"{queries.shape[0]} queries but ground truth for {nq}")
    check(k <= n, f"k={k} exceeds n={n}")
    check(bool(np.all((ids >= 0) & (ids < n))), "ids out of range")
    check(bool(np.all(np.isfinite(gt_dist))), "non-finite distances in the ground truth")
    if FAILURES:
        return 1

    b64 = base.astype(np.float64)
    base_sq = (b64 * b64).sum(1)
    base_norm = np.sqrt(base_sq)
    # Distances scale with the data; compare relative to a typical one.
    scale = max(float(np.abs(gt_dist).max()), 1e-12)
    atol = args.rtol * scale

    exact = 0
    ties = 0
    total = nq * k
    worst_dist = 0.0
    bad_ties = []
    for start in range(0, nq, args.block):
        q = queries[start:start + args.block].astype(np.float64)
        dist = distances(args.metric, q, b64, base_sq, base_norm)
        top = np.argpartition(dist, k - 1, axis=1)[:, :k]
        rows = np.arange(q.shape[0])[:, None]
        top_d = dist[rows, top]
        # Sort by (distance, id), the Rust tie-break.
        order = np.lexsort((top, top_d), axis=1)
        want_ids = np.take_along_axis(top, order, axis=1)
        want_d = np.take_along_axis(top_d, order, axis=1)

        got_ids = ids[start:start + q.shape[0]]
        got_d = gt_dist[start:start + q.shape[0]].astype(np.float64)
        worst_dist = max(worst_dist, float(np.abs(got_d - want_d).max()))
        same = got_ids == want_ids
        exact += int(same.sum())
        # A differing id must be as close as the one numpy put at that rank.
        true_of_got = dist[rows, got_ids]
        tie = np.abs(true_of_got - want_d) <= atol
        ties += int((~same & tie).sum())
        for qi, r in zip(*np.nonzero(~same & ~tie)):
            bad_ties.append((start + qi, r, int(got_ids[qi, r]), int(want_ids[qi, r]),
                             float(true_of_got[qi, r]), float(want_d[qi, r])))

    agreement = exact / total
    print(f"ids identical at {exact}/{total} ranks ({agreement:.5%}); {ties} differ only by ties")
    print(f"largest |distance - numpy float64| = {worst_dist:.3g} (tolerance {atol:.3g})")
    check(worst_dist <= atol, f"distances differ by {worst_dist:.3g} > {atol:.3g}")
    check(agreement >= args.min_agreement,
          f"id agreement {agreement:.5%} below {args.min_agreement:.3%}")
    for q, r, got, want, dg, dw in bad_ties[:10]:
        check(False, f"query {q}, rank {r}: id {got} (distance {dg:.6g}) but numpy has id {want} "
                     f"(distance {dw:.6g}); not a tie")
    print(f"checked in {time.time() - started:.1f} s")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
