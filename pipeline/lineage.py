"""Per-record lineage across stages: from a final row (or an evaluation item) back to its source.

Ids are content hashes carried by every row (``qa_id`` → ``chunk_id`` → ``doc_id``), so a lookup
is a filtered read of each stage's Parquet files (``pyarrow.dataset`` pushes the filter down;
nothing is loaded whole). For a QA pair it collects:

- the final row, or the stage and reason that dropped it (rejects are searched too);
- the extraction: standard, original question/answer, the raw model output (from the row when
  ``keep_raw_output`` is on, otherwise from the LLM response cache) and its provenance;
- the dedup cluster (``cluster_id``, ``duplicate_count``, the near-duplicates it absorbed);
- refinement, CoT judge/distillation, filter and decontamination verdicts with their raw outputs;
- the chunk (index, page span, token count, text) and the document (source file, title, licence).

For an evaluation item (``<subtask>-<index>``) it collects its predictions and the training rows
whose decontamination candidates included it, with the judge's verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from pipeline.rundir import RunDir, StageDir, join

# Stages that carry one row per QA pair, from last to first: the first that has the id holds the
# most columns (every stage adds its fields to the row).
QA_STAGES = (
    "reference_answer", "decontaminate", "filter_qa", "cot_distill", "cot_judge", "refine",
    "refine_input", "dedup", "extract_qa",
)  # fmt: skip
VERDICT_FIELDS = (
    "standard", "question", "answer", "cluster_id", "duplicate_count", "refined_question", "refined_answer",
    "refineqa_output", "judge_cot_result", "judge_cot_output", "distill_cot", "filtering_qa_output",
    "decontamination_res", "retrieved_benchmark", "extract_reference_answer_output", "reference_answer",
)  # fmt: skip
GEN_FIELDS = (
    "gen",
    "refine_gen",
    "cot_judge_gen",
    "distill_gen",
    "filter_gen",
    "decontam_gen",
    "reference_gen",
)


def _dataset(stage: StageDir, files: list[str]) -> pads.Dataset | None:
    if not files:
        return None
    return pads.dataset(files, filesystem=stage.fs, format="parquet")


def _find(stage: StageDir, column: str, value: str, rejects: bool = False) -> list[dict[str, Any]]:
    files = stage.rejects_files() if rejects else stage.data_files()
    dataset = _dataset(stage, files)
    if dataset is None or column not in dataset.schema.names:
        return []
    return dataset.to_table(filter=pc.field(column) == value).to_pylist()


def _find_in(stage: StageDir, column: str, needle: str) -> list[dict[str, Any]]:
    dataset = _dataset(stage, stage.rejects_files())
    if dataset is None:
        return []
    return dataset.to_table(filter=pc.match_substring(pc.field(column), needle)).to_pylist()


def _cache_rows(run: RunDir, stage: str, unit_id: str) -> list[dict[str, Any]]:
    path = join(run.path, "_llm_cache", stage)
    if run.fs.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    files = [
        i.path
        for i in run.fs.get_file_info(pafs.FileSelector(path, recursive=True))
        if i.type == pafs.FileType.File and i.path.endswith(".parquet")
    ]
    if not files:
        return []
    table = pads.dataset(files, filesystem=run.fs, format="parquet").to_table(
        filter=pc.field("unit_id") == unit_id
    )
    return sorted(table.to_pylist(), key=lambda r: r.get("created_at") or 0)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def qa_lineage(run: RunDir, qa_id: str) -> dict[str, Any]:
    """Everything the run knows about one QA pair, stage by stage."""
    out: dict[str, Any] = {"qa_id": qa_id}
    final = _find(run.stage("finalize"), "qa_id", qa_id)
    out["final"] = final[0] if final else None
    row = None
    for name in QA_STAGES:
        rows = _find(run.stage(name), "qa_id", qa_id)
        if rows:
            row, out["last_stage_with_row"] = rows[0], name
            break
    if row is None:
        raise KeyError(f"qa_id {qa_id} is not in any stage of {run.uri}")
    out["fields"] = {k: _plain(row[k]) for k in VERDICT_FIELDS if k in row and row[k] is not None}
    out["provenance"] = {k: _plain(row[k]) for k in GEN_FIELDS if row.get(k)}
    # Where it was dropped (if it was): the first stage after its last row whose rejects hold it.
    out["dropped"] = None
    for name in reversed(QA_STAGES[: QA_STAGES.index(out["last_stage_with_row"])]):
        rejected = _find(run.stage(name), "input_id", qa_id, rejects=True)
        if rejected:
            r = rejected[0]
            out["dropped"] = {
                "stage": name,
                "reason": r["reason"],
                "detail": r["detail"],
                "raw": r.get("raw"),
            }
            break
    if out["dropped"] is None and out["final"] is None:
        for name in ("finalize",):
            rejected = _find(run.stage(name), "input_id", qa_id, rejects=True)
            if rejected:
                out["dropped"] = {
                    "stage": name,
                    "reason": rejected[0]["reason"],
                    "detail": rejected[0]["detail"],
                }
    # Extraction: the raw model output for this chunk and standard.
    chunk_id, standard = row.get("chunk_id"), row.get("standard")
    raw = row.get("raw_output")
    if raw is None and chunk_id and standard:
        cached = _cache_rows(run, "extract_qa", f"{chunk_id}:{standard}")
        raw = cached[-1]["text"] if cached else None
    out["extraction_raw_output"] = raw
    # Dedup: the near-duplicates this row's cluster absorbed.
    cluster = row.get("cluster_id")
    if cluster:
        out["dedup_cluster"] = {
            "cluster_id": cluster,
            "duplicate_count": row.get("duplicate_count"),
            "dropped_duplicates": [r["input_id"] for r in _find_in(run.stage("dedup"), "detail", cluster)],
        }
    # The chunk and its document.
    if chunk_id:
        chunks = _find(run.stage("chunk"), "chunk_id", chunk_id)
        out["chunk"] = chunks[0] if chunks else None
        if chunks:
            pages = run.stage("parse")
            doc = _find(pages, "doc_id", chunks[0]["doc_id"])
            first = doc[0] if doc else {}
            out["document"] = {
                "doc_id": chunks[0]["doc_id"],
                "source": first.get("source"),
                "title": first.get("title"),
                "licence": first.get("licence"),
                "subject": first.get("subject"),
                "n_pages": first.get("n_pages"),
                "page_span": [chunks[0]["page_start"], chunks[0]["page_end"]],
            }
    return out


def eval_item_lineage(run: RunDir, item_id: str) -> dict[str, Any]:
    """An evaluation item: its predictions and the training rows that retrieved it in decontamination."""
    out: dict[str, Any] = {"item_id": item_id, "predictions": [], "training_rows_that_retrieved_it": []}
    evaluate = run.stage("evaluate")
    for row in _find(evaluate, "item_id", item_id):
        out["predictions"].append({k: _plain(v) for k, v in row.items()})
    for name in ("decontaminate", "reference_answer"):
        stage = run.stage(name)
        dataset = _dataset(stage, stage.data_files())
        if dataset is None or "retrieved_benchmark" not in dataset.schema.names:
            continue
        table = dataset.to_table(columns=["qa_id", "retrieved_benchmark"])
        for qa_id, candidates in zip(table["qa_id"].to_pylist(), table["retrieved_benchmark"].to_pylist()):
            for cand in candidates or []:
                if cand.get("item_id") == item_id:
                    out["training_rows_that_retrieved_it"].append({"qa_id": qa_id, **_plain(cand)})
        break
    rejected = _find_in(run.stage("decontaminate"), "detail", item_id)
    out["dropped_as_contaminated"] = [r["input_id"] for r in rejected]
    return out


def lookup(run: RunDir, key: str) -> dict[str, Any]:
    """A qa_id, a chunk_id (its QA pairs), a final-dataset row number (``row:N``) or an eval item id."""
    if key.startswith("row:"):
        stage = run.stage("finalize")
        table = stage.read_table(columns=["qa_id"])
        index = int(key.removeprefix("row:"))
        if not 0 <= index < table.num_rows:
            raise KeyError(f"row {index} out of range: the final dataset has {table.num_rows} rows")
        return qa_lineage(run, table["qa_id"][index].as_py())
    if _find(run.stage("extract_qa"), "qa_id", key) or _find(
        run.stage("extract_qa"), "input_id", key, rejects=True
    ):
        return qa_lineage(run, key)
    pairs = _find(run.stage("extract_qa"), "chunk_id", key)
    if pairs:
        return {"chunk_id": key, "qa_pairs": [qa_lineage(run, p["qa_id"]) for p in pairs]}
    if _find(run.stage("evaluate"), "item_id", key):
        return eval_item_lineage(run, key)
    raise KeyError(
        f"{key!r} is not a qa_id, chunk_id, row:N or evaluated item id of the run at {run.uri} "
        "(qa_ids are in finalize/data/*.parquet; item ids look like gsm8k-12)"
    )


def render(info: dict[str, Any]) -> str:
    """A human-readable report of :func:`lookup`'s result."""
    return "\n".join(_render(info))


def _render(info: dict[str, Any], indent: str = "") -> Iterable[str]:
    if "qa_pairs" in info:
        yield f"{indent}chunk {info['chunk_id']}: {len(info['qa_pairs'])} QA pair(s)"
        for pair in info["qa_pairs"]:
            yield from _render(pair, indent + "  ")
        return
    if "item_id" in info:
        yield f"{indent}evaluation item {info['item_id']}"
        for p in info["predictions"]:
            yield f"{indent}  prediction ({p.get('option_order', '')}): extracted={p.get('extracted')!r} gold={p.get('gold')!r} correct={p.get('correct')}"
        for r in info["training_rows_that_retrieved_it"]:
            yield f"{indent}  retrieved by training row {r['qa_id']} (score {r.get('similarity_score')}, verdict {r.get('verdict')})"
        if info["dropped_as_contaminated"]:
            yield f"{indent}  training rows dropped as contaminated by it: {info['dropped_as_contaminated']}"
        return
    yield f"{indent}qa_id {info['qa_id']}"
    if info.get("final"):
        yield f"{indent}  final row: question={_short(info['final'].get('question'))}"
        yield f"{indent}             answer={_short(info['final'].get('answer'))} reference={_short(info['final'].get('reference_answer'))}"
    if info.get("dropped"):
        d = info["dropped"]
        yield f"{indent}  DROPPED at {d['stage']}: {d['reason']} ({d['detail']})"
    doc = info.get("document")
    if doc:
        yield f"{indent}  document {doc['doc_id']}: {doc['source']} (title {doc['title']!r}, licence {doc['licence']!r}, {doc['subject']})"
        yield f"{indent}  pages {doc['page_span'][0]}-{doc['page_span'][1]} of {doc['n_pages']}"
    chunk = info.get("chunk")
    if chunk:
        yield f"{indent}  chunk {chunk['chunk_id']} (#{chunk['chunk_index']}, {chunk['n_tokens']} tokens): {_short(chunk['text'])}"
    fields = info.get("fields", {})
    for key in VERDICT_FIELDS:
        if key in fields and key != "retrieved_benchmark":
            yield f"{indent}  {key}: {_short(fields[key])}"
    for cand in fields.get("retrieved_benchmark") or []:
        yield (
            f"{indent}  decontam candidate {cand.get('item_id')} score={cand.get('similarity_score')} "
            f"verdict={cand.get('verdict')}"
        )
    if info.get("dedup_cluster"):
        c = info["dedup_cluster"]
        yield f"{indent}  dedup cluster {c['cluster_id']}: {c['duplicate_count']} member(s); dropped duplicates {c['dropped_duplicates']}"
    if info.get("extraction_raw_output") is not None:
        yield f"{indent}  raw extraction output: {_short(info['extraction_raw_output'], 300)}"
    for key, gen in info.get("provenance", {}).items():
        if isinstance(gen, dict):
            yield f"{indent}  {key}: {gen.get('model')} {gen.get('prompt')} finish={gen.get('finish_reason')}"


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_json(info: dict[str, Any]) -> str:
    return json.dumps(info, indent=2, default=lambda v: v.as_py() if isinstance(v, pa.Scalar) else str(v))
