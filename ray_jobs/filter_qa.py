"""Stage S5, quality filter: keep a pair only when the LLM judge says YES.

Runs on the completed shards of ``filter_qa.input_stage`` through Ray Data LLM
(``ray_jobs.llm_stage``, task ``pipeline.curate.tasks.FilterTask``).
Kept rows gain ``filtering_qa_output`` and ``filter_gen``; NO verdicts are rejected as
``filtered_out``, unparseable ones as ``unparseable_verdict``.
Completions are cached, so a killed run, rerun, generates only what is missing.

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.filter_qa --config ray_jobs/configs/curation_cpu.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.filter_qa --config ray_jobs/configs/curation_gpu.yaml
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.curate.tasks import FilterTask
from pipeline.run_config import RunConfig
from ray_jobs.common import connect, run_main, stage_cli
from ray_jobs.llm_stage import run_llm_stage

SECTION = "filter_qa"


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
    connect(config)
    return run_llm_stage(config, SECTION, FilterTask(config.stage(SECTION)), force=force)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
