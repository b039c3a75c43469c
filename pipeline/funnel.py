"""The funnel of a run: how many records were left after every stage, and why the rest went.

Reads every ``<run>/<stage>/stats.json`` in pipeline order and returns one row per finished stage
(in, out, rejected by reason); :func:`plot_funnel` draws it as a horizontal bar chart (PNG, Agg
backend) with the drop reasons annotated, :func:`format_funnel` as a text table.
"""

from __future__ import annotations

from typing import Any

from pipeline.rundir import RunDir

# Pipeline order; stages not listed here are appended alphabetically.
STAGE_ORDER = (
    "parse", "chunk", "extract_qa", "dedup", "refine_input", "refine", "cot_judge", "cot_distill", "filter_qa",
    "decontam_retrieve", "decontaminate", "reference_answer", "finalize", "mixture",
)  # fmt: skip


def collect_funnel(run: RunDir) -> list[dict[str, Any]]:
    """One entry per finished stage: ``stage, in, out, rejected (dict), rejected_total, seconds``."""
    import pyarrow.fs as pafs

    found = []
    if run.fs.get_file_info(run.path).type == pafs.FileType.Directory:
        for info in run.fs.get_file_info(pafs.FileSelector(run.path)):
            if info.type == pafs.FileType.Directory and not info.base_name.startswith("_"):
                found.append(info.base_name)
    order = [s for s in STAGE_ORDER if s in found] + sorted(s for s in found if s not in STAGE_ORDER)
    rows = []
    for name in order:
        stage = run.stage(name)
        if stage.fs.get_file_info(stage.stats_path).type != pafs.FileType.File:
            continue
        stats = stage.read_stats()
        rows.append({"stage": name, "in": stats["in"], "out": stats["out"], "passed": stats["passed"],
                     "rejected": stats.get("rejected", {}), "rejected_total": stats.get("rejected_total", 0),
                     "seconds": stats.get("seconds", 0.0), "complete": stage.is_complete()})  # fmt: skip
    return rows


def format_funnel(rows: list[dict[str, Any]]) -> str:
    header = f"{'stage':<18} {'in':>9} {'out':>9} {'rejected':>9}  reasons"
    lines = [header, "-" * len(header)]
    for r in rows:
        reasons = (
            ", ".join(f"{k}={v}" for k, v in sorted(r["rejected"].items(), key=lambda kv: -kv[1])) or "-"
        )
        mark = "" if r["complete"] else "  (incomplete)"
        lines.append(f"{r['stage']:<18} {r['in']:>9} {r['out']:>9} {r['rejected_total']:>9}  {reasons}{mark}")
    return "\n".join(lines)


def plot_funnel(rows: list[dict[str, Any]], path: str, title: str = "Records after each stage") -> str:
    """A PNG bar chart of ``out`` per stage (log scale when counts span >2 orders of magnitude)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["stage"] for r in rows][::-1]
    outs = [r["out"] for r in rows][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    bars = ax.barh(names, outs, color="#4C72B0")
    positive = [o for o in outs if o > 0]
    if positive and max(positive) / min(positive) > 100:
        ax.set_xscale("log")
    for bar, r in zip(bars, rows[::-1]):
        top = sorted(r["rejected"].items(), key=lambda kv: -kv[1])[:2]
        note = f"{r['out']:,}" + (f"  (−{r['rejected_total']:,}: " + ", ".join(f"{k} {v:,}" for k, v in top) + ")"
                                  if r["rejected_total"] else "")  # fmt: skip
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + note, va="center", fontsize=8)
    ax.set_xlabel("records written")
    ax.set_title(title)
    ax.margins(x=0.45)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
