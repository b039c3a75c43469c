"""The parse stage as units of work over a run directory (plain Python; ``ray_jobs/parse.py``
schedules them with Ray Data).

Layout under ``<run>/parse/``:
  inventory/<file_key>.json   one per input file (:class:`DocumentInfo`), written by the
                              inventory step; a rerun reads it instead of re-opening the file
  data/<doc_id>-pNNNNN.parquet  pages of one page range (``PAGE_SCHEMA``)
  rejects/…                   page rejects per range; ``rejects/files.parquet`` file rejects
  shards/…json                per-shard counts (files are accounted in the ``files`` shard)
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from pipeline import assets
from pipeline.config import ConfigError, from_dict
from pipeline.parse import pdf
from pipeline.parse.config import ParseConfig
from pipeline.parse.manifest import MANIFEST_NAMES, Manifest, parse_manifest
from pipeline.parse.ocr import build_ocr_engine
from pipeline.rundir import ShardResult, StageDir, filesystem, join, make_rejects, stable_id
from pipeline.schema import PAGE_SCHEMA


def input_uri(config: ParseConfig) -> str:
    """``config.input`` as a path or URI (``builtin:sample-textbooks`` is generated on first use)."""
    return assets.resolve(config.input)


def list_inputs(config: ParseConfig) -> list[pdf.InputFile]:
    """Files under ``config.input`` matching ``config.include``, sorted by relative path."""
    fs, root = filesystem(input_uri(config))
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise ConfigError(f"parse.input: {config.input} does not exist")
    if info.type == pafs.FileType.File:
        infos, root = [info], root.rsplit("/", 1)[0]
    else:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    files = []
    for i in infos:
        if i.type != pafs.FileType.File:
            continue
        relative = i.path[len(root) :].lstrip("/")
        name = relative.rsplit("/", 1)[-1]
        if any(fnmatch.fnmatch(name, pattern) for pattern in config.include):
            files.append(pdf.InputFile(path=i.path, relative=relative, size=i.size))
    return sorted(files, key=lambda f: f.relative)


def load_manifest(config: ParseConfig) -> Manifest:
    fs, root = filesystem(input_uri(config))
    if config.manifest:
        mfs, path = filesystem(config.manifest)
        if mfs.get_file_info(path).type == pafs.FileType.NotFound:
            raise ConfigError(f"parse.manifest: {config.manifest} does not exist")
        with mfs.open_input_stream(path) as f:
            return parse_manifest(f.read().decode("utf-8"), config.manifest)
    if fs.get_file_info(root).type == pafs.FileType.Directory:
        for name in MANIFEST_NAMES:
            candidate = join(root, name)
            if fs.get_file_info(candidate).type == pafs.FileType.File:
                with fs.open_input_stream(candidate) as f:
                    return parse_manifest(f.read().decode("utf-8"), candidate)
    return Manifest()


def file_key(file: pdf.InputFile) -> str:
    return "f" + stable_id(file.relative)


def read_bytes(path: str, uri: str) -> bytes:
    fs, _ = filesystem(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


class InventoryWorker:
    """Inspect one input file and record its :class:`DocumentInfo` in ``inventory/``."""

    def __init__(self, config: dict[str, Any], run_uri: str):
        self.config = from_dict(ParseConfig, config, prefix="parse")
        self.stage = StageDir(run_uri, "parse")
        self.manifest = load_manifest(self.config)

    def __call__(self, shard: dict[str, Any]) -> dict[str, Any]:
        file = pdf.InputFile(path=shard["path"], relative=shard["relative"], size=int(shard["size"]))
        too_big = file.size > self.config.max_file_mb * 1024 * 1024
        try:
            data = None if too_big else read_bytes(file.path, input_uri(self.config))
            info = pdf.inspect_pdf(file, data, self.manifest, self.config)
        except OSError as exc:
            info = pdf.DocumentInfo(
                path=file.path, relative=file.relative, size=file.size,
                reason=pdf.READ_ERROR, detail=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
        self.stage.write_json(f"inventory/{shard['shard']}.json", info.to_json())
        return info.to_json()


def read_inventory(stage: StageDir) -> dict[str, pdf.DocumentInfo]:
    return {key: pdf.DocumentInfo(**data) for key, data in stage.read_json_dir("inventory").items()}


def account_files(infos: Iterable[pdf.DocumentInfo]) -> tuple[ShardResult, pa.Table, list[pdf.DocumentInfo]]:
    """File-level accounting: every input file is either readable (and its pages follow) or a
    reject. A file whose bytes equal an earlier file's (same ``doc_id``) is a ``duplicate_file``."""
    result = ShardResult(shard="files")
    rejects, readable, seen = [], [], {}
    for info in sorted(infos, key=lambda i: i.relative):
        reason, detail = info.reason, info.detail
        if reason is None and info.doc_id in seen:
            reason, detail = pdf.DUPLICATE_FILE, f"same bytes as {seen[info.doc_id]}"
        if reason is None:
            seen[info.doc_id] = info.relative
            readable.append(info)
            continue
        result.rejected[reason] = result.rejected.get(reason, 0) + 1
        rejects.append(
            {"input_id": info.doc_id or info.relative, "stage": pdf.STAGE, "reason": reason,
             "detail": detail, "source": info.path}
        )  # fmt: skip
    result.units["files"] = {
        "in": len(readable) + len(rejects),
        "passed": len(readable),
        "out": len(readable),
        "rejected": dict(result.rejected),
    }
    result.rejected = {}  # files are a secondary unit; the stage's primary unit is pages
    result.counters = {"files": float(len(readable) + len(rejects)), "files_readable": float(len(readable))}
    return result, make_rejects(rejects), readable


def plan_page_shards(readable: Iterable[pdf.DocumentInfo], pages_per_shard: int) -> list[dict[str, Any]]:
    shards = []
    for info in readable:
        for first, last in pdf.page_ranges(info.n_pages, pages_per_shard):
            shards.append(
                {"shard": pdf.page_shard_name(info.doc_id, first), "first_page": first, "last_page": last,
                 "info": json.dumps(info.to_json())}
            )  # fmt: skip
    return shards


class PageRangeWorker:
    """Extract one page range of one document and write it as a shard of the parse stage."""

    def __init__(self, config: dict[str, Any], run_uri: str):
        self.config = from_dict(ParseConfig, config, prefix="parse")
        self.stage = StageDir(run_uri, "parse")
        self.ocr = build_ocr_engine(self.config.ocr)
        # Consecutive ranges of one book reuse its bytes and its opened document.
        self._cache: tuple[str, bytes, Any] | None = None

    def _document(self, info: pdf.DocumentInfo) -> tuple[bytes, Any]:
        if self._cache is None or self._cache[0] != info.path:
            if self._cache is not None:
                self._cache[2].close()
            data = read_bytes(info.path, input_uri(self.config))
            self._cache = (info.path, data, pdf.open_document(data))
        return self._cache[1], self._cache[2]

    def __call__(self, shard: dict[str, Any]) -> ShardResult:
        started = time.perf_counter()
        info = pdf.DocumentInfo(**json.loads(shard["info"]))
        first, last = int(shard["first_page"]), int(shard["last_page"])
        data, doc = self._document(info)
        out = pdf.extract_page_range(data, info, first, last, self.config, self.ocr, doc=doc)
        rejected: dict[str, int] = {}
        for r in out.rejects:
            rejected[r["reason"]] = rejected.get(r["reason"], 0) + 1
        result = ShardResult(
            shard=shard["shard"],
            in_rows=last - first + 1,
            out_rows=len(out.rows),
            passed=len(out.rows),
            rejected=rejected,
            counters={"pages": float(last - first + 1), **out.counters},
            seconds=round(time.perf_counter() - started, 3),
        )
        table = pa.Table.from_pylist(out.rows, schema=PAGE_SCHEMA)
        self.stage.write_shard(result, table, make_rejects(out.rejects))
        return result


@dataclass(frozen=True)
class ParsePlan:
    files: list[pdf.InputFile]
    pending_inventory: list[dict[str, Any]]


def plan_inventory(config: ParseConfig, stage: StageDir) -> ParsePlan:
    files = list_inputs(config)
    done = set(stage.read_json_dir("inventory"))
    pending = [
        {"shard": file_key(f), "path": f.path, "relative": f.relative, "size": f.size}
        for f in files
        if file_key(f) not in done
    ]
    return ParsePlan(files=files, pending_inventory=pending)
