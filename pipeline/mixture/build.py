"""Per-shard workers of the mixture job (``ray_jobs.common.map_shards`` workers).

- :class:`SourceLoader`: one source → ``mixture_sources/<name>.parquet`` (common record shape).
- :class:`MixtureSelector`: one source's de-duplicated, decontaminated (and, for ``difficulty``,
  graded) rows → its selected subset in ``mixture/<name>.parquet`` with a ``selection`` column.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.mixture.config import MixtureConfig, MixtureSource
from pipeline.mixture.select import select_by_difficulty, select_by_length, select_random
from pipeline.mixture.sources import normalize, read_source_rows
from pipeline.rundir import ShardResult, StageDir, make_rejects

NOT_SELECTED = "not_selected"
TOO_LONG = "too_long"


class SourceLoader:
    def __init__(self, run_uri: str, cfg: MixtureConfig, stage: str = "mixture_sources"):
        self.run_uri = run_uri
        self.sources = {s.name: s for s in cfg.sources}
        self.target = StageDir(run_uri, stage)

    def __call__(self, shard: dict[str, Any]) -> ShardResult:
        started = time.time()
        source = self.sources[shard["shard"]]
        data, rejects, result = normalize(source, read_source_rows(source, self.run_uri))
        result.seconds = round(time.time() - started, 3)
        self.target.write_shard(result, data, rejects)
        return result


def select_source(table: pa.Table, source: MixtureSource, cfg: MixtureConfig, tokenizer: Any = None,
                  stage: str = "mixture") -> tuple[pa.Table, pa.Table, ShardResult]:  # fmt: skip
    """The selected rows of one source (+ ``selection``, and ``length`` for the length rule)."""
    ids = table["qa_id"].to_pylist()
    reasons: dict[int, tuple[str, str]] = {}
    extra: dict[str, list] = {}
    if source.selection == "all":
        keep = list(range(table.num_rows))
    elif source.selection == "random":
        keep = select_random(ids, source.k, cfg.seed)
    elif source.selection == "length":
        answers = table["answer"].to_pylist()
        lengths = (
            [len(ids_) for ids_ in tokenizer(answers, add_special_tokens=False)["input_ids"]]
            if answers
            else []
        )
        keep = select_by_length(ids, lengths, source.k, cfg.length_max_tokens)
        reasons = {i: (TOO_LONG, f"{n} tokens > {cfg.length_max_tokens}") for i, n in enumerate(lengths)
                   if n > cfg.length_max_tokens}  # fmt: skip
        extra["length"] = lengths
    else:  # difficulty
        means = [m if m is not None else 0.0 for m in table["difficulty_mean"].to_pylist()]
        keep = select_by_difficulty(
            ids, means, source.difficulty_low, source.difficulty_high, source.k, cfg.seed
        )
        reasons = {i: (NOT_SELECTED, f"mean grade {m:.2f} not in ({source.difficulty_low}, {source.difficulty_high})")
                   for i, m in enumerate(means) if not source.difficulty_low < m < source.difficulty_high}  # fmt: skip
    kept = set(keep)
    data = table.take(pa.array(keep, type=pa.int64()))
    for name, values in extra.items():
        data = data.append_column(name, pa.array([values[i] for i in keep], type=pa.int64()))
    data = data.append_column("selection", pa.array([source.selection] * data.num_rows, type=pa.string()))
    rejected = [i for i in range(table.num_rows) if i not in kept]
    rows = []
    counts: dict[str, int] = {}
    for i in rejected:
        reason, detail = reasons.get(
            i, (NOT_SELECTED, f"not among the {source.k} rows of {source.selection} selection")
        )
        counts[reason] = counts.get(reason, 0) + 1
        rows.append(
            {"input_id": ids[i], "stage": stage, "reason": reason, "detail": detail, "source": source.name}
        )
    result = ShardResult(shard=source.name, in_rows=table.num_rows, out_rows=data.num_rows, passed=data.num_rows,
                         rejected=counts)  # fmt: skip
    return data, make_rejects(rows), result


class MixtureSelector:
    def __init__(self, run_uri: str, cfg: MixtureConfig, input_stage: str, stage: str = "mixture"):
        self.cfg = cfg
        self.sources = {s.name: s for s in cfg.sources}
        self.source_stage = StageDir(run_uri, input_stage)
        self.target = StageDir(run_uri, stage)
        self.tokenizer = None
        if any(s.selection == "length" for s in cfg.sources):
            from transformers import AutoTokenizer

            from pipeline import assets

            self.tokenizer = AutoTokenizer.from_pretrained(assets.resolve(cfg.length_tokenizer))

    def __call__(self, shard: dict[str, Any]) -> ShardResult:
        started = time.time()
        table = pq.read_table(shard["path"], filesystem=self.source_stage.fs)
        data, rejects, result = select_source(table, self.sources[shard["shard"]], self.cfg, self.tokenizer,
                                              self.target.stage)  # fmt: skip
        result.seconds = round(time.time() - started, 3)
        self.target.write_shard(result, data, rejects)
        return result
