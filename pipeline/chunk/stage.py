"""The chunk stage as units of work: one document (all its page ranges) per shard.

The parse stage names its page files ``<doc_id>-pNNNNN.parquet``, so the pages of a document are
found by file name, with no shuffle: a document is read whole by one worker, joined in page
order and cut. Output: ``<run>/chunk/data/<doc_id>.parquet`` (``CHUNK_SCHEMA``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.assets import load_tokenizer
from pipeline.chunk.chunker import chunk_text, join_pages
from pipeline.chunk.config import ChunkConfig
from pipeline.config import from_dict
from pipeline.rundir import ShardResult, StageDir, stable_id
from pipeline.schema import CHUNK_SCHEMA, require_columns

STAGE = "chunk"
PAGE_COLUMNS = ["doc_id", "page_no", "text", "source", "subject", "title"]


def plan_documents(pages: StageDir) -> list[dict[str, Any]]:
    """One shard per document: ``{shard: doc_id, files: "path1\\npath2…"}`` from parse's page files."""
    by_doc: dict[str, list[str]] = defaultdict(list)
    for path in pages.data_files():
        stem = Path(path).stem
        if "-p" in stem:
            by_doc[stem.rsplit("-p", 1)[0]].append(path)
    return [{"shard": doc, "files": "\n".join(sorted(files))} for doc, files in sorted(by_doc.items())]


def _tokenizer_functions(tokenizer: Any):
    """(offsets of a text's tokens, token count of a text) without special tokens.

    Fast tokenizers are called through their Rust backend: a whole book is one sequence, far past
    ``model_max_length``, and the Python wrapper would only add overhead and a warning."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return (
            lambda text: backend.encode(text, add_special_tokens=False).offsets,
            lambda text: len(backend.encode(text, add_special_tokens=False).ids),
        )
    return (
        lambda text: tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"],
        lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]),
    )


def chunk_document(page_table: pa.Table, tokenizer: Any, config: ChunkConfig) -> list[dict[str, Any]]:
    """Chunk rows of one document from its page rows."""
    require_columns(STAGE, page_table.column_names, PAGE_COLUMNS)
    rows = sorted(page_table.select(PAGE_COLUMNS).to_pylist(), key=lambda r: r["page_no"])
    if not rows:
        return []
    doc = join_pages([(r["page_no"], r["text"]) for r in rows])
    offsets, count = _tokenizer_functions(tokenizer)
    spans = chunk_text(doc.text, offsets(doc.text), count, config.max_tokens, config.min_fill)
    first = rows[0]
    out = []
    for index, span in enumerate(spans):
        page_start, page_end = doc.page_span(span.char_start, span.char_end)
        out.append(
            {
                "chunk_id": stable_id(first["doc_id"], span.char_start, span.char_end),
                "doc_id": first["doc_id"],
                "subject": first["subject"],
                "chunk_index": index,
                "page_start": page_start,
                "page_end": page_end,
                "char_start": span.char_start,
                "char_end": span.char_end,
                "n_tokens": span.n_tokens,
                "text": doc.text[span.char_start : span.char_end],
                "source": first["source"],
                "title": first["title"],
            }
        )
    return out


class ChunkWorker:
    """Chunk one document and write it as a shard of the chunk stage."""

    def __init__(self, config: dict[str, Any], run_uri: str):
        self.config = from_dict(ChunkConfig, config, prefix="chunk")
        self.pages = StageDir(run_uri, "parse")
        self.stage = StageDir(run_uri, STAGE)
        self.tokenizer = load_tokenizer(self.config.tokenizer.name_or_path)

    def __call__(self, shard: dict[str, Any]) -> ShardResult:
        started = time.perf_counter()
        tables = [pq.read_table(path, filesystem=self.pages.fs) for path in shard["files"].split("\n")]
        pages = pa.concat_tables(tables, promote_options="default")
        rows = chunk_document(pages, self.tokenizer, self.config)
        result = ShardResult(
            shard=shard["shard"],
            in_rows=pages.num_rows,
            out_rows=len(rows),
            passed=pages.num_rows,  # every page's text is inside exactly the chunks that cover it
            counters={"tokens": float(sum(r["n_tokens"] for r in rows)), "documents": 1.0},
            seconds=round(time.perf_counter() - started, 3),
        )
        self.stage.write_shard(result, pa.Table.from_pylist(rows, schema=CHUNK_SCHEMA))
        return result
