"""Stage S4b, CoT distillation: a step-by-step answer for rows the judge found without reasoning.

Runs on the completed shards of ``cot_distill.input_stage`` through Ray Data LLM
(``ray_jobs.llm_stage``, task ``pipeline.curate.tasks.CotDistillTask``).
Judged-NO rows gain ``distill_cot`` (their final answer from now on) and ``distill_gen``;
judged-YES rows pass unchanged without a model call (``distill_cot`` null).
Completions are cached, so a killed run, rerun, generates only what is missing.

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.cot_distill --config ray_jobs/configs/curation_cpu.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.cot_distill --config ray_jobs/configs/curation_gpu.yaml
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.curate.tasks import CotDistillTask
from pipeline.run_config import RunConfig
from ray_jobs.common import connect, run_main, stage_cli
from ray_jobs.llm_stage import run_llm_stage

SECTION = "cot_distill"


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
    connect(config)
    return run_llm_stage(config, SECTION, CotDistillTask(config.stage(SECTION)), force=force)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
