"""The contamination report of a decontamination run: per benchmark, which items were hit,
how many training rows were dropped for them, and example pairs.

Built from the ``decontaminate`` stage's rejects (``contaminated`` rows carry their hits as JSON)
and the retrieval index's pool counts; written beside the stage's stats as ``report.json`` and
``report.md`` (a table a reviewer reads first).
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.decontam.judge import CONTAMINATED
from pipeline.rundir import StageDir, join


def build_report(judge_stage: StageDir, index_meta: dict[str, Any], examples: int = 5) -> dict[str, Any]:
    """The report as a dict: ``benchmarks`` (one entry per pool entry) and totals."""
    rejects = judge_stage.read_rejects()
    per: dict[str, dict[str, Any]] = {
        name: {"benchmark": name, "pool_items": n, "items_hit": set(), "rows_dropped": 0, "examples": []}
        for name, n in sorted(index_meta.get("counts", {}).items())
    }
    dropped = 0
    for row in rejects.to_pylist():
        if row["reason"] != CONTAMINATED:
            continue
        dropped += 1
        info = json.loads(row["detail"])
        for bench in {h["benchmark"] for h in info["hits"]}:
            per.setdefault(bench, {"benchmark": bench, "pool_items": 0, "items_hit": set(), "rows_dropped": 0,
                                   "examples": []})["rows_dropped"] += 1  # fmt: skip
        for hit in info["hits"]:
            entry = per[hit["benchmark"]]
            entry["items_hit"].add(hit["item_id"])
            if len(entry["examples"]) < examples:
                entry["examples"].append({"qa_id": row["input_id"], "training_question": info["question"],
                                          "item_id": hit["item_id"], "benchmark_question": hit["question"],
                                          "similarity": round(float(hit["similarity_score"]), 4)})  # fmt: skip
    benchmarks = []
    for entry in per.values():
        benchmarks.append(
            {**entry, "items_hit": len(entry["items_hit"]), "hit_item_ids": sorted(entry["items_hit"])}
        )
    stats = judge_stage.read_stats() if judge_stage.is_complete() else {}
    return {
        "rows_checked": stats.get("in"),
        "rows_kept": stats.get("passed"),
        "rows_dropped_contaminated": dropped,
        "rows_dropped_unparseable": stats.get("rejected", {}).get("unparseable_verdict", 0),
        "embedding_model": index_meta.get("model"),
        "pool_rows": index_meta.get("rows"),
        "missing_benchmarks": index_meta.get("missing", []),
        "benchmarks": benchmarks,
    }


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Contamination report",
        "",
        f"Rows checked: {report['rows_checked']}, kept: {report['rows_kept']}, dropped as contaminated: "
        f"{report['rows_dropped_contaminated']}, dropped without a readable verdict: "
        f"{report['rows_dropped_unparseable']}. Embedding model: `{report['embedding_model']}`, pool of "
        f"{report['pool_rows']} benchmark questions.",
        "",
        "| benchmark | pool items | items hit | training rows dropped |",
        "|---|---:|---:|---:|",
    ]
    for b in report["benchmarks"]:
        lines.append(f"| {b['benchmark']} | {b['pool_items']} | {b['items_hit']} | {b['rows_dropped']} |")
    if report["missing_benchmarks"]:
        lines += ["", "Not checked (files missing): " + ", ".join(report["missing_benchmarks"])]
    for b in report["benchmarks"]:
        if b["examples"]:
            lines += ["", f"## {b['benchmark']}", ""]
            for e in b["examples"]:
                lines.append(f"- `{e['qa_id']}` ↔ `{e['item_id']}` (cosine {e['similarity']}):  ")
                lines.append(f"  training: {e['training_question'][:300]!r}  ")
                lines.append(f"  benchmark: {e['benchmark_question'][:300]!r}")
    return "\n".join(lines) + "\n"


def write_report(judge_stage: StageDir, report: dict[str, Any]) -> str:
    """``report.json`` and ``report.md`` in the stage folder; returns the Markdown path."""
    for name, payload in (("report.json", json.dumps(report, indent=2, ensure_ascii=False)),
                          ("report.md", render_markdown(report))):  # fmt: skip
        with judge_stage.fs.open_output_stream(join(judge_stage.path, name)) as f:
            f.write(payload.encode())
    return join(judge_stage.path, "report.md")
