"""Chunk stage: the pages of each document → chunks of at most ``chunk.max_tokens`` tokens.

Locally:
    python -m ray_jobs.chunk --config ray_jobs/configs/quickstart.yaml
On a cluster:
    ray job submit --working-dir . -- python -m ray_jobs.chunk --config ray_jobs/configs/quickstart.yaml

Reads ``<run>/parse/``, writes ``<run>/chunk/`` (one file per document).
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.chunk.stage import ChunkWorker, plan_documents
from pipeline.config import to_dict
from pipeline.run_config import RunConfig
from ray_jobs.common import (
    begin_stage,
    connect,
    finish_stage,
    map_shards,
    nodes_used,
    require_stage,
    run_main,
    stage_cli,
)

SECTION = "chunk"


def run(config: RunConfig, force: bool = False) -> dict[str, Any]:
    stage = begin_stage(config, SECTION, force)
    if stage is None:
        return config.run_dir.stage(SECTION).read_stats()
    started = time.time()
    pages = require_stage(config, "parse", needed_by=SECTION)
    chunk = config.stage(SECTION)
    done = stage.done_shards()
    shards = [s for s in plan_documents(pages) if s["shard"] not in done]
    print(f"[chunk] {len(shards)} documents to chunk ({len(done)} done earlier)")
    results = map_shards(
        shards,
        ChunkWorker,
        {"config": to_dict(chunk), "run_uri": config.run_dir.uri},
        num_cpus=chunk.resources.num_cpus,
        concurrency=chunk.resources.concurrency,
        node_type=chunk.resources.node_type,
    )
    return finish_stage(config, SECTION, stage, started, nodes=nodes_used(results))


def main() -> None:
    args, config = stage_cli(__doc__.splitlines()[0])
    connect(config, args.address)
    run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
