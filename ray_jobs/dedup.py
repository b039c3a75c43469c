"""Stage S2, question de-duplication: MinHash LSH on Ray Data (``pipeline.dedup``).

Reads the completed shards of ``dedup.input_stage`` (default ``extract_qa``), hashes every
question in ``map_batches``, groups LSH buckets with Ray Data ``groupby`` and rewrites each input
shard: kept rows gain ``cluster_id`` (the lowest ``qa_id`` of their cluster) and
``duplicate_count`` (cluster size) in ``<run>/dedup/data/``; dropped rows (``near_duplicate``,
``too_short``, ``missing_question``) go to ``rejects/``. The defaults reproduce the reference
(3-gram shingles, 250 permutations, one band of 10 rows, questions under 5 tokens removed);
``--set dedup.bands=null --set dedup.rows=null --set dedup.threshold=0.8`` switches to real
near-duplicate removal (connected components across bands).

Locally (starts Ray, or joins ``$RAY_ADDRESS``)::

    python -m ray_jobs.dedup --config ray_jobs/configs/curation_cpu.yaml

On a cluster::

    ray job submit --working-dir . -- python -m ray_jobs.dedup --config ray_jobs/configs/curation_gpu.yaml

A rerun of a finished stage is a no-op; a killed run recomputes the clusters (deterministic) and
writes only the shards without a completion marker.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pipeline.dedup.ray_minhash import dedup_shards
from pipeline.run_config import RunConfig
from ray_jobs.common import begin_stage, connect, finish_stage, run_main, stage_cli

SECTION = "dedup"


def run(config: RunConfig, force: bool = False) -> dict[str, Any] | None:
    started = time.time()
    stage = begin_stage(config, SECTION, force)
    if stage is None:
        return None
    cfg = config.stage(SECTION)
    source = config.run_dir.stage(cfg.input_stage)
    if not source.is_complete():
        raise SystemExit(
            f"[{SECTION}] input stage {cfg.input_stage!r} has not finished ({source.uri}/_SUCCESS is "
            f"missing): run `python -m ray_jobs.{cfg.input_stage} --config {config.source}` first"
        )
    connect(config)
    dedup_shards(config.run_dir.uri, cfg, SECTION)
    bands, rows = cfg.lsh_params()
    return finish_stage(config, SECTION, stage, started, lsh={"bands": bands, "rows": rows, "tag": cfg.tag})


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
