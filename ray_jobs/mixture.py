"""The MegaScience mixture: TextbookReasoning plus other science datasets, each through the same
dedup and decontamination, then subset per source by random, response-length or difficulty
selection (``pipeline.mixture``; SPEC-pipeline §16).

Steps (each a resumable stage folder of the run)::

    mixture_sources        every source read into {qa_id, question, answer, reference_answer, subject, source}
    mixture_dedup          MinHash dedup across all sources (Ray Data; reference parameters)
    mixture_retrieve       benchmark top-k neighbours (embeddings + exact search)
    mixture_decontaminate  LLM same-question judge (section mixture_decontaminate)
    mixture_student        [difficulty sources] sampled answers (section mixture_student)
    mixture_grade          [difficulty sources] 0-10 grades vs the reference (section mixture_grade)
    mixture                the selected rows of every source, with `source` and `selection`

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.mixture --config ray_jobs/configs/curation_mixture.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.mixture --config ray_jobs/configs/curation_mixture.yaml
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import to_dict
from pipeline.decontam.judge import DecontamJudgeTask
from pipeline.decontam.retrieve import Retriever, build_index
from pipeline.dedup.ray_minhash import dedup_shards
from pipeline.mixture.build import MixtureSelector, SourceLoader
from pipeline.mixture.difficulty import GradeTask, StudentAnswerTask
from pipeline.run_config import RunConfig
from pipeline.rundir import StageDir, stable_id
from ray_jobs.common import begin_stage, connect, finish_stage, map_shards, print_stats, run_main, stage_cli
from ray_jobs.llm_stage import run_llm_stage

SECTION = "mixture"


def run_step(config: Any, name: str, settings: Any, body: Callable[[StageDir], None], force: bool) -> None:
    """A non-LLM step in its own stage folder: skipped when finished with the same settings."""
    stage = config.run_dir.stage(name)
    fingerprint = stable_id(name, json.dumps(to_dict(settings), sort_keys=True, default=str))
    if force:
        stage.reset()
    done = stage.completed_fingerprint()
    if done == fingerprint:
        print(f"[{name}] already complete: {stage.uri}", flush=True)
        return
    if done is not None:
        raise SystemExit(f"[{name}] {stage.uri} was built with other mixture settings; rerun with --force")
    started = time.time()
    body(stage)
    print_stats(stage.finish(fingerprint, time.time() - started))


def pending(stage: StageDir, source: StageDir) -> list[dict[str, str]]:
    done = stage.done_shards()
    return [{"shard": Path(f).stem, "path": f} for f in source.data_files() if Path(f).stem not in done]


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
    import ray

    cfg = config.stage(SECTION)
    if not cfg.sources:
        raise SystemExit("[mixture] mixture.sources is empty: list the datasets to combine")
    connect(config)
    run_uri = config.run_dir.uri
    run = config.run_dir

    run_step(config, "mixture_sources", cfg.sources, lambda stage: map_shards(
        [{"shard": s.name} for s in cfg.sources if s.name not in stage.done_shards()], SourceLoader,
        {"run_uri": run_uri, "cfg": cfg, "stage": stage.stage}), force)  # fmt: skip

    dedup_cfg = dataclasses.replace(cfg.dedup, input_stage="mixture_sources")
    run_step(config, "mixture_dedup", dedup_cfg, lambda stage: dedup_shards(run_uri, dedup_cfg, stage.stage),
             force)  # fmt: skip

    # Mixture rows always carry `question` (the common source shape), whatever the YAML says.
    retrieve_cfg = dataclasses.replace(cfg.retrieve, input_stage="mixture_dedup", query_column="question")

    def retrieve(stage: StageDir) -> None:
        build = ray.remote(build_index).options(num_gpus=retrieve_cfg.num_gpus)
        ray.get(build.remote(run_uri, retrieve_cfg, stage.stage))
        map_shards(pending(stage, run.stage("mixture_dedup")), Retriever,
                   {"run_uri": run_uri, "cfg": retrieve_cfg, "stage": stage.stage},
                   num_gpus=retrieve_cfg.num_gpus, concurrency=retrieve_cfg.concurrency)  # fmt: skip

    run_step(config, "mixture_retrieve", retrieve_cfg, retrieve, force)
    run_llm_stage(config, "mixture_decontaminate", DecontamJudgeTask(config.stage("mixture_decontaminate")),
                  force=force)  # fmt: skip

    selected_from = "mixture_decontaminate"
    difficulty = {s.name for s in cfg.sources if s.selection == "difficulty"}
    if difficulty:
        student = StudentAnswerTask(
            config.stage("mixture_student"), cfg.difficulty_samples, sources=difficulty
        )
        run_llm_stage(config, "mixture_student", student, force=force)
        run_llm_stage(config, "mixture_grade", GradeTask(config.stage("mixture_grade")), force=force)
        selected_from = "mixture_grade"

    started = time.time()
    stage = begin_stage(config, SECTION, force)
    if stage is None:
        return None
    map_shards(pending(stage, run.stage(selected_from)), MixtureSelector,
               {"run_uri": run_uri, "cfg": cfg, "input_stage": selected_from, "stage": SECTION})  # fmt: skip
    return finish_stage(config, SECTION, stage, started, sources=[s.name for s in cfg.sources])


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
