"""The funnel of a run: prints the record count after every stage and draws ``<run>/funnel.png``.

Reads only the stages' ``stats.json`` (no Ray needed)::

    python -m ray_jobs.funnel --config ray_jobs/configs/curation_cpu.yaml
    python -m ray_jobs.funnel --run-dir runs/quickstart

On a cluster (the run root is on shared storage)::

    ray job submit --working-dir . -- python -m ray_jobs.funnel --config ray_jobs/configs/curation_gpu.yaml
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline import run_config as rc
from pipeline.funnel import collect_funnel, format_funnel, plot_funnel
from pipeline.rundir import RunDir, join
from ray_jobs.common import run_main


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="run YAML: the funnel of its run directory")
    where.add_argument("--run-dir", help="a run directory (local path or URI)")
    parser.add_argument("--png", default=None, help="where to write the chart (default <run>/funnel.png)")
    args = parser.parse_args(argv)
    if args.config:
        run = rc.load(args.config).run_dir
    else:
        root, name = args.run_dir.rstrip("/").rsplit("/", 1) if "/" in args.run_dir else (".", args.run_dir)
        run = RunDir(root, name)
    rows = collect_funnel(run)
    if not rows:
        raise SystemExit(f"no finished stage (stats.json) under {run.uri}")
    print(format_funnel(rows), flush=True)
    local = "://" not in run.uri
    png = args.png or (join(run.path, "funnel.png") if local else "funnel.png")
    plot_funnel(rows, png, title=f"{Path(run.path).name}: records after each stage")
    with run.fs.open_output_stream(join(run.path, "funnel.json")) as f:
        f.write(json.dumps(rows, indent=2).encode())
    print(f"funnel chart: {png}", flush=True)
    return rows


if __name__ == "__main__":
    run_main(main)
