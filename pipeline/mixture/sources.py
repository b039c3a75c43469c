"""Loading a mixture source into the common record shape.

Every source becomes rows of :data:`SOURCE_SCHEMA`:
``qa_id`` (``stable_id(source, question, answer)``: a re-read never duplicates), ``question``,
``answer`` (a list-valued answer takes its first element, as the Data-Mixture files store
responses), ``reference_answer`` (null when the source has none), ``subject``, ``source``.
Rows without a question or answer are rejected (``missing_field``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.mixture.config import MixtureSource
from pipeline.rundir import ShardResult, StageDir, make_rejects, stable_id

STAGE = "mixture_sources"
MISSING_FIELD = "missing_field"

SOURCE_SCHEMA = pa.schema(
    [
        ("qa_id", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("reference_answer", pa.string()),
        ("subject", pa.string()),
        ("source", pa.string()),
    ]
)


def _read_local(path: Path) -> list[dict[str, Any]]:
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in (".parquet", ".jsonl", ".json"))
        if path.is_dir()
        else [path]
    )
    if not files:
        raise FileNotFoundError(f"mixture source {path}: no .parquet/.jsonl/.json files")
    rows: list[dict[str, Any]] = []
    for f in files:
        if f.suffix == ".parquet":
            rows += pq.read_table(f).to_pylist()
        elif f.suffix == ".jsonl":
            with f.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise ValueError(
                                f"{f}:{n}: not valid JSON ({exc}); fix or remove the line"
                            ) from None
        else:
            data = json.loads(f.read_text(encoding="utf-8"))
            rows += data if isinstance(data, list) else [data]
    return rows


def read_source_rows(source: MixtureSource, run_uri: str) -> list[dict[str, Any]]:
    """The raw records of a source (a stage of the run at ``run_uri``, local files, or a hub dataset)."""
    if source.path.startswith("stage:"):
        rows = StageDir(run_uri, source.path.removeprefix("stage:")).read_table().to_pylist()
    elif source.path.startswith("hf:"):
        import datasets

        ds = datasets.load_dataset(source.path.removeprefix("hf:"), split=source.split)
        rows = ds.select(range(min(source.limit, len(ds)))).to_list() if source.limit else ds.to_list()
    else:
        rows = _read_local(Path(source.path).expanduser())
    return rows[: source.limit] if source.limit else rows


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    return str(value)


def normalize(source: MixtureSource, records: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table, ShardResult]:
    """Common-shape rows of one source, its rejects and counts (shard = source name)."""
    out, rejects = [], []
    for i, rec in enumerate(records):
        question = _text(rec.get(source.question_field))
        answer = _text(rec.get(source.answer_field))
        if not question or not answer or not question.strip() or not answer.strip():
            missing = source.question_field if not (question and question.strip()) else source.answer_field
            rejects.append({"input_id": f"{source.name}:{i}", "stage": STAGE, "reason": MISSING_FIELD,
                            "detail": f"record {i} has no {missing!r}", "source": source.path})  # fmt: skip
            continue
        reference = _text(rec.get(source.reference_field)) if source.reference_field else None
        subject = _text(rec.get(source.subject_field)) if source.subject_field else None
        out.append({"qa_id": rec.get("qa_id") or stable_id(source.name, question, answer), "question": question,
                    "answer": answer, "reference_answer": reference, "subject": subject or source.subject,
                    "source": source.name})  # fmt: skip
    result = ShardResult(shard=source.name, in_rows=len(records), out_rows=len(out), passed=len(out),
                         rejected={MISSING_FIELD: len(rejects)} if rejects else {})  # fmt: skip
    return pa.Table.from_pylist(out, schema=SOURCE_SCHEMA), make_rejects(rejects), result
