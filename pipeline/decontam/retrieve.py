"""The benchmark index and the retrieval worker (S6-1..3).

``build_index`` embeds the decontamination pool once per (model, pool) and stores
``<run>/decontam_retrieve/index/{pool.parquet, embeddings.npy, index.json}``; a copy is kept in
``$MEGASCIENCE_CACHE/decontam/`` so other runs with the same model and pool reuse it (18k pool
questions take ~50 s to embed with MiniLM on 2 CPU cores, minutes with bge-large).
``Retriever`` then embeds each shard's questions and adds its top-k benchmark neighbours:

    retrieved_benchmark: list<{benchmark, item_id, question, similarity_score}>, best first
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.benchmarks import registry
from pipeline.decontam.config import DecontamRetrieveConfig
from pipeline.decontam.embed import Embedder
from pipeline.decontam.search import top_k
from pipeline.rundir import ShardResult, StageDir, join, make_rejects, stable_id
from pipeline.schema import require_columns

STAGE = "decontam_retrieve"
MISSING_QUERY = "missing_query"

CANDIDATE_TYPE = pa.struct(
    [
        ("benchmark", pa.string()),
        ("item_id", pa.string()),
        ("question", pa.string()),
        ("similarity_score", pa.float32()),
    ]
)


def load_pool(cfg: DecontamRetrieveConfig) -> tuple[pa.Table, list[str]]:
    """The pool table {benchmark, item_id, question} and the names of missing entries."""
    pool = registry.decontamination_pool(cfg.benchmarks_dir, include_olympic_arena=cfg.include_olympic_arena)
    table = pool.to_arrow()
    if cfg.benchmarks:
        unknown = sorted(set(cfg.benchmarks) - set(pool.counts) - {m.key for m in pool.missing})
        if unknown:
            raise ValueError(f"decontam_retrieve.benchmarks: unknown pool entries {unknown}; "
                             f"known: {sorted(set(pool.counts) | {m.key for m in pool.missing})}")  # fmt: skip
        table = table.filter(pc.is_in(table["benchmark"], pa.array(list(cfg.benchmarks))))
    if table.num_rows == 0:
        raise FileNotFoundError(
            f"no benchmark questions found under {cfg.benchmarks_dir!r}: set decontam_retrieve.benchmarks_dir "
            "(or $MEGASCIENCE_BENCHMARKS) to the folder of benchmark files"
        )
    return table, [m.key for m in pool.missing if not cfg.benchmarks or m.key in cfg.benchmarks]


def _index_tag(cfg: DecontamRetrieveConfig, pool: pa.Table) -> str:
    digest = stable_id(*pool["item_id"].to_pylist(), *pool["question"].to_pylist())
    return stable_id("decontam-index", cfg.embedding_model, cfg.max_seq_length, digest)


def _cache_file(tag: str) -> Path:
    root = Path(os.environ.get("MEGASCIENCE_CACHE", Path.home() / ".cache" / "megascience"))
    return root / "decontam" / f"{tag}.npy"


def build_index(run_uri: str, cfg: DecontamRetrieveConfig, stage: str = STAGE) -> dict[str, Any]:
    """Embed the pool (or reuse a cached embedding) and write the index files; returns index.json."""
    target = StageDir(run_uri, stage)
    index_dir = join(target.path, "index")
    meta_path = join(index_dir, "index.json")
    pool, missing = load_pool(cfg)
    tag = _index_tag(cfg, pool)
    if target.fs.get_file_info(meta_path).type.name == "File":
        with target.fs.open_input_stream(meta_path) as f:
            meta = json.loads(f.read())
        if meta.get("tag") == tag:
            return meta
    started = time.time()
    cached = _cache_file(tag)
    if cached.exists():
        vectors = np.load(cached)
    else:
        embedder = Embedder(cfg.embedding_model, device=cfg.device, batch_size=cfg.batch_size,
                            max_seq_length=cfg.max_seq_length)  # fmt: skip
        vectors = embedder.encode(pool["question"].to_pylist())
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, vectors)
        tmp.replace(cached)
    target.fs.create_dir(index_dir, recursive=True)
    pq.write_table(pool, join(index_dir, "pool.parquet"), filesystem=target.fs)
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    with target.fs.open_output_stream(join(index_dir, "embeddings.npy")) as f:
        f.write(buffer.getvalue())
    counts: dict[str, int] = {}
    for name in pool["benchmark"].to_pylist():
        counts[name] = counts.get(name, 0) + 1
    meta = {"tag": tag, "model": cfg.embedding_model, "rows": pool.num_rows, "dim": int(vectors.shape[1]),
            "counts": counts, "missing": missing, "seconds": round(time.time() - started, 2)}  # fmt: skip
    with target.fs.open_output_stream(meta_path) as f:  # written last: present = index complete
        f.write(json.dumps(meta, indent=2).encode())
    return meta


def load_index(run_uri: str, stage: str = STAGE) -> tuple[pa.Table, np.ndarray]:
    target = StageDir(run_uri, stage)
    index_dir = join(target.path, "index")
    pool = pq.read_table(join(index_dir, "pool.parquet"), filesystem=target.fs)
    with target.fs.open_input_stream(join(index_dir, "embeddings.npy")) as f:
        vectors = np.load(io.BytesIO(f.read()))
    return pool, vectors


def candidates(pool: pa.Table, scores: np.ndarray, ids: np.ndarray) -> list[list[dict[str, Any]]]:
    """Per query row, its neighbours as CANDIDATE_TYPE dicts, best first."""
    bench, item, question = (pool[c].to_pylist() for c in ("benchmark", "item_id", "question"))
    return [
        [{"benchmark": bench[j], "item_id": item[j], "question": question[j], "similarity_score": float(s)}
         for s, j in zip(row_scores, row_ids)]
        for row_scores, row_ids in zip(scores, ids)
    ]  # fmt: skip


def retrieve_table(table: pa.Table, embedder: Embedder, pool: pa.Table, vectors: np.ndarray,
                   cfg: DecontamRetrieveConfig, source: str, stage: str = STAGE) -> tuple[pa.Table, pa.Table, ShardResult]:  # fmt: skip
    """One shard: rows with ``retrieved_benchmark`` added; rows without a question are rejected."""
    require_columns(stage, table.column_names, ["qa_id", cfg.query_column])
    texts = table[cfg.query_column].to_pylist()
    ok = [i for i, t in enumerate(texts) if t]
    bad = [i for i, t in enumerate(texts) if not t]
    data = table.take(pa.array(ok, type=pa.int64()))
    scores, ids = top_k(embedder.encode([texts[i] for i in ok]), vectors, cfg.top_k, cfg.search_batch_size)
    if "retrieved_benchmark" in data.column_names:
        data = data.drop_columns(["retrieved_benchmark"])
    data = data.append_column(
        "retrieved_benchmark", pa.array(candidates(pool, scores, ids), pa.list_(CANDIDATE_TYPE))
    )
    qa_ids = table["qa_id"].to_pylist()
    rejects = make_rejects({"input_id": qa_ids[i], "stage": stage, "reason": MISSING_QUERY, "source": source,
                            "detail": f"{cfg.query_column} is empty"} for i in bad)  # fmt: skip
    result = ShardResult(shard=Path(source).stem, in_rows=table.num_rows, out_rows=len(ok), passed=len(ok),
                         rejected={MISSING_QUERY: len(bad)} if bad else {})  # fmt: skip
    return data, rejects, result


class Retriever:
    """A ``ray_jobs.common.map_shards`` worker: embeds one shard and writes its neighbours."""

    def __init__(self, run_uri: str, cfg: DecontamRetrieveConfig, stage: str = STAGE):
        self.cfg = cfg
        self.source = StageDir(run_uri, cfg.input_stage)
        self.target = StageDir(run_uri, stage)
        self.pool, self.vectors = load_index(run_uri, stage)
        self.embedder = Embedder(cfg.embedding_model, device=cfg.device, batch_size=cfg.batch_size,
                                 max_seq_length=cfg.max_seq_length)  # fmt: skip

    def __call__(self, shard: dict[str, Any]) -> ShardResult:
        started = time.time()
        table = pq.read_table(shard["path"], filesystem=self.source.fs)
        data, rejects, result = retrieve_table(table, self.embedder, self.pool, self.vectors, self.cfg,
                                               shard["path"], self.target.stage)  # fmt: skip
        result.seconds = round(time.time() - started, 3)
        self.target.write_shard(result, data, rejects)
        return result
