"""Stage S6-1..3, decontamination retrieval: every training question's top-k benchmark neighbours.

Embeds the benchmark pool of ``pipeline.benchmarks`` (all present files of the reference's list,
under ``decontam_retrieve.benchmarks_dir``) once in a Ray task, stores the index in
``<run>/decontam_retrieve/index/``, then embeds each shard of ``decontam_retrieve.input_stage``
(``filter_qa``) with a pool of embedding actors (sentence-transformers; bge-large-en-v1.5 by
default) and adds ``retrieved_benchmark`` (k candidates with cosine scores, exact search).
``python -m ray_jobs.decontaminate`` judges the pairs next.

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.decontam_retrieve --config ray_jobs/configs/curation_cpu.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.decontam_retrieve --config ray_jobs/configs/curation_gpu.yaml
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.decontam.retrieve import Retriever, build_index
from pipeline.run_config import RunConfig
from ray_jobs.common import begin_stage, connect, finish_stage, map_shards, run_main, stage_cli

SECTION = "decontam_retrieve"


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
    import ray

    started = time.time()
    stage = begin_stage(config, SECTION, force)
    if stage is None:
        return None
    cfg = config.stage(SECTION)
    source = config.run_dir.stage(cfg.input_stage)
    if not source.is_complete():
        raise SystemExit(f"[{SECTION}] input stage {cfg.input_stage!r} has not finished: run `python -m "
                         f"ray_jobs.{cfg.input_stage} --config {config.source}` first")  # fmt: skip
    connect(config)
    index = ray.get(
        ray.remote(build_index).options(num_gpus=cfg.num_gpus).remote(config.run_dir.uri, cfg, SECTION)
    )
    print(f"[{SECTION}] benchmark index: {index['rows']} questions, {index['dim']}-d ({index['model']}); "
          f"missing: {', '.join(index['missing']) or 'none'}", flush=True)  # fmt: skip
    done = stage.done_shards()
    pending = [{"shard": Path(f).stem, "path": f} for f in source.data_files() if Path(f).stem not in done]
    map_shards(pending, Retriever, {"run_uri": config.run_dir.uri, "cfg": cfg, "stage": SECTION},
               num_cpus=1, num_gpus=cfg.num_gpus, concurrency=cfg.concurrency)  # fmt: skip
    return finish_stage(config, SECTION, stage, started, embedding_model=cfg.embedding_model,
                        pool_rows=index["rows"], missing_benchmarks=index["missing"])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
