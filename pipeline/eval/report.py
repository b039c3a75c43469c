"""Scores as the paper computes them, a Markdown table, a PNG chart and the comparison with the paper.

- A composite benchmark's score (SciBench, ChemBench, CS-Bench, OlympicArena) is the unweighted
  mean of its subtasks' accuracies; the paper's numbers fit this and not pooling (SPEC-eval §4).
- Averages are unweighted means over the reported benchmarks (MMLU is evaluated but excluded):
  General (MMLU-Pro, GPQA-D, SuperGPQA, SciBench, OlympicArena), Specific (ChemBench, CS-Bench,
  MedQA, MedMCQA, PubMedQA, PIQA), Math (GSM8K, MATH, MATH500) and All = the mean of the 14
  (not the mean of the category means). When benchmarks are missing, the averages cover the
  present ones and are labelled partial with the count, so they are never mistaken for the paper's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.benchmarks import MissingBenchmark, registry
from pipeline.eval.paper import PAPER_BENCHMARKS, PAPER_SCORES

CATEGORIES = ("general", "specific", "math")


def benchmark_scores(subtasks: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{option_order: {benchmark: {accuracy, accuracy_flexible, n, subtasks, extraction_failures, …}}}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for order in sorted({s["option_order"] for s in subtasks}):
        by_bench: dict[str, list[dict[str, Any]]] = {}
        for s in subtasks:
            if s["option_order"] == order:
                by_bench.setdefault(s["benchmark"], []).append(s)
        out[order] = {}
        for name, parts in by_bench.items():
            expected = len(registry.get(name).subtasks)
            out[order][name] = {
                "accuracy": sum(p["accuracy"] for p in parts) / len(parts),
                "accuracy_flexible": sum(p["accuracy_flexible"] for p in parts) / len(parts),
                "n": sum(p["n"] for p in parts),
                "subtasks": {p["subtask"]: round(p["accuracy"], 2) for p in parts},
                "complete": len(parts) == expected,
                **{
                    k: sum(p[k] for p in parts)
                    for k in ("extraction_failures", "timeouts", "request_errors", "truncated")
                },
            }
    return out


def averages(scores: dict[str, dict[str, Any]], key: str = "accuracy") -> dict[str, dict[str, Any]]:
    """Category and All averages over the reported benchmarks present (with how many of how many)."""
    out = {}
    groups = {c: [b.name for b in registry.BENCHMARKS if b.category == c] for c in CATEGORIES}
    groups["all"] = [n for n in PAPER_BENCHMARKS]
    for group, members in groups.items():
        present = [m for m in members if m in scores and scores[m].get("complete", True)]
        value = sum(scores[m][key] for m in present) / len(present) if present else None
        out[group] = {
            "value": value,
            "present": len(present),
            "of": len(members),
            "partial": len(present) < len(members),
        }
    return out


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown(
    scores: dict[str, dict[str, dict[str, Any]]],
    *,
    model: str,
    missing: list[MissingBenchmark],
    paper_model: str | None = None,
    notes: list[str] | None = None,
) -> str:
    orders = list(scores)
    paper = PAPER_SCORES.get(paper_model or "", {})
    lines = [f"# Evaluation of `{model}`", ""]
    header = ["Benchmark", "n"]
    for order in orders:
        header += [f"strict ({order})", f"flexible ({order})"]
    header += ["extraction failures", "timeouts", "request errors", "truncated"]
    if paper:
        header += [f"paper {paper_model}", "Δ strict (reference)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    first = orders[0]
    for bench in registry.BENCHMARKS:
        if not any(bench.name in scores[o] for o in orders):
            continue
        row = scores[first].get(bench.name) or next(
            scores[o][bench.name] for o in orders if bench.name in scores[o]
        )
        cells = [bench.display + ("" if bench.reported else " (not averaged)"), str(row["n"])]
        for order in orders:
            s = scores[order].get(bench.name)
            cells += [_fmt(s and s["accuracy"]), _fmt(s and s["accuracy_flexible"])]
        cells += [str(row[k]) for k in ("extraction_failures", "timeouts", "request_errors", "truncated")]
        if paper:
            ref = scores.get("reference", {}).get(bench.name)
            p = paper.get(bench.name)
            cells += [_fmt(p), _fmt(ref["accuracy"] - p if ref and p is not None else None)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Averages (as the paper computes them)", ""]
    avg_header = ["Average"] + [f"strict ({o})" for o in orders] + [f"flexible ({o})" for o in orders]
    if paper:
        avg_header.append(f"paper {paper_model}")
    lines += ["| " + " | ".join(avg_header) + " |", "|" + "---|" * len(avg_header)]
    per_order = {o: averages(scores[o]) for o in orders}
    per_order_flex = {o: averages(scores[o], "accuracy_flexible") for o in orders}
    for group in (*CATEGORIES, "all"):
        info = per_order[first][group]
        label = {"all": "All (14 benchmarks)"}.get(group, group.capitalize())
        if info["partial"]:
            label += f" — partial: {info['present']}/{info['of']} present"
        cells = (
            [label]
            + [_fmt(per_order[o][group]["value"]) for o in orders]
            + [_fmt(per_order_flex[o][group]["value"]) for o in orders]
        )
        if paper:
            cells.append(_fmt(paper.get("average")) if group == "all" else "–")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "strict = the reference evaluator's extraction and equivalence rules (what the paper's numbers use); "
        "flexible = strict or a lenient reading (last committed letter; math-verify; SciBench fractions and "
        "scientific notation). Composite benchmarks = unweighted mean of their subtasks.",
    ]
    if missing:
        lines += ["", "## Missing benchmark data (not evaluated)", ""]
        lines += [f"- {m.message()}" for m in missing]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def chart(
    scores: dict[str, dict[str, dict[str, Any]]],
    path: str | Path,
    *,
    model: str,
    paper_model: str | None = None,
) -> None:
    """Grouped bars per benchmark: strict per option order, and the paper's number when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [b for b in registry.BENCHMARKS if any(b.name in scores[o] for o in scores)]
    series: list[tuple[str, list[float]]] = []
    for order in scores:
        series.append(
            (f"{model} ({order})", [scores[order].get(b.name, {}).get("accuracy", 0.0) for b in names])
        )
    paper = PAPER_SCORES.get(paper_model or "")
    if paper:
        series.append((f"paper: {paper_model}", [paper.get(b.name, 0.0) for b in names]))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4.2))
    for i, (label, values) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, values, width=width, label=label)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([b.display for b in names], rotation=35, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Science benchmarks: {model}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
