"""Decontamination retrieval throughput against the full benchmark pool.

    python bench/decontam.py                       # offline MiniLM (384-d), 2,000 training questions
    python bench/decontam.py --model BAAI/bge-large-en-v1.5 --rows 20000   # the reference's model (hub/GPU)

Measures, in one process, side by side:
- the pool index: 17,908 benchmark questions of the 15 present files embedded (rows/s),
- training rows: embedding alone, exact top-5 search alone (``pipeline.decontam.search.top_k``:
  matmul + ``torch.topk`` in 1,024-row batches, then a deterministic tie order), and the two
  together (what ``decontam_retrieve`` does per shard),
- the same search with a bare ``torch.topk`` (the reference's implementation) and with NumPy
  ``argpartition`` for comparison.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from pipeline.decontam.config import DecontamRetrieveConfig
from pipeline.decontam.embed import MINILM, Embedder
from pipeline.decontam.retrieve import _cache_file, _index_tag, load_pool
from pipeline.decontam.search import top_k
from pipeline.dedup.synthetic import generate_questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MINILM)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--pool-sample",
        type=int,
        default=2000,
        help="pool questions embedded for the pool rows/s figure; the full pool embedding is "
        "reused from $MEGASCIENCE_CACHE when a run made it (0: always embed the whole pool)",
    )
    parser.add_argument(
        "--benchmarks-dir", default=os.environ.get("MEGASCIENCE_BENCHMARKS", "../shared/data/benchmarks")
    )
    args = parser.parse_args()

    cfg = DecontamRetrieveConfig(
        benchmarks_dir=args.benchmarks_dir, embedding_model=args.model, batch_size=args.batch_size
    )
    pool, missing = load_pool(cfg)
    embedder = Embedder(args.model, batch_size=args.batch_size)
    cached = _cache_file(_index_tag(cfg, pool))
    texts = pool["question"].to_pylist()
    sample = (
        texts
        if not args.pool_sample or not cached.exists()
        else texts[:: max(1, len(texts) // args.pool_sample)]
    )
    t0 = time.perf_counter()
    vectors = embedder.encode(sample)
    pool_s = time.perf_counter() - t0
    index = vectors if len(sample) == len(texts) else np.load(cached)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores", flush=True)
    print(f"pool: {pool.num_rows:,} benchmark questions ({len(missing)} list entries missing), {index.shape[1]}-d "
          f"{args.model}: embedded at {len(sample) / pool_s:,.0f} rows/s ({len(sample):,} rows in {pool_s:.1f} s)",
          flush=True)  # fmt: skip

    questions = [
        r["question"] for r in generate_questions(args.rows, seed=4, duplicate_rate=0.0, short_rate=0.0)
    ]
    t0 = time.perf_counter()
    queries = embedder.encode(questions)
    embed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, ids = top_k(queries, index, 5)
    search_s = time.perf_counter() - t0

    import torch

    t0 = time.perf_counter()
    index_t = torch.from_numpy(index)
    torch_ids = []
    for start in range(0, len(queries), 1024):
        torch_ids.append(
            torch.topk(torch.from_numpy(queries[start : start + 1024]) @ index_t.T, k=5).indices.numpy()
        )
    torch_s = time.perf_counter() - t0
    agree = float(np.mean(np.concatenate(torch_ids) == ids))
    t0 = time.perf_counter()
    for start in range(0, len(queries), 1024):
        block = queries[start : start + 1024] @ index.T
        np.argpartition(-block, 4, axis=1)[:, :5]
    numpy_s = time.perf_counter() - t0
    total = embed_s + search_s
    print(f"training rows ({args.rows:,}):", flush=True)
    print(f"  embedding              {args.rows / embed_s:>10,.0f} rows/s  ({embed_s:.2f} s)")
    print(f"  exact top-5 (ours)     {args.rows / search_s:>10,.0f} rows/s  ({search_s:.2f} s)")
    print(
        f"  bare torch.topk        {args.rows / torch_s:>10,.0f} rows/s  ({torch_s:.2f} s; same ids {agree:.1%})"
    )
    print(f"  NumPy argpartition     {args.rows / numpy_s:>10,.0f} rows/s  ({numpy_s:.2f} s)")
    print(
        f"  embedding + search     {args.rows / total:>10,.0f} rows/s  (search is {search_s / total:.1%} of the time)"
    )


if __name__ == "__main__":
    main()
