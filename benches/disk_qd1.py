"""Random 4 KiB reads at queue depth 1 through O_DIRECT: the disk's own
latency, which bounds every wait of a disk search (benches/RESULTS.md).

usage: python3 benches/disk_qd1.py FILE [READS]
FILE should be much larger than any cache the host may keep for it.
"""
import mmap
import os
import random
import sys
import time

path = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
pages = os.fstat(fd).st_size // 4096
buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT requires
lat = []
for _ in range(n):
    off = random.randrange(pages) * 4096
    t = time.perf_counter_ns()
    os.preadv(fd, [buf], off)
    lat.append(time.perf_counter_ns() - t)
lat.sort()
print(
    f"{n} QD1 4KiB O_DIRECT reads: mean {sum(lat) / n / 1000:.1f} us, "
    f"p50 {lat[n // 2] / 1000:.1f}, p99 {lat[int(n * 0.99)] / 1000:.1f}"
)
