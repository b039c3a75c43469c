"""Dedup throughput: the Ray Data MinHash stage vs single-process datasketch, same data and parameters.

    python bench/dedup.py                 # 100k generated questions, reference parameters (b=1, r=10)
    python bench/dedup.py --rows 20000 --num-cpus 4

Both sides use the reference's tokens (``re.split(r"\\W", q.lower())``), the 5-token minimum,
3-gram shingles, SHA-1 32-bit base hashes, 250 permutations and one LSH band of 10 rows:

- baseline: ``datasketch.MinHash(num_perm=250)`` per question (``update_batch`` over its shingles)
  and an LSH table of the one band (``datasketch.MinHashLSH`` refuses b < 2, so its table is a
  dict keyed by the band's bytes, exactly what MinHashLSH stores per band); a question is a
  duplicate when the table already holds its key — the usual single-process dedup loop.
- ours: ``pipeline.dedup.ray_minhash.dedup_shards`` on a local Ray cluster (read 8 Parquet shards,
  vectorised signatures in ``map_batches``, groupby buckets, rewrite shards), plus the vectorised
  signature function alone in this process (what the vectorisation buys before any parallelism).

Prints questions/s, the ratio, kept counts (they agree up to the permutations drawn: datasketch
draws its own) and peak resident memory (the driver; for Ray, the sum over its worker processes,
sampled every 0.2 s). On a shared machine wall time depends on the load, so CPU time is printed
too (the process's own; for Ray the CPU seconds its driver and worker processes consumed).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import tempfile
import threading
import time

import psutil
import pyarrow as pa

from pipeline.dedup import minhash as mh
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.synthetic import generate_questions
from pipeline.rundir import RunDir, ShardResult

NON_WORD = re.compile(r"\W")


def ray_cpu_seconds() -> float:
    """CPU seconds consumed so far by this process and its children (the local Ray cluster this
    script started: GCS, raylet, workers); other sessions' Ray processes are not counted."""
    me = psutil.Process()
    total = time.process_time()
    for p in me.children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def datasketch_dedup(questions: list[str]) -> tuple[int, float]:
    from datasketch import MinHash

    started = time.perf_counter()
    table: set[bytes] = set()  # the single band's hash table (MinHashLSH needs b >= 2)
    # Permutations drawn once and shared (datasketch's documented fast path), not per MinHash.
    template = MinHash(num_perm=250, seed=42)
    kept = 0
    for q in questions:
        tokens = NON_WORD.split(q.lower())
        if len(tokens) < 5:
            continue
        grams = {" ".join(tokens[j : j + 3]).encode() for j in range(len(tokens) - 2)}
        m = MinHash(num_perm=250, seed=42, permutations=template.permutations, scheme=template.scheme)
        m.update_batch(list(grams))
        key = bytes(m.hashvalues[:10].byteswap().data)
        if key in table:
            continue
        table.add(key)
        kept += 1
    return kept, time.perf_counter() - started


class RssSampler(threading.Thread):
    """Peak of the summed RSS of this process and its children (the Ray cluster it started)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.is_set():
            total = me.memory_info().rss
            for p in me.children(recursive=True):  # this script's own Ray cluster only
                try:
                    total += p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            self.peak = max(self.peak, total)
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument(
        "--num-cpus", type=int, default=None, help="logical CPUs of the local Ray (default: cores)"
    )
    parser.add_argument("--shuffle", choices=["sort", "hash"], default="sort")
    args = parser.parse_args()

    records = list(generate_questions(args.rows, seed=1, duplicate_rate=0.2))
    questions = [r["question"] for r in records]
    print(f"{args.rows:,} generated questions ({sum(r['planted'] != 'original' for r in records):,} planted "
          f"copies or short), {os.cpu_count()} cores", flush=True)  # fmt: skip

    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    # 1. single-process datasketch baseline
    cpu0 = time.process_time()
    base_kept, base_s = datasketch_dedup(questions)
    base_cpu = time.process_time() - cpu0
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"datasketch (1 process):       {args.rows / base_s:>9,.0f} q/s  {base_s:7.1f} s wall  {base_cpu:7.1f} s CPU  "
          f"kept {base_kept:,}  peak RSS {base_rss / 2**20:,.0f} MiB", flush=True)  # fmt: skip

    # 2. our vectorised signatures, one process, no Ray
    t0, cpu0 = time.perf_counter(), time.process_time()
    sig, valid = mh.signatures(questions, mh.permutations(250, 42, used=10), ngram=3, min_length=5)
    keys = mh.band_keys(sig[valid], 1, 10)[0]
    vec_kept = len(set(keys))
    vec_s, vec_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"vectorised, 1 process:        {args.rows / vec_s:>9,.0f} q/s  {vec_s:7.1f} s wall  {vec_cpu:7.1f} s CPU  "
          f"kept {vec_kept:,}  ({base_cpu / vec_cpu:.1f}x datasketch in CPU time)", flush=True)  # fmt: skip

    # 3. the Ray Data stage
    import ray

    tmp = tempfile.mkdtemp(prefix="bench_dedup_")
    run = RunDir(tmp, "bench")
    stage = run.stage("extract_qa")
    size = -(-len(records) // args.shards)
    for s in range(args.shards):
        part = records[s * size : (s + 1) * size]
        stage.write_shard(ShardResult(shard=f"part-{s:03d}", in_rows=len(part), passed=len(part), out_rows=len(part)),
                          pa.Table.from_pylist(part))  # fmt: skip
    stage.finish("bench", 0.0)
    t0 = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level="ERROR",
             _temp_dir=tempfile.mkdtemp(prefix="ray_b", dir="/tmp"))  # fmt: skip
    ray.data.DataContext.get_current().enable_progress_bars = False
    init_s = time.perf_counter() - t0
    from pipeline.dedup.ray_minhash import dedup_shards

    sampler = RssSampler()
    sampler.start()
    cpu0 = ray_cpu_seconds()
    t0 = time.perf_counter()
    results = dedup_shards(run.uri, DedupConfig(shuffle=args.shuffle))
    ray_s = time.perf_counter() - t0
    ray_cpu = ray_cpu_seconds() - cpu0
    sampler.stop.set()
    sampler.join()
    ray_kept = sum(r["passed"] if isinstance(r, dict) else r.passed for r in results)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    print(f"Ray Data stage ({cpus} CPUs):     {args.rows / ray_s:>9,.0f} q/s  {ray_s:7.1f} s wall  {ray_cpu:7.1f} s CPU  "
          f"kept {ray_kept:,}  peak RSS (driver + workers) {sampler.peak / 2**20:,.0f} MiB  "
          f"[ray.init {init_s:.1f} s not counted]", flush=True)  # fmt: skip
    print(f"ratio Ray Data stage / datasketch: {base_s / ray_s:.2f}x wall (goal >= 3x), {base_cpu / ray_cpu:.2f}x in CPU "
          f"time; load average now {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    ray.shutdown()


if __name__ == "__main__":
    main()
