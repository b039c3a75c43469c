"""Stage S7, reference answers: the concise final answer of every row (never drops a row).

Runs on the completed shards of ``reference_answer.input_stage`` through Ray Data LLM
(``ray_jobs.llm_stage``, task ``pipeline.curate.tasks.ReferenceAnswerTask``).
Rows gain ``reference_answer``, ``reference_answer_source`` (the rule that found it),
``extract_reference_answer_output`` and ``reference_gen``.
Completions are cached, so a killed run, rerun, generates only what is missing.

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.reference_answer --config ray_jobs/configs/curation_cpu.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.reference_answer --config ray_jobs/configs/curation_gpu.yaml
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.curate.tasks import ReferenceAnswerTask
from pipeline.run_config import RunConfig
from ray_jobs.common import connect, run_main, stage_cli
from ray_jobs.llm_stage import run_llm_stage

SECTION = "reference_answer"


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
    connect(config)
    return run_llm_stage(config, SECTION, ReferenceAnswerTask(config.stage(SECTION)), force=force)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
