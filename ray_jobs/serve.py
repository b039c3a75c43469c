"""Serve stage: deploy the run's models as one OpenAI-compatible Ray Serve LLM app (vLLM engines).

Locally (starts a local Ray and keeps serving until Ctrl-C, then removes the app):
    python -m ray_jobs.serve --config ray_jobs/configs/eval_tiny_cpu.yaml --block
On a cluster (the app outlives the job; remove it with --delete or `serve shutdown`):
    ray job submit --working-dir . -- python -m ray_jobs.serve --config ray_jobs/configs/eval_qwen3_1p7b.yaml
    ray job submit --working-dir . -- python -m ray_jobs.serve --config ray_jobs/configs/eval_qwen3_1p7b.yaml --delete

The endpoint (``/v1/models``, ``/v1/completions``, ``/v1/chat/completions``) is printed and written
to ``<run>/serve/endpoint.json``; query it with any OpenAI client:
    OpenAI(base_url="http://127.0.0.1:<port>/v1", api_key="<key or anything>")
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from pipeline.run_config import RunConfig
from ray_jobs.common import connect, run_main, stage_cli, with_stage_refs

SECTION = "serve"


def main(argv: list[str] | None = None) -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--block", action="store_true", help="keep serving until Ctrl-C, then remove the app")
    extra.add_argument("--delete", action="store_true", help="remove the app and exit")
    flags, rest = extra.parse_known_args(argv if argv is not None else sys.argv[1:])
    args, config = stage_cli(__doc__.splitlines()[0], rest)
    connect(config, args.address)
    run(config, block=flags.block, delete=flags.delete)


def run(config: RunConfig, *, block: bool = False, delete: bool = False) -> dict:
    from ray import serve

    from pipeline.serve import app as serve_app

    serve_cfg = with_stage_refs(config, config.stage(SECTION))
    if delete:
        serve.delete(serve_cfg.app_name)
        print(f"[serve] removed app {serve_cfg.app_name!r}")
        return {}
    started = time.time()
    endpoint = serve_app.deploy(serve_cfg)
    info = {
        "base_url": endpoint.base_url,
        "openai_base_url": endpoint.openai_base_url,
        "models": list(endpoint.model_ids),
        "app_name": endpoint.app_name,
        "api_key_env": serve_cfg.api_key_env,
        "ready_seconds": round(time.time() - started, 1),
    }
    out = Path(config.run_dir.path) / SECTION
    out.mkdir(parents=True, exist_ok=True)
    (out / "endpoint.json").write_text(json.dumps(info, indent=2))
    print(
        f"[serve] ready in {info['ready_seconds']}s: {endpoint.openai_base_url} models={info['models']}",
        flush=True,
    )
    if block:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            logging.info("stopping")
        finally:
            serve_app.teardown(endpoint)
    return info


if __name__ == "__main__":
    run_main(main)
