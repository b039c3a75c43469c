"""Parse stage: PDFs → cleaned page text (PyMuPDF; Tesseract OCR for scanned pages).

Locally (starts or joins a local Ray):
    python -m ray_jobs.parse --config ray_jobs/configs/quickstart.yaml
On a cluster:
    ray job submit --working-dir . -- python -m ray_jobs.parse --config ray_jobs/configs/quickstart.yaml

Output: ``<run>/parse/`` (see ``pipeline/parse/stage.py``); a finished stage is skipped on rerun,
a killed one redoes only the unfinished files and page ranges.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.config import to_dict
from pipeline.parse.ocr import build_ocr_engine
from pipeline.parse.stage import (
    InventoryWorker,
    PageRangeWorker,
    account_files,
    file_key,
    plan_inventory,
    plan_page_shards,
    read_inventory,
)
from pipeline.run_config import RunConfig
from ray_jobs.common import begin_stage, connect, finish_stage, map_shards, nodes_used, run_main, stage_cli

SECTION = "parse"


def run(config: RunConfig, force: bool = False) -> dict[str, Any]:
    stage = begin_stage(config, SECTION, force)
    if stage is None:
        return config.run_dir.stage(SECTION).read_stats()
    started = time.time()
    parse = config.stage(SECTION)
    build_ocr_engine(parse.ocr)  # fail here, not in every worker, if OCR cannot run
    worker_kwargs = {"config": to_dict(parse), "run_uri": config.run_dir.uri}
    resources = {
        "num_cpus": parse.resources.num_cpus,
        "concurrency": parse.resources.concurrency,
        "node_type": parse.resources.node_type,
    }

    plan = plan_inventory(parse, stage)
    print(f"[parse] {len(plan.files)} input files, {len(plan.pending_inventory)} to inspect")
    inspected = map_shards(plan.pending_inventory, InventoryWorker, worker_kwargs, **resources)

    current = {file_key(f) for f in plan.files}
    infos = [info for key, info in read_inventory(stage).items() if key in current]
    files_result, file_rejects, readable = account_files(infos)
    stage.write_shard(files_result, None, file_rejects)

    done = stage.done_shards()
    shards = [s for s in plan_page_shards(readable, parse.pages_per_shard) if s["shard"] not in done]
    print(f"[parse] {len(readable)} readable documents, {len(shards)} page ranges to extract")
    extracted = map_shards(shards, PageRangeWorker, worker_kwargs, **resources)
    return finish_stage(config, SECTION, stage, started, nodes=nodes_used(inspected + extracted))


def main() -> None:
    args, config = stage_cli(__doc__.splitlines()[0])
    connect(config, args.address)
    run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
