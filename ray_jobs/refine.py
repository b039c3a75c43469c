"""Stage S3, refinement: each QA pair rewritten with its source chunk (``pipeline.curate``).

Two steps in one job:

1. ``refine_input``: every QA row of ``refine.qa_stage`` (``dedup``) joined with the text of its
   chunk from ``refine.chunk_stage`` (``chunk``) by ``chunk_id``, one shard at a time
   (``pipeline.curate.join``); a row whose chunk is missing is rejected (``missing_chunk``).
2. ``refine``: the LLM rewrites question and answer (Ray Data LLM, ``ray_jobs.llm_stage``); output
   rows gain ``refined_question``, ``refined_answer``, ``refineqa_output`` and ``refine_gen``;
   unparseable outputs go to rejects with the reason and the raw text.

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.refine --config ray_jobs/configs/curation_cpu.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.refine --config ray_jobs/configs/curation_gpu.yaml
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.curate.join import ChunkJoiner
from pipeline.curate.tasks import RefineTask
from pipeline.run_config import RunConfig
from pipeline.rundir import stable_id
from ray_jobs.common import connect, map_shards, print_stats, run_main, stage_cli
from ray_jobs.llm_stage import run_llm_stage

SECTION = "refine"


def run_join(config: Any, force: bool = False) -> dict[str, Any] | None:
    """Step 1: write ``<run>/<refine.input_stage>/`` (QA rows + ``document``); a no-op when done."""
    cfg = config.stage(SECTION)
    stage = config.run_dir.stage(cfg.input_stage)
    fingerprint = stable_id("refine_input", cfg.qa_stage, cfg.chunk_stage)
    if force:
        stage.reset()
    done = stage.completed_fingerprint()
    if done is not None:
        if done != fingerprint:
            raise SystemExit(
                f"[{cfg.input_stage}] {stage.uri} was built from other stages; rerun with --force"
            )
        return None
    for name in (cfg.qa_stage, cfg.chunk_stage):
        if not config.run_dir.stage(name).is_complete():
            raise SystemExit(f"[{SECTION}] input stage {name!r} has not finished: run `python -m "
                             f"ray_jobs.{name} --config {config.source}` first")  # fmt: skip
    started = time.time()
    qa_files = config.run_dir.stage(cfg.qa_stage).data_files()
    pending = [
        {"shard": Path(f).stem, "path": f} for f in qa_files if Path(f).stem not in stage.done_shards()
    ]
    map_shards(pending, ChunkJoiner, {"run_uri": config.run_dir.uri, "qa_stage": cfg.qa_stage,
                                      "chunk_stage": cfg.chunk_stage, "stage": cfg.input_stage})  # fmt: skip
    stats = stage.finish(fingerprint, time.time() - started)
    print_stats(stats)
    return stats


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
    connect(config)
    run_join(config, force=force)
    return run_llm_stage(config, SECTION, RefineTask(config.stage(SECTION)), force=force)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
