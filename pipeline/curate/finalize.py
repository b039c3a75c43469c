"""S8 finalize: the release table and its dataset card.

Release columns (TextbookReasoning's on the hub): ``question`` (= ``refined_question``),
``answer`` (= ``distill_cot`` when present, else ``refined_answer``), ``subject``,
``reference_answer``; plus, with ``lineage: true``, ``qa_id``, ``chunk_id``, ``doc_id`` and
``cluster_id`` so every row traces back to its chunk and document. The Parquet files load with
``datasets.load_dataset("parquet", data_files=".../finalize/data/*.parquet")``.

The card (``finalize/README.md``) lists the record count after every stage, the reasons rows were
dropped, and the model and prompt version each LLM stage used, read from the stages' stats.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.curate.config import FinalizeConfig
from pipeline.rundir import RunDir, ShardResult, StageDir, join, make_rejects
from pipeline.schema import require_columns

STAGE = "finalize"
EMPTY_FIELD = "empty_field"

RELEASE_SCHEMA = pa.schema(
    [
        ("question", pa.string()),
        ("answer", pa.string()),
        ("subject", pa.string()),
        ("reference_answer", pa.string()),
    ]
)
LINEAGE_COLUMNS = ("qa_id", "chunk_id", "doc_id", "cluster_id")


def finalize_table(table: pa.Table, cfg: FinalizeConfig, source: str, stage: str = STAGE) -> tuple[pa.Table, pa.Table, ShardResult]:  # fmt: skip
    """Release rows of one shard; rows with an empty question or answer are rejected."""
    require_columns(stage, table.column_names, ["qa_id", "refined_question", "refined_answer", "subject",
                                                "reference_answer"])  # fmt: skip
    distilled = (
        table["distill_cot"] if "distill_cot" in table.column_names else pa.nulls(table.num_rows, pa.string())
    )
    answer = pc.coalesce(distilled, table["refined_answer"])
    columns: dict[str, Any] = {
        "question": table["refined_question"], "answer": answer, "subject": table["subject"],
        "reference_answer": table["reference_answer"],
    }  # fmt: skip
    schema = RELEASE_SCHEMA
    if cfg.lineage:
        for name in LINEAGE_COLUMNS:
            columns[name] = (
                table[name] if name in table.column_names else pa.nulls(table.num_rows, pa.string())
            )
            schema = schema.append(pa.field(name, pa.string()))
    full = pa.table(columns, schema=schema)
    bad = pc.or_(
        pc.or_(pc.is_null(full["question"]), pc.equal(pc.utf8_trim_whitespace(full["question"]), "")),
        pc.or_(pc.is_null(full["answer"]), pc.equal(pc.utf8_trim_whitespace(full["answer"]), "")),
    )
    bad = pc.fill_null(bad, True)
    data = full.filter(pc.invert(bad))
    rejected_ids = table.filter(bad)["qa_id"].to_pylist()
    rejects = make_rejects({"input_id": i, "stage": stage, "reason": EMPTY_FIELD, "source": source,
                            "detail": "question or answer is empty"} for i in rejected_ids)  # fmt: skip
    result = ShardResult(shard=Path(source).stem, in_rows=table.num_rows, out_rows=data.num_rows,
                         passed=data.num_rows, rejected={EMPTY_FIELD: len(rejected_ids)} if rejected_ids else {})  # fmt: skip
    return data, rejects, result


class Finalizer:
    """A ``ray_jobs.common.map_shards`` worker: one shard of release rows."""

    def __init__(self, run_uri: str, cfg: FinalizeConfig, stage: str = STAGE):
        self.cfg = cfg
        self.source = StageDir(run_uri, cfg.input_stage)
        self.target = StageDir(run_uri, stage)

    def __call__(self, shard: dict[str, Any]) -> ShardResult:
        started = time.time()
        table = pq.read_table(shard["path"], filesystem=self.source.fs)
        data, rejects, result = finalize_table(table, self.cfg, shard["path"], self.target.stage)
        result.seconds = round(time.time() - started, 3)
        self.target.write_shard(result, data, rejects)
        return result


def stage_summaries(run: RunDir, stages: tuple[str, ...]) -> list[dict[str, Any]]:
    """``stats.json`` of each finished stage in order (absent stages are skipped)."""
    out = []
    for name in stages:
        stage = run.stage(name)
        if stage.fs.get_file_info(stage.stats_path).type.name != "File":
            continue
        out.append(stage.read_stats())
    return out


def dataset_card(
    run: RunDir, cfg: FinalizeConfig, final_stats: dict[str, Any], subjects: dict[str, int]
) -> str:
    """The README.md of the release: counts per stage, drop reasons, models and prompts."""
    rows = final_stats["passed"]
    lines = [
        "---",
        "license: other",
        "task_categories: [question-answering, text-generation]",
        "language: [en]",
        f"pretty_name: {cfg.dataset_name}",
        "configs:",
        "- config_name: default",
        "  data_files: data/*.parquet",
        "---",
        "",
        f"# {cfg.dataset_name}",
        "",
        f"{rows} question–answer pairs with reference answers, mined from textbooks and curated by the "
        "MegaScience-on-Ray pipeline (extraction, MinHash dedup, refinement with the source chunk, CoT "
        "judgement and distillation, LLM quality filter, benchmark decontamination, reference-answer "
        "extraction).",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("parquet", data_files="data/*.parquet")["train"]',
        "```",
        "",
        "## Columns",
        "",
        "- `question`: the refined, self-contained question",
        "- `answer`: the step-by-step answer (the distilled CoT where the refined answer had no reasoning)",
        "- `subject`: one of math, physics, chemistry, biology, medicine, cs, economics",
        "- `reference_answer`: the concise final answer",
    ]
    if cfg.lineage:
        lines.append(
            "- `qa_id`, `chunk_id`, `doc_id`, `cluster_id`: lineage ids (content hashes) back to the source"
        )
    lines += ["", "## Subjects", "", "| subject | rows |", "|---|---:|"]
    lines += [f"| {s} | {n} |" for s, n in sorted(subjects.items())]
    lines += ["", "## How the rows were made", "", "| stage | in | out | rejected | reasons | model | prompt |",
              "|---|---:|---:|---:|---|---|---|"]  # fmt: skip
    for s in [*stage_summaries(run, cfg.card_stages), final_stats]:
        reasons = ", ".join(f"{k}: {v}" for k, v in s.get("rejected", {}).items()) or "–"
        lines.append(f"| {s['stage']} | {s['in']} | {s['out']} | {s.get('rejected_total', 0)} | {reasons} | "
                     f"{s.get('model') or s.get('embedding_model') or '–'} | {s.get('prompt') or '–'} |")  # fmt: skip
    lines += [
        "",
        "Counts are work units: pages for parse, chunk × standard for extraction, rows elsewhere.",
        "",
    ]
    return "\n".join(lines)


def write_card(run: RunDir, cfg: FinalizeConfig, stage: StageDir, final_stats: dict[str, Any]) -> str:
    subjects: dict[str, int] = {}
    for f in stage.data_files():
        for s in pq.read_table(f, filesystem=stage.fs, columns=["subject"])["subject"].to_pylist():
            subjects[s] = subjects.get(s, 0) + 1
    path = join(stage.path, "README.md")
    with stage.fs.open_output_stream(path) as f:
        f.write(dataset_card(run, cfg, final_stats, subjects).encode())
    with stage.fs.open_output_stream(join(stage.path, "subjects.json")) as f:
        f.write(json.dumps(subjects, indent=2).encode())
    return path


def export(stage: StageDir, export_dir: str) -> str:
    """Copy the data files and the card to ``export_dir`` (any pyarrow filesystem URI)."""
    from pipeline.rundir import filesystem

    fs, root = filesystem(export_dir)
    fs.create_dir(join(root, "data"), recursive=True)
    for src in stage.data_files():
        with (
            stage.fs.open_input_stream(src) as f_in,
            fs.open_output_stream(join(root, "data", Path(src).name)) as f_out,
        ):
            f_out.write(f_in.read())
    with (
        stage.fs.open_input_stream(join(stage.path, "README.md")) as f_in,
        fs.open_output_stream(join(root, "README.md")) as f_out,
    ):
        f_out.write(f_in.read())
    return root
