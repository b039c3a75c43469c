"""Stage S8, finalize: the release table ``{question, answer, subject, reference_answer}`` (+ lineage
ids) as Parquet that ``datasets.load_dataset("parquet", …)`` reads, and its dataset card.

Writes ``<run>/finalize/data/*.parquet`` and ``<run>/finalize/README.md`` (per-stage counts, drop
reasons, models and prompt versions); ``finalize.export_dir`` copies both elsewhere (a local folder
or ``s3://…``).

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.finalize --config ray_jobs/configs/curation_cpu.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.finalize --config ray_jobs/configs/curation_gpu.yaml
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.curate.finalize import Finalizer, export, write_card
from pipeline.run_config import RunConfig
from pipeline.rundir import merge_results
from ray_jobs.common import begin_stage, connect, finish_stage, map_shards, run_main, stage_cli

SECTION = "finalize"


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
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
    done = stage.done_shards()
    pending = [{"shard": Path(f).stem, "path": f} for f in source.data_files() if Path(f).stem not in done]
    map_shards(pending, Finalizer, {"run_uri": config.run_dir.uri, "cfg": cfg, "stage": SECTION})
    # The card is written before _SUCCESS, so a finished stage always has one.
    card = write_card(
        config.run_dir, cfg, stage, merge_results(SECTION, stage.shard_results(), time.time() - started)
    )
    print(f"[{SECTION}] dataset card: {card}", flush=True)
    if cfg.export_dir:
        print(f"[{SECTION}] exported to {export(stage, cfg.export_dir)}", flush=True)
    return finish_stage(config, SECTION, stage, started)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
