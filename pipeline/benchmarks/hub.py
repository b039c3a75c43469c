"""Fetch a benchmark by its Hugging Face name and map its rows onto the reference record schema.

Used only when the local file is absent and hub access is allowed (``source="hub"``, or
``source="auto"`` without ``HF_HUB_OFFLINE=1``). Each converter takes the hub rows and returns
records in the reference schema, which then go through the same reader as a local file, so an item
is the same whichever way it arrived. Hub copies whose layout differs from the reference only in
field names are converted here; benchmarks with no faithful hub copy (ChemBench's reference dump,
CS-Bench's English test split, MedQA's 5-option test, PubMedQA's 500-question test set) have no
:class:`HubSource` and must be supplied as files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pipeline.benchmarks.types import HubSource

Rows = list[dict[str, Any]]


def hub_allowed() -> bool:
    """Hub access is allowed unless ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` say otherwise."""
    return not any(
        os.environ.get(v, "0").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def fetch(hub: HubSource) -> Rows:
    """Download ``hub`` with ``datasets.load_dataset`` and convert its rows to the reference schema."""
    from datasets import load_dataset

    configs = hub.config.split(",") if hub.config else [None]
    rows: Rows = []
    for config in configs:
        dataset = load_dataset(hub.path, config, split=hub.split)
        rows.extend(dataset.to_list())
    return convert(hub, rows)


def convert(hub: HubSource, rows: Rows) -> Rows:
    """Apply the hub source's converter (identity when the hub rows are already in the reference schema)."""
    if hub.convert is None:
        return rows
    return CONVERTERS[hub.convert](rows)


def gsm8k_main(rows: Rows) -> Rows:
    """openai/gsm8k ``answer`` = rationale + ``#### 18`` -> reference {question, cot, answer, id}."""
    out = []
    for i, row in enumerate(rows):
        rationale, _, final = str(row["answer"]).rpartition("####")
        out.append(
            {
                "question": row["question"],
                "cot": rationale.strip(),
                "answer": final.strip(),
                "id": f"gsm8k-test-{i}",
            }
        )
    return out


def _scibench(sources: tuple[str, ...]) -> Callable[[Rows], Rows]:
    # xw27/scibench keeps all textbooks in one split; the reference groups them by subject and
    # leaves out "calc" (the calculus book).
    def select(rows: Rows) -> Rows:
        return [row for row in rows if str(row.get("source", "")).strip() in sources]

    return select


def olympic_arena_text_en(rows: Rows) -> Rows:
    """GAIR/OlympicArena: keep the English, text-only problems (the reference's ``olympic_arena_en_text``)."""
    keep = []
    for row in rows:
        language = str(row.get("language", "")).upper()
        modality = str(row.get("modality", "")).lower()
        if language in ("EN", "ENGLISH") and ("text-only" in modality or not row.get("figure_urls")):
            keep.append(row)
    return keep


def _math_type(rows: Rows) -> Rows:
    """EleutherAI/hendrycks_math rows already carry problem/level/type/solution."""
    return [{k: row[k] for k in ("problem", "level", "type", "solution") if k in row} for row in rows]


CONVERTERS: dict[str, Callable[[Rows], Rows]] = {
    "gsm8k_main": gsm8k_main,
    "scibench_physics": _scibench(("fund", "thermo", "class")),
    "scibench_chemistry": _scibench(("atkins", "matter", "chemmc", "quan")),
    "scibench_math": _scibench(("stat", "diff")),
    "olympic_arena_text_en": olympic_arena_text_en,
    "math_types": _math_type,
}
