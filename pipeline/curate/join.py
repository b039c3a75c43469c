"""Refinement's input: each QA row joined with the text of its source chunk, by ``chunk_id``.

The reference looks the document up by *line position* in ``documents.jsonl`` (fragile: any change
to the file shifts every index). Here the join is by the chunk's content-hash id, one QA shard at a
time, with no global table in memory: shard names follow the data through the stages (chunk shard
``X`` → extract_qa shard ``X`` → dedup shard ``X``), so the chunks of QA shard ``X`` are read from
chunk shard ``X``; ids not found there (a re-sharded run) are looked up across all chunk shards
with a pushed-down ``chunk_id in (…)`` filter. A QA row whose chunk exists nowhere is rejected
(``missing_chunk``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipeline.rundir import ShardResult, StageDir, make_rejects
from pipeline.schema import require_columns

STAGE = "refine_input"
MISSING_CHUNK = "missing_chunk"


def attach_documents(
    qa: pa.Table, documents: dict[str, str], source: str, stage: str = STAGE
) -> tuple[pa.Table, pa.Table, ShardResult]:
    """QA rows with a ``document`` column, rows without a known chunk as rejects, and counts."""
    require_columns(stage, qa.column_names, ["qa_id", "chunk_id"])
    shard = Path(source).stem
    ids = qa["chunk_id"].to_pylist()
    found = [i for i, cid in enumerate(ids) if cid in documents]
    missing = [i for i, cid in enumerate(ids) if cid not in documents]
    data = qa.take(pa.array(found, type=pa.int64()))
    if "document" in data.column_names:
        data = data.drop_columns(["document"])
    data = data.append_column("document", pa.array([documents[ids[i]] for i in found], type=pa.string()))
    qa_ids = qa["qa_id"].to_pylist()
    rejects = make_rejects(
        {"input_id": qa_ids[i], "stage": stage, "reason": MISSING_CHUNK, "source": source,
         "detail": f"chunk {ids[i]!r} is in no shard of the chunk stage"}
        for i in missing
    )  # fmt: skip
    result = ShardResult(
        shard=shard, in_rows=qa.num_rows, out_rows=data.num_rows, passed=data.num_rows,
        rejected={MISSING_CHUNK: len(missing)} if missing else {},
    )  # fmt: skip
    return data, rejects, result


class ChunkJoiner:
    """Join one QA shard with its chunks and write it to the ``refine_input`` stage (a
    ``ray_jobs.common.map_shards`` worker: ``__call__({"shard", "path"}) -> ShardResult``)."""

    def __init__(self, run_uri: str, qa_stage: str, chunk_stage: str, stage: str = STAGE):
        self.qa = StageDir(run_uri, qa_stage)
        self.chunks = StageDir(run_uri, chunk_stage)
        self.target = StageDir(run_uri, stage)
        self.chunk_files = {Path(f).stem: f for f in self.chunks.data_files()}

    def lookup(self, shard: str, chunk_ids: set[str]) -> dict[str, str]:
        documents: dict[str, str] = {}
        local = self.chunk_files.get(shard)
        if local is not None:
            table = pq.read_table(local, filesystem=self.chunks.fs, columns=["chunk_id", "text"])
            mask = pc.is_in(table["chunk_id"], pa.array(sorted(chunk_ids), type=pa.string()))
            documents.update(zip(*(table.filter(mask)[c].to_pylist() for c in ("chunk_id", "text"))))
        rest = chunk_ids - set(documents)
        if rest and self.chunk_files:
            dataset = pads.dataset(
                list(self.chunk_files.values()), filesystem=self.chunks.fs, format="parquet"
            )
            table = dataset.to_table(
                columns=["chunk_id", "text"], filter=pc.field("chunk_id").isin(sorted(rest))
            )
            documents.update(zip(table["chunk_id"].to_pylist(), table["text"].to_pylist()))
        return documents

    def __call__(self, shard: dict[str, Any]) -> ShardResult:
        started = time.time()
        qa = pq.read_table(shard["path"], filesystem=self.qa.fs)
        documents = self.lookup(shard["shard"], {c for c in qa["chunk_id"].to_pylist() if c is not None})
        data, rejects, result = attach_documents(qa, documents, shard["path"], self.target.stage)
        result.seconds = round(time.time() - started, 3)
        self.target.write_shard(result, data, rejects)
        return result
