"""Stage S6-4, decontamination judge: an LLM decides whether each training question is the same
problem as any of its retrieved benchmark neighbours; a row is dropped on any YES.

Runs ``pipeline.decontam.judge.DecontamJudgeTask`` over ``decontam_retrieve``'s shards with
Ray Data LLM (one request per candidate pair), then writes the contamination report
(``<run>/decontaminate/report.{json,md}``: per benchmark, items hit, training rows dropped,
example pairs).

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.decontaminate --config ray_jobs/configs/curation_cpu.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.decontaminate --config ray_jobs/configs/curation_gpu.yaml
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pipeline.decontam.judge import DecontamJudgeTask
from pipeline.decontam.report import build_report, write_report
from pipeline.run_config import RunConfig
from pipeline.rundir import join
from ray_jobs.common import connect, run_main, stage_cli
from ray_jobs.llm_stage import run_llm_stage

SECTION = "decontaminate"


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
    connect(config)
    cfg = config.stage(SECTION)
    stats = run_llm_stage(config, SECTION, DecontamJudgeTask(cfg), force=force)
    stage = config.run_dir.stage(SECTION)
    index_stage = config.run_dir.stage(cfg.input_stage)
    with index_stage.fs.open_input_stream(join(index_stage.path, "index", "index.json")) as f:
        index_meta = json.loads(f.read())
    path = write_report(stage, build_report(stage, index_meta, cfg.report_examples))
    print(f"[{SECTION}] contamination report: {path}", flush=True)
    return stats


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
