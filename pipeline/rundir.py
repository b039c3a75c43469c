"""The run directory: where every stage keeps its outputs, rejects, stats and completion marker.

```
<root>/<run_name>/
  config.yaml                 the resolved config of the run
  <stage>/data/<shard>.parquet    output rows, one file per input shard (deterministic names)
  <stage>/rejects/<shard>.parquet rejected inputs: {input_id, stage, reason, detail, source, …}
  <stage>/shards/<shard>.json     per-shard counts, written LAST: its presence = shard done
  <stage>/stats.json              the stage's totals
  <stage>/_SUCCESS                written last of all: present = stage complete, skipped on rerun
```

Why shards and markers instead of one ``Dataset.write_parquet``: Ray Data's writes are not
transactional per input, so a killed job would leave partial output a rerun cannot tell apart from
finished output. Here a shard's data and rejects are written first and its ``shards/<shard>.json``
last, so a rerun skips exactly the shards that finished and redoes the rest: no duplicates, nothing
lost. Shard names derive from input names (never from worker or block numbers), so the same input
always lands in the same file.

The root may be a local path or any ``pyarrow.fs`` URI (``s3://bucket/prefix``, ``gs://…``).
Nothing here imports Ray.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

REJECTS_SCHEMA = pa.schema(
    [
        ("input_id", pa.string()),  # id of the rejected input (doc_id, chunk_id, qa_id, file path …)
        ("stage", pa.string()),
        ("reason", pa.string()),  # short snake_case constant, e.g. "encrypted", "no_qa"
        ("detail", pa.string()),  # the error text / what was wrong, for a human
        ("source", pa.string()),  # the input file (or record) it came from
        ("raw", pa.string()),  # raw model output or other payload worth keeping; may be null
    ]
)


def stable_id(*parts: Any, length: int = 16) -> str:
    """Content hash of ``parts``: the ids of documents, chunks and QA pairs are built with it."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return digest[:length]


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """``pyarrow.fs`` filesystem and path for a local path or URI (s3://, gs://, file://)."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def make_rejects(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """A rejects table from dicts; missing optional fields become null."""
    rows = list(rows)
    columns = {name: [r.get(name) for r in rows] for name in REJECTS_SCHEMA.names}
    for name in ("detail", "source", "raw"):
        columns[name] = [None if v is None else str(v) for v in columns[name]]
    return pa.table(columns, schema=REJECTS_SCHEMA)


@dataclass
class ShardResult:
    """What one shard produced: its counts go into ``shards/<shard>.json`` and then ``stats.json``.

    ``in_rows`` inputs were read; ``passed`` of them yielded at least one output row and the rest
    were rejected (``rejected`` by reason), so ``in_rows == passed + sum(rejected)`` always holds.
    ``out_rows`` may differ from ``passed`` where a stage fans out (one chunk → many QA pairs).
    ``units`` holds secondary accounting in other units (parse: files as well as pages).
    """

    shard: str
    in_rows: int = 0
    out_rows: int = 0
    passed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    units: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "in": self.in_rows,
            "out": self.out_rows,
            "passed": self.passed,
            "rejected": dict(self.rejected),
            "counters": dict(self.counters),
            "units": self.units,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShardResult:
        return cls(
            shard=data["shard"],
            in_rows=data["in"],
            out_rows=data["out"],
            passed=data["passed"],
            rejected=dict(data.get("rejected", {})),
            counters=dict(data.get("counters", {})),
            units=dict(data.get("units", {})),
            seconds=float(data.get("seconds", 0.0)),
        )

    def check_accounting(self, stage: str) -> None:
        total = self.passed + sum(self.rejected.values())
        if total != self.in_rows:
            raise AssertionError(
                f"[{stage}] shard {self.shard}: {self.in_rows} inputs but {self.passed} passed + "
                f"{sum(self.rejected.values())} rejected = {total}; a row was lost or counted twice"
            )
        for unit, acc in self.units.items():
            unit_total = acc.get("passed", 0) + sum(acc.get("rejected", {}).values())
            if unit_total != acc.get("in", 0):
                raise AssertionError(f"[{stage}] shard {self.shard}: {unit} accounting is off: {acc}")


def merge_results(stage: str, results: Iterable[ShardResult], seconds: float) -> dict[str, Any]:
    """Totals of a stage's shards, in the ``stats.json`` form."""
    rejected: Counter[str] = Counter()
    counters: Counter[str] = Counter()
    units: dict[str, dict[str, Any]] = {}
    totals = {"in": 0, "out": 0, "passed": 0}
    shards = 0
    for r in results:
        shards += 1
        totals["in"] += r.in_rows
        totals["out"] += r.out_rows
        totals["passed"] += r.passed
        rejected.update(r.rejected)
        counters.update(r.counters)
        for unit, acc in r.units.items():
            agg = units.setdefault(unit, {"in": 0, "out": 0, "passed": 0, "rejected": {}})
            for key in ("in", "out", "passed"):
                agg[key] += acc.get(key, 0)
            for reason, n in acc.get("rejected", {}).items():
                agg["rejected"][reason] = agg["rejected"].get(reason, 0) + n
    return {
        "stage": stage,
        **totals,
        "rejected": dict(sorted(rejected.items())),
        "rejected_total": sum(rejected.values()),
        "counters": dict(sorted(counters.items())),
        "units": units,
        "shards": shards,
        "seconds": round(seconds, 3),
    }


class StageDir:
    """One stage's folder inside a run directory."""

    def __init__(self, run_root: str, stage: str):
        self.stage = stage
        self.uri = join(run_root, stage)
        self.fs, self.path = filesystem(self.uri)

    # -- layout ----------------------------------------------------------------------------------
    @property
    def data_path(self) -> str:
        return join(self.path, "data")

    @property
    def rejects_path(self) -> str:
        return join(self.path, "rejects")

    @property
    def shards_path(self) -> str:
        return join(self.path, "shards")

    @property
    def stats_path(self) -> str:
        return join(self.path, "stats.json")

    @property
    def success_path(self) -> str:
        return join(self.path, "_SUCCESS")

    def data_file(self, shard: str) -> str:
        return join(self.data_path, f"{shard}.parquet")

    def rejects_file(self, shard: str) -> str:
        return join(self.rejects_path, f"{shard}.parquet")

    # -- state -----------------------------------------------------------------------------------
    def _exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def is_complete(self) -> bool:
        return self._exists(self.success_path)

    def completed_fingerprint(self) -> str | None:
        if not self.is_complete():
            return None
        with self.fs.open_input_stream(self.success_path) as f:
            text = f.read().decode()
        return json.loads(text).get("fingerprint") if text.strip() else None

    def done_shards(self) -> set[str]:
        return {Path(info.path).stem for info in self._list(self.shards_path, ".json")}

    def _list(self, path: str, suffix: str) -> list[pafs.FileInfo]:
        if not self._exists(path):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(path, recursive=False))
        return sorted(
            (i for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffix)),
            key=lambda i: i.path,
        )

    def data_files(self) -> list[str]:
        """Output files of completed shards only (a killed run's partial file is never read)."""
        done = self.done_shards()
        return [i.path for i in self._list(self.data_path, ".parquet") if Path(i.path).stem in done]

    def rejects_files(self) -> list[str]:
        done = self.done_shards()
        return [i.path for i in self._list(self.rejects_path, ".parquet") if Path(i.path).stem in done]

    def shard_results(self) -> list[ShardResult]:
        results = []
        for info in self._list(self.shards_path, ".json"):
            with self.fs.open_input_stream(info.path) as f:
                results.append(ShardResult.from_json(json.loads(f.read())))
        return results

    # -- writing ---------------------------------------------------------------------------------
    def _write_atomic(self, path: str, payload: bytes | pa.Table) -> None:
        parent = path.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{path.rsplit('/', 1)[1]}"
        if isinstance(payload, pa.Table) and payload.num_rows == 0:
            # No row group at all: `datasets.load_dataset("parquet")` fails on a 0-row row group
            # ("BatchSize must be greater than 0"); readers still get the schema.
            with self.fs.open_output_stream(tmp) as f:
                pq.ParquetWriter(f, payload.schema, compression="zstd").close()
        elif isinstance(payload, pa.Table):
            pq.write_table(payload, tmp, filesystem=self.fs, compression="zstd")
        else:
            with self.fs.open_output_stream(tmp) as f:
                f.write(payload)
        self.fs.move(tmp, path)  # a rename locally; object stores never show a half-written object

    def write_shard(
        self, result: ShardResult, data: pa.Table | None, rejects: pa.Table | None = None
    ) -> None:
        """Write one shard's outputs and rejects, then its marker. Idempotent: same shard, same files.

        ``data`` may be None for a shard that only accounts for inputs (e.g. rejected files)."""
        result.check_accounting(self.stage)
        if data is not None:
            self._write_atomic(self.data_file(result.shard), data)
        if rejects is not None and rejects.num_rows:
            self._write_atomic(self.rejects_file(result.shard), rejects)
        self._write_atomic(
            join(self.shards_path, f"{result.shard}.json"), json.dumps(result.to_json()).encode()
        )

    def finish(self, fingerprint: str, seconds: float, extra: Mapping[str, Any] | None = None) -> dict:
        """Aggregate shard counts into ``stats.json`` and write ``_SUCCESS`` last."""
        stats = merge_results(self.stage, self.shard_results(), seconds)
        if extra:
            stats.update(extra)
        stats["fingerprint"] = fingerprint
        self._write_atomic(self.stats_path, json.dumps(stats, indent=2).encode())
        marker = {
            "fingerprint": fingerprint,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._write_atomic(self.success_path, json.dumps(marker).encode())
        return stats

    def write_json(self, relative: str, obj: Any) -> None:
        """A small JSON side file inside the stage folder (inventories, manifests)."""
        self._write_atomic(join(self.path, relative), json.dumps(obj, sort_keys=True).encode())

    def read_json_dir(self, relative: str) -> dict[str, Any]:
        """``{file stem: parsed JSON}`` of the ``*.json`` files in a sub-folder of the stage."""
        out = {}
        for info in self._list(join(self.path, relative), ".json"):
            with self.fs.open_input_stream(info.path) as f:
                out[Path(info.path).stem] = json.loads(f.read())
        return out

    def read_stats(self) -> dict[str, Any]:
        with self.fs.open_input_stream(self.stats_path) as f:
            return json.loads(f.read())

    def reset(self) -> None:
        """Delete everything this stage wrote (``--force``)."""
        if self._exists(self.path):
            self.fs.delete_dir(self.path)

    # -- reading ---------------------------------------------------------------------------------
    def read_table(self, columns: list[str] | None = None) -> pa.Table:
        """All completed output rows as one Arrow table (small stages, tests, notebooks)."""
        files = self.data_files()
        if not files:
            raise FileNotFoundError(f"stage {self.stage!r} has no completed output under {self.uri}")
        return pa.concat_tables(
            [pq.read_table(f, filesystem=self.fs, columns=columns) for f in files], promote_options="default"
        )

    def read_rejects(self) -> pa.Table:
        files = self.rejects_files()
        if not files:
            return REJECTS_SCHEMA.empty_table()
        return pa.concat_tables(
            [pq.read_table(f, filesystem=self.fs) for f in files], promote_options="default"
        )


class RunDir:
    """``<root>/<run_name>``: the home of one run's stages."""

    def __init__(self, root: str, name: str):
        self.uri = join(root, name) if "://" in root else str(Path(root).expanduser().resolve() / name)
        self.fs, self.path = filesystem(self.uri)

    def stage(self, name: str) -> StageDir:
        return StageDir(self.uri, name)

    def write_text(self, relative: str, text: str) -> str:
        path = join(self.path, relative)
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(path) as f:
            f.write(text.encode())
        return path
