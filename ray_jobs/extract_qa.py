"""Stage S1, QA extraction: chunks → ``Question:``/``Answer:`` pairs with an LLM (Ray Data LLM).

Reads the completed shards of the ``chunk`` stage, runs every chunk through its subject's high-
and low-standard prompts on the configured engine, parses the outputs and writes
``<run>/extract_qa/data/<shard>.parquet`` (one row per pair, ``pipeline.extract.QA_SCHEMA``),
``rejects/`` (``no_qa``, ``malformed``, ``truncated`` … with the raw text) and ``stats.json``.
Completions are cached in ``<run>/_llm_cache/extract_qa/``: a killed run, rerun, generates only
the prompts it has no completion for.

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.extract_qa --config ray_jobs/configs/extract_cpu.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.extract_qa --config ray_jobs/configs/extract_gpu.yaml

Flags: ``--set extract_qa.engine.concurrency=4`` overrides a value, ``--force`` recomputes the
stage (re-parsing cached completions), ``--address`` names a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.extract.task import ExtractQATask
from pipeline.run_config import RunConfig
from ray_jobs.common import connect, run_main, stage_cli
from ray_jobs.llm_stage import run_llm_stage

SECTION = "extract_qa"


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
    connect(config)
    return run_llm_stage(config, SECTION, ExtractQATask(config.stage(SECTION)), force=force)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
