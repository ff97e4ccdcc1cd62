#!/usr/bin/env bash
# Peer comparison: OmenDB against hnswlib, faiss HNSW, usearch, DiskANN and
# LanceDB on one dataset made by `omen data synth` + `omen data gt`
# (base.fbin, query.fbin, gt.ibin). Makes benches/compare/.venv (git-ignored)
# with pinned packages on first use, builds omen and omen-build in release
# mode unless OMEN_BIN names a directory that holds them, then runs
# compare.py.
#
#   benches/compare/run.sh --data /tmp/cmp200k [--systems omendb,diskann] [--passes 2] [--metric cos]
#
# Every option after run.sh goes to `compare.py run` (see compare.py --help).
# Needs python3 >= 3.10 with venv, and network access to PyPI the first time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"

# Versions that install together on CPython 3.11 (x86_64 Linux wheels;
# hnswlib builds from source). diskannpy 0.7.0 pins numpy 1.25, and faiss-cpu
# 1.15.1 imports numpy._core (numpy 2) at load time; 1.9.0.post1 works (the
# versions between were not tried). lancedb 0.40.0 takes pyarrow >= 16, and
# pyarrow 26 needs numpy 2 as well; 18.1.0 works with numpy 1.25.
packages=(
  numpy==1.25.0
  hnswlib==0.8.0
  faiss-cpu==1.9.0.post1
  diskannpy==0.7.0
  usearch==2.26.6
  pyarrow==18.1.0
  lancedb==0.40.0
  matplotlib==3.11.2
)

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import numpy, hnswlib, faiss, diskannpy, usearch, lancedb, matplotlib' 2>/dev/null; then
  echo "==> making $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
fi

if [[ -z "${OMEN_BIN:-}" ]]; then
  echo "==> cargo build --release -p omen-tools" >&2
  (cd "$repo" && cargo build --release --quiet -p omen-tools)
  OMEN_BIN="$repo/target/release"
fi

exec "$venv/bin/python" "$here/compare.py" run --omen-bin "$OMEN_BIN" "$@"
