"""Response cache: every completion an LLM stage receives, kept so no prompt is generated twice.

``<run>/_llm_cache/<stage>/<shard>/part-<time>-<uuid>.parquet`` files of :data:`CACHE_SCHEMA`
rows, keyed by :func:`pipeline.llm.stage.request_key` (model + prompt name@version + messages +
sampling parameters). Completions are appended in small parts as they stream out of the engine
(every ``flush_rows`` completions or 60 s), so a job killed after hours loses only the last
unflushed part; its rerun asks the engine only for keys the cache lacks. One folder per shard:
parsing a shard reads only its own parts, however many shards the run has. It lives beside, not inside, the stage folder, so ``--force`` (which deletes the
stage folder) re-parses cached completions instead of regenerating them; a changed prompt, model
or sampling parameter changes the key and does regenerate. Delete the folder to regenerate all.

Error completions (``finish_reason=error``) are cached too, so the run that got them can report
them as rejects, but :meth:`CompletionCache.keys` leaves them out so a rerun tries them again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.llm.stage import COMPLETION_SCHEMA
from pipeline.rundir import filesystem, join

CACHE_SCHEMA = COMPLETION_SCHEMA.append(pa.field("model", pa.string())).append(
    pa.field("created_at", pa.float64())
)


class CompletionCache:
    """Append-only parquet cache of completions in a folder (local path or ``pyarrow.fs`` URI)."""

    def __init__(self, uri: str, model: str, flush_rows: int = 256, flush_seconds: float = 60.0):
        self.uri = uri
        self.model = model
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.fs, self.path = filesystem(uri)
        self._buffer: dict[str, list[dict[str, Any]]] = {}
        self._buffered = 0
        self._last_flush = time.time()
        self.written = 0

    @classmethod
    def for_stage(cls, run_uri: str, stage: str, model: str, flush_rows: int = 256) -> CompletionCache:
        return cls(join(run_uri, "_llm_cache", stage), model, flush_rows)

    # -- reading ---------------------------------------------------------------------------------
    def _list(self, path: str, recursive: bool) -> list[str]:
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(path, recursive=recursive))
        return [
            i.path for i in infos if i.type == pafs.FileType.File and Path(i.path).name.startswith("part-")
        ]

    def _files(self, shards: Iterable[str] | None) -> list[str]:
        if shards is None:
            files = self._list(self.path, recursive=True)
        else:
            files = [f for shard in sorted(set(shards)) for f in self._list(join(self.path, shard), False)]
        return sorted(files, key=lambda f: Path(f).name)  # part names start with their write time

    def _read(self, columns: list[str], shards: Iterable[str] | None) -> pa.Table:
        files = self._files(shards)
        if not files:
            return CACHE_SCHEMA.empty_table().select(columns)
        dataset = pads.dataset(files, schema=CACHE_SCHEMA, format="parquet", filesystem=self.fs)
        return dataset.to_table(columns=columns)

    def keys(self, shards: Iterable[str] | None = None) -> set[str]:
        """Keys with a usable (non-error) completion, optionally only of some shards."""
        table = self._read(["key", "finish_reason"], shards)
        ok = pc.not_equal(table["finish_reason"], "error")
        return set(table.filter(ok)["key"].to_pylist())

    def lookup(self, shards: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """key → completion row (the latest one when a key was generated twice)."""
        table = self._read(CACHE_SCHEMA.names, shards)
        rows: dict[str, dict[str, Any]] = {}
        # Parts are read in name (= time) order, so later entries win; a retried error is replaced.
        for row in table.to_pylist():
            prev = rows.get(row["key"])
            if prev is None or prev["finish_reason"] == "error" or row["finish_reason"] != "error":
                rows[row["key"]] = row
        return rows

    # -- writing ---------------------------------------------------------------------------------
    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Buffer completion rows (:data:`COMPLETION_SCHEMA`); flushes every ``flush_rows`` rows
        or ``flush_seconds``, whichever comes first."""
        now = time.time()
        for row in rows:
            record = {
                **{k: row.get(k) for k in COMPLETION_SCHEMA.names},
                "model": self.model,
                "created_at": now,
            }
            self._buffer.setdefault(str(row["shard"]), []).append(record)
            self._buffered += 1
        if self._buffered >= self.flush_rows or now - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows: one new part per shard (atomic: temp file + rename)."""
        for shard, rows in self._buffer.items():
            folder = join(self.path, shard)
            self.fs.create_dir(folder, recursive=True)
            name = f"part-{time.time():017.6f}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = join(folder, f".tmp-{name}")
            pq.write_table(pa.Table.from_pylist(rows, schema=CACHE_SCHEMA), tmp, filesystem=self.fs,
                           compression="zstd")  # fmt: skip
            self.fs.move(tmp, join(folder, name))
            self.written += len(rows)
        self._buffer = {}
        self._buffered = 0
        self._last_flush = time.time()

    def clear(self) -> None:
        if self.fs.get_file_info(self.path).type != pafs.FileType.NotFound:
            self.fs.delete_dir(self.path)
