#!/usr/bin/env python3
"""Peer comparison: OmenDB against hnswlib, faiss HNSW, usearch, DiskANN and LanceDB.

Usage (normally through run.sh, which makes the virtualenv first):

    compare.py run --data DIR [--systems omendb,hnswlib,faiss-hnsw,usearch,diskann,lancedb] [--metric l2|cos]
                   [--work /tmp/omen-compare/NAME] [--out benches/compare/results/NAME]

DIR is a dataset made by `omen data synth` + `omen data gt`: base.fbin,
query.fbin and gt.ibin (big-ann-benchmarks layout, ground truth k >= 10).

For every system this script
  1. builds an index in a child process (all build threads, --build-threads)
     and records its wall seconds, peak RSS and the bytes of its files;
  2. searches it in another child process with ONE search thread, over a
     sweep of the system's search-list knob, --passes times, round-robin over
     the systems (noise on a shared machine then hits every system alike;
     the best QPS of the passes is kept per setting, recall is deterministic
     for every system here);
  3. records the child's peak RSS (os.wait4), and for Python peers also the
     peak RSS of a child that only imports the library and loads the queries
     (the interpreter's share, which OmenDB's Rust binary does not pay).

Before each search child it tries `sync; echo 3 > /proc/sys/vm/drop_caches`
and records whether that worked. OmenDB and DiskANN read the index with
O_DIRECT, so the page cache does not serve their reads either way; hnswlib,
faiss and usearch load their whole index into RAM before searching. LanceDB
reads through the page cache, so its search child evicts the table's files
from it (posix_fadvise DONTNEED) before every timed batch: what LanceDB
caches in its own memory (its IVF partitions of PQ codes, like DiskANN's PQ
table) stays, and the full vectors that its refine step reads come from the
disk, as OmenDB's and DiskANN's do.

Outputs under --out: results.json (every measured point and the machine),
table.md (the side-by-side table) and recall_qps.png.

The worker modes (`_build`, `_search`, `_baseline`) are this script's own
children; they print one JSON object on their last stdout line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
K = 10
TARGETS = (0.90, 0.95, 0.99)
ALL_SYSTEMS = ("omendb", "hnswlib", "faiss-hnsw", "usearch", "diskann", "lancedb")

# Build settings, chosen to be comparable rather than to favour anyone:
# graph degree 64 at the base layer everywhere (Vamana R = 64; HNSW M = 32,
# whose level 0 holds 2M = 64 links), build candidate list 100, alpha 1.2
# for both Vamana builds (OmenDB's and DiskANN's defaults). `--R` changes
# the degree of both Vamana builds together.
R, L_BUILD = 64, 100
HNSW_M = R // 2

# Search-list sweeps (ef / efSearch / expansion_search / DiskANN L).
_COMMON = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768]
SWEEPS = {
    "omendb": _COMMON,
    "hnswlib": _COMMON + [1024],
    "faiss-hnsw": _COMMON + [1024],
    "usearch": _COMMON + [1024],
    "diskann": _COMMON,
    # IVF partitions probed, of about sqrt(n) (1,000 at 1M).
    "lancedb": [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256],
}
# LanceDB's IVF_PQ reranks refine_factor * k candidates with the full
# vectors; 10 sits between the 5 and 20 tried at 200K x 128 (recall 0.929 and
# 0.940 at 16 probes, 0.982 and 0.9945 at 64).
LANCE_REFINE = 10
# Per-setting repetition of the query batch in the Python peers' search
# children (see worker_search). OmenDB's slowest-to-fastest batches at these
# sizes already last longer than MIN_SECONDS, so one batch per pass there.
MIN_SECONDS = 0.5
MAX_REPEATS = 20

# Each system's name for the two metrics `omen data gt` makes ground truth
# for. faiss has no cosine HNSW, and diskannpy 0.7.0's StaticDiskIndex
# refuses cosine ("Cosine is currently not supported"): both get vectors
# that this script scales to unit length first (UNIT_FOR_COS, unit_rows),
# which ranks exactly as cosine does, under inner product and l2.
METRIC_NAMES = {
    "omendb": {"l2": "l2", "cos": "cos"},
    "hnswlib": {"l2": "l2", "cos": "cosine"},
    "faiss-hnsw": {"l2": "l2", "cos": "ip"},
    "usearch": {"l2": "l2sq", "cos": "cos"},
    "diskann": {"l2": "l2", "cos": "l2"},
    "lancedb": {"l2": "l2", "cos": "cosine"},
}
UNIT_FOR_COS = ("faiss-hnsw", "diskann")

KNOB = {
    "omendb": "ef",
    "hnswlib": "ef",
    "faiss-hnsw": "efSearch",
    "usearch": "expansion_search",
    "diskann": "L",
    "lancedb": "nprobes",
}


# --------------------------------------------------------------------------
# Files


def read_vectors(path: Path):
    import numpy as np

    with open(path, "rb") as f:
        n, d = (int(v) for v in np.fromfile(f, dtype=np.int32, count=2))
        x = np.fromfile(f, dtype=np.float32, count=n * d)
    if x.size != n * d:
        raise SystemExit(f"{path}: truncated: header says {n} x {d}")
    return x.reshape(n, d)


def read_gt(path: Path):
    import numpy as np

    with open(path, "rb") as f:
        nq, k = (int(v) for v in np.fromfile(f, dtype=np.int32, count=2))
        ids = np.fromfile(f, dtype=np.int32, count=nq * k)
    return ids.reshape(nq, k)


def unit_rows(x):
    import numpy as np

    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms == 0, 1, norms), dtype=np.float32)


def recall_at_k(found, gt, k: int = K) -> float:
    hits = 0
    for f, g in zip(found, gt):
        hits += len(set(int(i) for i in f[:k]) & set(int(i) for i in g[:k]))
    return hits / (len(gt) * k)


def diskann_search_bytes(index: Path) -> int:
    return sum(p.stat().st_size for p in index.iterdir() if p.is_file() and not p.name.endswith("_mem.index.data"))


def dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------
# Workers (run in child processes)


def lance_sub_vectors(dim: int, pq_bytes: int) -> int:
    """LanceDB's PQ needs num_sub_vectors to divide the dimension: the
    largest divisor of dim that is at most pq_bytes (32 at 128-d for 44 B,
    96 at 384-d for 109 B), so its codes take no more RAM than DiskANN's."""
    return max(m for m in range(1, min(dim, max(pq_bytes, 1)) + 1) if dim % m == 0)


def evict_from_page_cache(directory: Path) -> None:
    """Drops the clean cached pages of every file under directory, so that
    the next reads of a page-cache reader (LanceDB) go to the disk."""
    for p in directory.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def diskann_search_budget_gb(n: int, pq_bytes: int) -> float:
    # DiskANN sizes its in-RAM PQ code as floor(search_memory_maximum /
    # points) bytes (when the budget is under its 1.25 GB caching
    # threshold); ask for pq_bytes + 0.5 per vector so floor() lands on it.
    return (pq_bytes + 0.5) * n / 2**30


def worker_build(a) -> dict:
    import numpy as np

    data = Path(a.data)
    index = Path(a.index)
    started = time.perf_counter()
    info = {}
    metric = METRIC_NAMES[a.system][a.metric]
    if a.system == "diskann":
        import diskannpy

        index.mkdir(parents=True, exist_ok=True)
        base = data / "base.fbin"
        n, d = (int(v) for v in np.fromfile(base, dtype=np.int32, count=2))
        if a.metric == "cos":
            # The unit-length copy is part of the build and counts in its time.
            base = index / "base_unit.fbin"
            with open(base, "wb") as f:
                np.array([n, d], dtype=np.int32).tofile(f)
                unit_rows(read_vectors(data / "base.fbin")).tofile(f)
        budget = diskann_search_budget_gb(n, a.pq_bytes)
        diskannpy.build_disk_index(
            data=str(base),
            distance_metric=metric,
            index_directory=str(index),
            complexity=L_BUILD,
            graph_degree=a.R,
            search_memory_maximum=budget,
            build_memory_maximum=a.build_memory_gb,
            num_threads=a.threads,
            pq_disk_bytes=0,
            vector_dtype=np.float32,
        )
        if base.parent == index:
            base.unlink()
        info = {"search_memory_maximum_gb": budget, "build_memory_maximum_gb": a.build_memory_gb}
    elif a.system == "lancedb":
        import lancedb
        import pyarrow as pa
        from lancedb.index import IvfPq

        x = read_vectors(data / "base.fbin")
        n, d = x.shape
        db = lancedb.connect(str(index))
        rows = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), type=pa.float32()), d)
        del x
        tbl = db.create_table("vectors", pa.table({"id": pa.array(range(n), type=pa.int64()), "vector": rows}))
        # LanceDB's own default partition count (sqrt(n)); its default PQ
        # (d / 16 bytes) would give it less RAM than the others, so its
        # codes get --pq-bytes as DiskANN's do.
        partitions, sub = max(1, round(math.sqrt(n))), lance_sub_vectors(d, a.pq_bytes)
        tbl.create_index("vector", config=IvfPq(distance_type=metric, num_partitions=partitions, num_sub_vectors=sub))
        info = {"lance_partitions": partitions, "lance_sub_vectors": sub, "lance_refine_factor": LANCE_REFINE}
    else:
        x = read_vectors(data / "base.fbin")
        n, d = x.shape
        if a.system == "hnswlib":
            import hnswlib

            idx = hnswlib.Index(space=metric, dim=d)
            idx.init_index(max_elements=n, M=HNSW_M, ef_construction=a.hnsw_efc, random_seed=42)
            idx.add_items(x, np.arange(n), num_threads=a.threads)
            idx.save_index(str(index))
        elif a.system == "faiss-hnsw":
            import faiss

            faiss.omp_set_num_threads(a.threads)
            if a.metric == "cos":
                idx = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
                x = unit_rows(x)
            else:
                idx = faiss.IndexHNSWFlat(d, HNSW_M)
            idx.hnsw.efConstruction = a.hnsw_efc
            idx.add(x)
            faiss.write_index(idx, str(index))
        elif a.system == "usearch":
            from usearch.index import Index

            idx = Index(ndim=d, metric=metric, dtype="f32", connectivity=HNSW_M, expansion_add=a.hnsw_efc)
            idx.add(np.arange(n, dtype=np.uint64), x, threads=a.threads)
            idx.save(str(index))
        else:
            raise SystemExit(f"unknown system {a.system}")
    return {"build_s": time.perf_counter() - started, **info}


def worker_search(a) -> dict:
    import numpy as np

    if a.system == "lancedb":
        # One thread for LanceDB's compute pool, as every system here gets
        # one search thread (its I/O pool keeps its default size: it only
        # waits on reads). Set before lancedb starts its runtime.
        os.environ["LANCE_CPU_THREADS"] = "1"

    data = Path(a.data)
    q = read_vectors(data / "query.fbin")
    gt = read_gt(data / "gt.ibin")
    nq, d = q.shape
    sweep = [int(v) for v in a.sweep.split(",")]
    metric = METRIC_NAMES[a.system][a.metric]
    if a.system in UNIT_FOR_COS and a.metric == "cos":
        q = unit_rows(q)
    t0 = time.perf_counter()
    if a.system == "hnswlib":
        import hnswlib

        idx = hnswlib.Index(space=metric, dim=d)
        idx.load_index(a.index)

        def search(v):
            idx.set_ef(v)
            return idx.knn_query(q, k=K, num_threads=1)[0]

    elif a.system == "faiss-hnsw":
        import faiss

        faiss.omp_set_num_threads(1)
        idx = faiss.read_index(a.index)

        def search(v):
            idx.hnsw.efSearch = v
            return idx.search(q, K)[1]

    elif a.system == "usearch":
        from usearch.index import Index

        idx = Index.restore(a.index)

        def search(v):
            idx.expansion_search = v
            return idx.search(q, K, threads=1).keys

    elif a.system == "diskann":
        import diskannpy

        # num_threads=2 only sizes the pool of per-thread scratch/IO contexts;
        # the searches below still run on one thread (batch_search
        # num_threads=1). With num_threads=1, diskannpy 0.7.0 hangs while
        # loading: use_medoids_data_as_centroids() waits forever for a free
        # scratch context (seen here, 2026-11-21).
        idx = diskannpy.StaticDiskIndex(
            index_directory=a.index,
            num_threads=2,
            num_nodes_to_cache=0,
            distance_metric=metric,
            vector_dtype=np.float32,
            dimensions=d,
        )

        def search(v):
            return idx.batch_search(q, K, complexity=v, num_threads=1, beam_width=a.beam).identifiers

    elif a.system == "lancedb":
        import lancedb

        tbl = lancedb.connect(a.index).open_table("vectors")

        def search(v):
            # One query at a time, as the other systems run them.
            evict_from_page_cache(Path(a.index))
            return [
                tbl.search(row)
                .distance_type(metric)
                .nprobes(v)
                .refine_factor(LANCE_REFINE)
                .limit(K)
                .select(["id", "_distance"])
                .to_arrow()["id"]
                .to_numpy()
                for row in q
            ]

    else:
        raise SystemExit(f"unknown system {a.system}")
    load_s = time.perf_counter() - t0
    cpu0 = os.times()
    points = []
    for v in sweep:
        # Repeat the whole query batch until MIN_SECONDS have passed (at most
        # MAX_REPEATS times) and keep the fastest batch: a 1000-query batch of
        # an in-RAM index lasts tens of ms, which one scheduler hiccup on a
        # shared machine can double. Slow settings run once.
        best, spent, reps = float("inf"), 0.0, 0
        while reps < MAX_REPEATS and (reps == 0 or spent < MIN_SECONDS):
            t = time.perf_counter()
            ids = search(v)
            wall = time.perf_counter() - t
            best, spent, reps = min(best, wall), spent + wall, reps + 1
        points.append({"param": v, "recall": recall_at_k(ids, gt), "qps": nq / best, "repeats": reps})
    cpu1 = os.times()
    # Process CPU seconds per wall second over the sweep: 1.0 or less for a
    # single-threaded search; more means helper threads did work too.
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"load_s": load_s, "points": points, "cpu_per_wall": busy / max(cpu1.elapsed - cpu0.elapsed, 1e-9)}


def worker_baseline(a) -> dict:
    # What a search child costs before it opens an index: the interpreter,
    # numpy, the library and the queries.
    data = Path(a.data)
    read_vectors(data / "query.fbin")
    read_gt(data / "gt.ibin")
    mod = {"hnswlib": "hnswlib", "faiss-hnsw": "faiss", "usearch": "usearch.index", "diskann": "diskannpy", "lancedb": "lancedb"}
    __import__(mod[a.system])
    return {}


# --------------------------------------------------------------------------
# Orchestration


def run_child(cmd: list[str], log: Path) -> tuple[str, float, int, int]:
    """Runs cmd; returns (stdout, wall seconds, peak RSS bytes, exit code)."""
    started = time.perf_counter()
    with open(log, "ab") as err:
        err.write(("\n$ " + " ".join(cmd) + "\n").encode())
        err.flush()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        out = p.stdout.read()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return out.decode(errors="replace"), wall, usage.ru_maxrss * 1024, p.returncode


def last_json(out: str) -> dict:
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON in output: {out[-500:]!r}")


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "mem_bytes": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    out = {}
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("numpy", "hnswlib", "faiss-cpu", "usearch", "diskannpy", "lancedb", "pyarrow", "matplotlib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def git_state() -> dict:
    def git(*args):
        try:
            return subprocess.run(
                ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {"commit": git("rev-parse", "HEAD"), "dirty": git("status", "--short", "engine", "format")}


def build_system(sys_name: str, a, work: Path, log: Path) -> dict:
    data = Path(a.data)
    if sys_name == "omendb":
        index = work / "omendb" / "index.omen"
        index.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(Path(a.omen_bin) / "omen-build"),
            "--quiet",
            "--input", str(data / "base.fbin"),
            "--metric", a.metric,
            "--out", str(index),
            "--R", str(a.R),
            "--L", str(L_BUILD),
            "--memory-budget", f"{a.build_memory_gb}GiB",
            "--threads", str(a.build_threads),
        ] + (["--code", a.omen_code] if a.omen_code else [])
        out, wall, rss, rc = run_child(cmd, log)
        if rc != 0:
            raise RuntimeError(f"omen-build failed ({rc}); see {log}")
        ram = re.search(r"RAM\s+([\d.]+) bytes per vector", out)
        return {
            "index": str(index),
            "build_s": wall,
            "build_rss": rss,
            "index_bytes": dir_bytes(index),
            "ram_bytes_per_vector": float(ram.group(1)) if ram else None,
            "build_report": out.strip(),
        }
    index = work / sys_name / ("index" if sys_name in ("diskann", "lancedb") else "index.bin")
    if index.exists():
        shutil.rmtree(index) if index.is_dir() else index.unlink()
    index.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, __file__, "_build", sys_name,
        "--data", str(data),
        "--index", str(index),
        "--threads", str(a.build_threads),
        "--pq-bytes", str(a.pq_bytes),
        "--build-memory-gb", str(a.build_memory_gb),
        "--hnsw-efc", str(a.hnsw_efc),
        "--metric", a.metric,
        "--R", str(a.R),
    ]
    out, wall, rss, rc = run_child(cmd, log)
    if rc != 0:
        raise RuntimeError(f"{sys_name} build failed ({rc}); see {log}")
    res = last_json(out)
    info = {
        "index": str(index),
        "build_s": res.pop("build_s"),
        "build_process_s": wall,
        "build_rss": rss,
        "index_bytes": dir_bytes(index),
        **res,
    }
    if sys_name == "diskann":
        # diskannpy leaves the in-memory build's copy of the vectors
        # (ann_mem.index.data) beside the index; searches never open it.
        info["index_bytes_with_leftovers"] = info["index_bytes"]
        info["index_bytes"] = diskann_search_bytes(index)
    if sys_name == "diskann":
        pq = index / "ann_pq_compressed.bin"
        if pq.exists():
            import numpy as np

            n, chunks = (int(v) for v in np.fromfile(pq, dtype=np.int32, count=2))
            info["ram_bytes_per_vector"] = float(chunks)
    if sys_name == "lancedb":
        import numpy as np

        # What LanceDB caches to search: its IVF_PQ index files (centroids,
        # PQ codes and row ids), measured rather than derived.
        n = int(np.fromfile(data / "base.fbin", dtype=np.int32, count=1)[0])
        info["ram_bytes_per_vector"] = sum(dir_bytes(p) for p in index.rglob("_indices")) / n
    return info


def peer_beam(a) -> int:
    """DiskANN's beam_width: --peer-beam, else the same as OmenDB's."""
    return a.peer_beam if a.peer_beam is not None else a.beam


def search_system(sys_name: str, info: dict, a, log: Path) -> dict:
    data = Path(a.data)
    sweep = SWEEPS[sys_name]
    dropped = drop_caches() if a.drop_caches else False
    load_before = os.getloadavg()[0]
    if sys_name == "omendb":
        cmd = [
            str(Path(a.omen_bin) / "omen"),
            "bench", "--json",
            "--segment", info["index"],
            "--queries", str(data / "query.fbin"),
            "--gt", str(data / "gt.ibin"),
            "--k", str(K),
            "--threads", "1",
            "--beam", str(a.beam),
            "--io-wait", a.omen_io_wait,
            "--sweep", "ef=" + ",".join(map(str, sweep)),
        ]
        out, wall, rss, rc = run_child(cmd, log)
        if rc != 0:
            raise RuntimeError(f"omen bench failed ({rc}); see {log}")
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        points = [
            {
                "param": r["ef"],
                "recall": r["recall"],
                "qps": r["qps"],
                "reads_per_query": r["reads_per_query"],
                "io": r["io"],
            }
            for r in rows
        ]
        res = {"points": points, "load_s": None}
    else:
        cmd = [
            sys.executable, __file__, "_search", sys_name,
            "--data", str(data),
            "--index", info["index"],
            "--sweep", ",".join(map(str, sweep)),
            "--beam", str(peer_beam(a)),
            "--metric", a.metric,
        ]
        out, wall, rss, rc = run_child(cmd, log)
        if rc != 0:
            raise RuntimeError(f"{sys_name} search failed ({rc}); see {log}")
        res = last_json(out)
    return {
        "points": res["points"],
        "load_s": res.get("load_s"),
        "cpu_per_wall": res.get("cpu_per_wall"),
        "search_rss": rss,
        "search_process_s": wall,
        "dropped_caches": dropped,
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg()[0],
    }


def baseline_rss(sys_name: str, a, log: Path) -> int | None:
    if sys_name == "omendb":
        return None
    cmd = [sys.executable, __file__, "_baseline", sys_name, "--data", str(a.data)]
    _, _, rss, rc = run_child(cmd, log)
    return rss if rc == 0 else None


def merge_passes(passes: list[list[dict]]) -> list[dict]:
    """Best QPS per setting over the passes (recall is the same in each)."""
    best: dict[int, dict] = {}
    for points in passes:
        for p in points:
            cur = best.get(p["param"])
            if cur is None or p["qps"] > cur["qps"]:
                best[p["param"]] = {**p, "qps_passes": (cur or {}).get("qps_passes", []) + [p["qps"]]}
            else:
                cur["qps_passes"].append(p["qps"])
    return [best[k] for k in sorted(best)]


def qps_at(points: list[dict], target: float) -> tuple[float | None, str]:
    """QPS at a recall target on the Pareto frontier of the sweep.

    Interpolates log(QPS) linearly in recall between the two frontier points
    around the target. Returns (None, "not reached") above the best recall,
    and (QPS of the fastest point, ">=") when every point is above the
    target (the sweep did not go low enough; the true value is larger)."""
    frontier, best = [], -1.0
    for p in sorted(points, key=lambda p: (-p["recall"], -p["qps"])):
        if p["qps"] > best:
            frontier.append(p)
            best = p["qps"]
    frontier.reverse()
    if not frontier or frontier[-1]["recall"] < target:
        return None, "not reached"
    if frontier[0]["recall"] >= target:
        return frontier[0]["qps"], ">="
    for lo, hi in zip(frontier, frontier[1:]):
        if lo["recall"] < target <= hi["recall"]:
            t = (target - lo["recall"]) / (hi["recall"] - lo["recall"])
            return math.exp(math.log(lo["qps"]) + t * (math.log(hi["qps"]) - math.log(lo["qps"]))), ""
    return None, "not reached"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024
    return ""


def fmt_qps(v: float | None, flag: str) -> str:
    if v is None:
        return flag
    return (f"≥ {v:,.0f}" if flag == ">=" else f"{v:,.0f}")


LABELS = {
    "omendb": "OmenDB (disk, O_DIRECT)",
    "hnswlib": "hnswlib (RAM)",
    "faiss-hnsw": "faiss HNSWFlat (RAM)",
    "usearch": "usearch f32 (RAM)",
    "diskann": "DiskANN (disk, O_DIRECT)",
    "lancedb": "LanceDB IVF_PQ (disk, page cache evicted)",
}


def config_text(s: str, st: dict) -> str:
    if s == "omendb":
        code = "omen-build's default" if st["omen_code"] == "default" else st["omen_code"]
        wait = {"sleep": "sleeping", "spin": "spinning"}[st.get("omen_io_wait", "sleep")]
        return f"Vamana R={st['R']} L={st['L_build']}, code {code}, beam {st['beam']}, {wait} waits; ef swept"
    if s == "diskann":
        return (
            f"Vamana R={st['R']} L={st['L_build']}, PQ {st['diskann_pq_bytes']} B in RAM, full vectors on disk, "
            f"beam {st.get('peer_beam', st['beam'])}, 0 cached nodes; L swept"
        )
    if s == "lancedb":
        return (
            f"IVF_PQ, about sqrt(n) partitions, PQ of at most {st['diskann_pq_bytes']} B, "
            f"refine factor {st.get('lance_refine_factor', LANCE_REFINE)}; nprobes swept"
        )
    if s in ("hnswlib", "faiss-hnsw", "usearch"):
        return f"HNSW M={st['hnsw_M']} efC={st.get('hnsw_ef_construction', st['L_build'])}, f32; {KNOB[s]} swept"
    return ""


def write_table(results: dict, out: Path) -> str:
    systems = results["systems"]
    lines = []
    head = (
        "| system | index | build s | index on disk | search peak RSS | RAM B/vector | "
        + " | ".join(f"QPS @ {t:.2f}" for t in TARGETS)
        + " | best recall |"
    )
    lines.append(head)
    lines.append("|" + "---|" * 6 + "---:|" * len(TARGETS) + "---:|")
    at = {}
    for s, r in systems.items():
        if "error" in r:
            lines.append(f"| {LABELS.get(s, s)} | failed: {r['error']} |" + " |" * (5 + len(TARGETS)))
            continue
        at[s] = {t: qps_at(r["points"], t) for t in TARGETS}
        rss = fmt_bytes(r["search_rss"])
        if r.get("baseline_rss"):
            rss += f" ({fmt_bytes(r['baseline_rss'])} before loading)"
        ram = r.get("ram_bytes_per_vector")
        lines.append(
            f"| {LABELS.get(s, s)} | {config_text(s, results['settings'])} | {r['build_s']:.1f} | {fmt_bytes(r['index_bytes'])} | {rss} | "
            + (f"{ram:.1f}" if ram else "all")
            + " | "
            + " | ".join(fmt_qps(*at[s][t]) for t in TARGETS)
            + f" | {max(p['recall'] for p in r['points']):.4f} |"
        )
    ratio = []
    if "omendb" in at:
        ratio.append("| OmenDB QPS ÷ peer QPS | " + " | ".join(f"@ {t:.2f}" for t in TARGETS) + " |")
        ratio.append("|---|" + "---:|" * len(TARGETS))
        for s in at:
            if s == "omendb":
                continue
            cells = []
            for t in TARGETS:
                (o, of), (p, pf) = at["omendb"][t], at[s][t]
                if o is None and p is None:
                    cells.append("neither reached")
                elif o is None:
                    cells.append("OmenDB not reached")
                elif p is None:
                    cells.append("peer not reached")
                else:
                    approx = "~" if (of or pf) else ""
                    cells.append(f"{approx}{o / p:.2f}x")
            ratio.append(f"| {LABELS.get(s, s)} | " + " | ".join(cells) + " |")
    sweeps = ["| system | knob | setting: recall@10 / QPS |", "|---|---|---|"]
    for s, r in systems.items():
        if "error" in r:
            continue
        cells = ", ".join(f"{p['param']}: {p['recall']:.3f} / {p['qps']:,.0f}" for p in r["points"])
        sweeps.append(f"| {LABELS.get(s, s)} | {KNOB[s]} | {cells} |")
    text = "\n".join(lines) + "\n\n" + "\n".join(ratio) + "\n\nEvery sweep point (best QPS of the passes):\n\n" + "\n".join(sweeps) + "\n"
    (out / "table.md").write_text(text)
    return text


def plot(results: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6), dpi=100)
    markers = {"omendb": "o", "hnswlib": "s", "faiss-hnsw": "^", "usearch": "v", "diskann": "D", "lancedb": "P"}
    for s, r in results["systems"].items():
        if "error" in r:
            continue
        pts = sorted(r["points"], key=lambda p: p["param"])
        ax.plot(
            [p["recall"] for p in pts],
            [p["qps"] for p in pts],
            marker=markers.get(s, "o"),
            markersize=4,
            linewidth=2 if s == "omendb" else 1.3,
            label=LABELS.get(s, s),
        )
    for t in TARGETS:
        ax.axvline(t, color="grey", linewidth=0.6, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second, 1 search thread (log scale)")
    ds = results["dataset"]
    ax.set_title(f"{ds['n']:,} x {ds['dim']} {results['settings'].get('metric', 'l2')} synthetic, {ds['nq']} queries, {results['date']}")
    lo = min(p["recall"] for r in results["systems"].values() if "error" not in r for p in r["points"])
    ax.set_xlim(max(lo - 0.02, 0.0), 1.002)
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(loc="lower left", fontsize=9)
    fig.tight_layout()
    path = out / "recall_qps.png"
    fig.savefig(path)
    return path


def cmd_run(a) -> None:
    data = Path(a.data).resolve()
    a.data = str(data)
    for f in ("base.fbin", "query.fbin", "gt.ibin"):
        if not (data / f).is_file():
            raise SystemExit(f"{data / f}: missing (make it with omen data synth / omen data gt)")
    name = a.name or data.name
    work = Path(a.work or f"/tmp/omen-compare/{name}").resolve()
    out = Path(a.out or HERE / "results" / name).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    log.write_text("")
    systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    for s in systems:
        if s not in ALL_SYSTEMS:
            raise SystemExit(f"unknown system {s!r}; choose from {', '.join(ALL_SYSTEMS)}")

    import numpy as np

    n, dim = (int(v) for v in np.fromfile(data / "base.fbin", dtype=np.int32, count=2))
    nq, _ = (int(v) for v in np.fromfile(data / "query.fbin", dtype=np.int32, count=2))
    gk = int(np.fromfile(data / "gt.ibin", dtype=np.int32, count=2)[1])
    if gk < K:
        raise SystemExit(f"{data / 'gt.ibin'}: k = {gk} < {K}")
    results = {
        "date": a.date or dt.date.today().isoformat(),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "dataset": {"path": str(data), "n": n, "dim": dim, "nq": nq, "gt_k": gk},
        "machine": machine(),
        "versions": versions(),
        "omendb_git": git_state(),
        "omen_bin": str(Path(a.omen_bin).resolve()),
        "settings": {
            "k": K, "R": a.R, "L_build": L_BUILD, "hnsw_M": HNSW_M, "beam": a.beam, "peer_beam": peer_beam(a),
            "diskann_pq_bytes": a.pq_bytes, "build_threads": a.build_threads,
            "search_threads": 1, "passes": a.passes, "build_memory_gb": a.build_memory_gb,
            "omen_code": a.omen_code or "default", "omen_io_wait": a.omen_io_wait,
            "hnsw_ef_construction": a.hnsw_efc,
            "metric": a.metric, "lance_refine_factor": LANCE_REFINE,
        },
        "systems": {},
    }

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    built = {}
    for s in systems:
        saved = work / s / "build.json"
        if a.reuse and saved.is_file():
            built[s] = json.loads(saved.read_text())
            say(f"reuse {s}: {built[s]['index']} (built in {built[s]['build_s']:.1f} s)")
            continue
        say(f"build {s} ...")
        try:
            built[s] = build_system(s, a, work, log)
            saved.write_text(json.dumps(built[s]))
            say(f"  {built[s]['build_s']:.1f} s, {fmt_bytes(built[s]['index_bytes'])} on disk, "
                f"peak RSS {fmt_bytes(built[s]['build_rss'])}")
        except Exception as e:  # record and go on with the others
            say(f"  FAILED: {e}")
            results["systems"][s] = {"error": str(e)}
    passes: dict[str, list] = {s: [] for s in built}
    runs: dict[str, list] = {s: [] for s in built}
    for i in range(a.passes):
        for s in list(built):
            say(f"search {s} (pass {i + 1}/{a.passes}) ...")
            try:
                r = search_system(s, built[s], a, log)
            except Exception as e:
                say(f"  FAILED: {e}")
                results["systems"][s] = {"error": str(e)}
                del built[s]
                continue
            passes[s].append(r["points"])
            runs[s].append({k: v for k, v in r.items() if k != "points"})
            best = max(r["points"], key=lambda p: p["recall"])
            say(f"  peak RSS {fmt_bytes(r['search_rss'])}, best recall {best['recall']:.4f}, "
                f"caches dropped: {r['dropped_caches']}, load {r['load_avg_before']:.1f}->{r['load_avg_after']:.1f}")
    for s in built:
        results["systems"][s] = {
            **built[s],
            "points": merge_passes(passes[s]),
            "search_rss": max(r["search_rss"] for r in runs[s]),
            "runs": runs[s],
            "baseline_rss": baseline_rss(s, a, log),
        }
    # Keep the requested order.
    results["systems"] = {s: results["systems"][s] for s in systems if s in results["systems"]}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    table = write_table(results, out)
    png = plot(results, out)
    print()
    print(table)
    say(f"wrote {out / 'results.json'}, {out / 'table.md'}, {png}")


def cmd_render(a) -> None:
    """Re-draws table.md and recall_qps.png from an earlier results.json."""
    out = Path(a.out)
    results = json.loads((out / "results.json").read_text())
    for s, r in results["systems"].items():
        if s == "diskann" and "index" in r and Path(r["index"]).is_dir():
            r.setdefault("index_bytes_with_leftovers", r["index_bytes"])
            r["index_bytes"] = diskann_search_bytes(Path(r["index"]))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(write_table(results, out))
    plot(results, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="build, search and tabulate every system")
    r.add_argument("--data", required=True, help="dir with base.fbin, query.fbin, gt.ibin")
    r.add_argument("--systems", default=",".join(ALL_SYSTEMS))
    r.add_argument("--work", help="where indexes go (default /tmp/omen-compare/NAME)")
    r.add_argument("--out", help="where results go (default benches/compare/results/NAME)")
    r.add_argument("--name", help="result name (default: the data dir's name)")
    r.add_argument("--omen-bin", default=str(REPO / "target" / "release"), help="dir with omen and omen-build")
    r.add_argument("--omen-code", help="omen-build --code (default: omen-build's default)")
    r.add_argument("--omen-io-wait", choices=("sleep", "spin"), default="sleep", help="omen bench --io-wait: how OmenDB's search thread waits for reads (default sleep)")
    r.add_argument("--R", type=int, default=R, help="base-graph degree of both Vamana builds, OmenDB's and DiskANN's (default 64; the HNSW peers keep M = 32)")
    r.add_argument("--build-threads", type=int, default=os.cpu_count())
    r.add_argument("--build-memory-gb", type=int, default=4)
    r.add_argument("--pq-bytes", type=int, default=32, help="DiskANN in-RAM PQ bytes per vector")
    r.add_argument("--beam", type=int, default=6, help="OmenDB's page groups in flight (its default)")
    r.add_argument("--peer-beam", type=int, help="DiskANN's beam_width (default: --beam)")
    r.add_argument("--hnsw-efc", type=int, default=L_BUILD, help="HNSW peers' ef_construction (default: L_BUILD)")
    r.add_argument("--passes", type=int, default=2, help="search passes; best QPS per setting")
    r.add_argument("--no-drop-caches", dest="drop_caches", action="store_false")
    r.add_argument("--reuse", action="store_true", help="reuse indexes (and their build numbers) from an earlier run in --work")
    r.add_argument("--date", help="date to record (default today)")
    r.add_argument("--metric", choices=("l2", "cos"), default="l2", help="the metric gt.ibin was made with (omen data gt --metric)")
    rr = sub.add_parser("render", help="redraw table.md and the plot from OUT/results.json")
    rr.add_argument("--out", required=True)
    for mode in ("_build", "_search", "_baseline"):
        w = sub.add_parser(mode)
        w.add_argument("system")
        w.add_argument("--data", required=True)
        w.add_argument("--index")
        w.add_argument("--threads", type=int, default=1)
        w.add_argument("--pq-bytes", type=int, default=32)
        w.add_argument("--build-memory-gb", type=int, default=4)
        w.add_argument("--sweep", default="")
        w.add_argument("--beam", type=int, default=6)
        w.add_argument("--hnsw-efc", type=int, default=L_BUILD)
        w.add_argument("--metric", choices=("l2", "cos"), default="l2")
        w.add_argument("--R", type=int, default=R)
    a = p.parse_args()
    if a.cmd == "run":
        cmd_run(a)
        return
    if a.cmd == "render":
        cmd_render(a)
        return
    fn = {"_build": worker_build, "_search": worker_search, "_baseline": worker_baseline}[a.cmd]
    print(json.dumps(fn(a)), flush=True)


if __name__ == "__main__":
    main()
