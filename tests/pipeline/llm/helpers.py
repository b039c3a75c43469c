"""Test helpers for LLM stages: chunk rows from a real PDF, an input stage on disk, and a
scripted engine.

The scripted engine is for deterministic checks of the stage logic around the engine only: it
replaces the engine step of ``ray_jobs.llm_stage.run_llm_stage`` (``engine_fn=``) while request
rows still flow through Ray Data, the cache, the parser and the run directory. The real engines
are tested in ``test_ray_engine.py`` and ``tests/ray_jobs/test_extract_qa.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.llm.stage import COMPLETION_SCHEMA
from pipeline.rundir import ShardResult, StageDir, stable_id
from pipeline.schema import CHUNK_SCHEMA

Responder = Callable[[dict[str, Any]], dict[str, Any]]


def scripted_engine(respond: Responder, served_log: Path | None = None, batch_size: int = 2):
    """``engine_fn`` answering each request row with ``respond(row)`` (``text`` and optionally
    ``finish_reason``/``error``); every served key is appended to ``served_log``. A ``respond``
    that raises kills the job the way a dying engine would."""

    def answer(batch: pa.Table) -> pa.Table:
        out = []
        for row in batch.to_pylist():
            reply = respond(row)
            messages = json.loads(row["messages_json"])
            out.append(
                {
                    **{k: row[k] for k in ("key", "shard", "unit_id", "prompt_id", "sampling_json")},
                    "text": reply.get("text", ""),
                    "finish_reason": reply.get("finish_reason", "stop"),
                    "prompt_tokens": sum(len(m["content"].split()) for m in messages),
                    "completion_tokens": len(reply.get("text", "").split()),
                    "error": reply.get("error"),
                }
            )
            if served_log is not None:
                with open(served_log, "a") as f:
                    f.write(row["key"] + "\n")
                    f.flush()
                    os.fsync(f.fileno())
        return pa.Table.from_pylist(out, schema=COMPLETION_SCHEMA)

    def engine_fn(ds):
        return ds.map_batches(answer, batch_format="pyarrow", batch_size=batch_size)

    return engine_fn


def served_keys(served_log: Path) -> list[str]:
    return served_log.read_text().split() if served_log.exists() else []


def chunks_from_pdf(
    pdf: Path, subject: str, n_chunks: int, max_chars: int = 1500, first_page: int = 5
) -> list[dict]:
    """``n_chunks`` CHUNK_SCHEMA rows cut from the text of a real PDF with PyMuPDF (a stand-in for
    the chunk stage, so these tests need only the PDF)."""
    import pymupdf

    doc_id = stable_id(pdf.read_bytes())
    rows: list[dict] = []
    offset = 0
    with pymupdf.open(pdf) as doc:
        for page_no in range(first_page, doc.page_count):
            text = " ".join(doc[page_no].get_text("text").split())
            if len(text) < 200:
                continue
            text = text[:max_chars]
            rows.append(
                {
                    "chunk_id": stable_id(doc_id, offset, offset + len(text)),
                    "doc_id": doc_id,
                    "subject": subject,
                    "chunk_index": len(rows),
                    "page_start": page_no + 1,
                    "page_end": page_no + 1,
                    "char_start": offset,
                    "char_end": offset + len(text),
                    "n_tokens": len(text) // 4,
                    "text": text,
                    "source": str(pdf),
                    "title": pdf.stem,
                }
            )
            offset += len(text) + 2
            if len(rows) == n_chunks:
                break
    return rows


def write_stage(stage: StageDir, shards: dict[str, list[dict]], schema: pa.Schema = CHUNK_SCHEMA) -> None:
    """A finished stage on disk with the given shards (the input of an LLM stage under test)."""
    for shard, rows in shards.items():
        result = ShardResult(shard=shard, in_rows=len(rows), out_rows=len(rows), passed=len(rows))
        stage.write_shard(result, pa.Table.from_pylist(rows, schema=schema))
    stage.finish("test-input", 0.0)
