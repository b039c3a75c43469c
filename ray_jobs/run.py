"""Run the pipeline's stages in order on the current Ray cluster, skipping finished ones.

    python -m ray_jobs.run --config ray_jobs/configs/quickstart.yaml

Each stage is also its own entrypoint (``python -m ray_jobs.<stage> --config …``).
"""

from __future__ import annotations

import importlib
import time

from ray_jobs.common import connect, run_main, stage_cli

# The chain, in order: (section, module under ray_jobs/).
STAGES: list[tuple[str, str]] = [
    ("parse", "ray_jobs.parse"),
    ("chunk", "ray_jobs.chunk"),
]


def main() -> None:
    args, config = stage_cli(__doc__.splitlines()[0])
    connect(config, args.address)
    config.run_dir.write_text("config.yaml", _yaml(config.to_dict()))
    summary = []
    for section, module in STAGES:
        started = time.time()
        stats = importlib.import_module(module).run(config, force=False)
        summary.append((section, stats, time.time() - started))
    print("\nstage       in      out  rejected   seconds")
    for section, stats, seconds in summary:
        print(f"{section:<8} {stats['in']:>6} {stats['out']:>8} {stats['rejected_total']:>9} {seconds:>9.1f}")
    print(f"\noutputs: {config.run_dir.uri}")


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


if __name__ == "__main__":
    run_main(main)
