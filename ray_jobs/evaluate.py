"""Evaluate stage: the science benchmarks through a Ray Serve LLM endpoint, scored as the paper does.

Locally (starts or joins a local Ray; deploys the run's ``serve:`` section, tears it down after):
    python -m ray_jobs.evaluate --config ray_jobs/configs/eval_tiny_cpu.yaml
Against a running endpoint (e.g. one started by ``ray_jobs.serve``):
    python -m ray_jobs.evaluate --config ray_jobs/configs/eval_tiny_cpu.yaml --set evaluate.endpoint=http://127.0.0.1:8000
On a cluster:
    ray job submit --working-dir . -- python -m ray_jobs.evaluate --config ray_jobs/configs/eval_qwen3_1p7b.yaml

Output ``<run>/evaluate/``: ``predictions/<benchmark>.jsonl`` (prompt, raw output, extracted answer,
gold, correct per item) and ``data/<benchmark>.parquet`` (the same rows), ``report.md`` (accuracy
table, averages as the paper computes them, comparison with the paper), ``scores.json``,
``scores.png``, ``stats.json``. Responses are cached in ``<run>/_eval_cache/<model>/``: a killed
run resumes without resending answered requests; a finished benchmark is not rescored.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pipeline import assets
from pipeline.config import to_dict
from pipeline.eval import report as report_mod
from pipeline.eval import runner
from pipeline.eval.config import EvalConfig
from pipeline.run_config import RunConfig
from pipeline.rundir import ShardResult, make_rejects
from ray_jobs.common import begin_stage, connect, finish_stage, run_main, stage_cli, with_stage_refs

SECTION = "evaluate"


def cache_dir(config: RunConfig, model: str) -> str:
    run_path = config.run_dir.path
    if "://" in config.run_dir.uri:  # object-store runs keep the response cache on the driver's disk
        run_path = str(assets.cache_dir() / "eval_cache" / config.run.name)
    return str(Path(run_path) / "_eval_cache" / model.replace("/", "__"))


def _progress(done: int, total: int, seconds: float) -> None:
    if done == total or done % max(1, total // 20) == 0:
        rate = done / seconds if seconds else 0.0
        print(f"[evaluate] {done}/{total} requests answered ({rate:.2f}/s)", flush=True)


def open_endpoint(config: RunConfig, ecfg: EvalConfig) -> tuple[Any, bool]:
    """Attach to ``evaluate.endpoint`` or deploy the run's ``serve:`` section; (endpoint, deployed_here)."""
    import os

    from pipeline.serve import app as serve_app

    if ecfg.endpoint:
        key = os.environ.get(ecfg.api_key_env) if ecfg.api_key_env else None
        base_url = ecfg.endpoint.rstrip("/").removesuffix("/v1")  # the OpenAI-style base URL works too
        return serve_app.Endpoint(base_url=base_url, model_ids=(ecfg.model,), api_key=key), False
    serve_cfg = with_stage_refs(config, config.stage("serve"))
    if ecfg.model not in [m.model_id for m in serve_cfg.models]:
        raise SystemExit(
            f"[evaluate] evaluate.model={ecfg.model!r} is not served by the serve: section "
            f"(models: {[m.model_id for m in serve_cfg.models]}); fix one of them or set evaluate.endpoint"
        )
    print(
        f"[evaluate] deploying Serve app {serve_cfg.app_name!r} ({len(serve_cfg.models)} model(s))",
        flush=True,
    )
    return serve_app.deploy(serve_cfg), True


def run(config: RunConfig, force: bool = False) -> dict[str, Any]:
    stage = begin_stage(config, SECTION, force)
    if stage is None:
        return config.run_dir.stage(SECTION).read_stats()
    started = time.time()
    ecfg: EvalConfig = config.stage(SECTION)

    from transformers import AutoTokenizer

    from pipeline.eval.actors import generate
    from pipeline.eval.client import ResponseCache
    from pipeline.eval.scoring import ScoringPool
    from pipeline.serve import app as serve_app

    items, missing = runner.load_items(ecfg)
    tokenizer = AutoTokenizer.from_pretrained(assets.resolve(config.resolve_ref(ecfg.tokenizer)))
    units = runner.plan_units(items, ecfg, tokenizer)
    done = stage.done_shards()
    todo = [u for u in units if u.benchmark not in done]
    print(
        f"[evaluate] {len(items)} benchmarks present ({len(missing)} subtasks missing), {len(units)} units, "
        f"{len(todo)} to score",
        flush=True,
    )
    requests = runner.build_requests(todo, ecfg)
    cache = cache_dir(config, ecfg.model)
    cached = ResponseCache(cache).load()
    responses = {r["key"]: cached[r["key"]] for r in requests if r["key"] in cached}
    gen_stats: dict[str, Any] = {"requested": len(requests), "cached": len(responses), "sent": 0}
    if len(responses) < len(requests):  # only start (or reach) a server when something is unanswered
        endpoint, deployed = open_endpoint(config, ecfg)
        try:
            responses, gen_stats = generate(
                requests,
                base_url=endpoint.base_url,
                cache_dir=cache,
                concurrency=ecfg.concurrency,
                api_key=endpoint.api_key,
                num_cpus=ecfg.actor_num_cpus,
                client_kwargs={
                    "timeout_s": ecfg.request_timeout_s,
                    "max_retries": ecfg.max_retries,
                    "retry_base_s": ecfg.retry_base_s,
                },
                progress=_progress,
            )
        finally:
            if deployed:
                serve_app.teardown(endpoint)
                print(f"[evaluate] removed the Serve app {endpoint.app_name!r} this job deployed", flush=True)
    print(f"[evaluate] generation: {gen_stats}", flush=True)

    predictions_dir = Path(stage.path) / "predictions"
    predictions_dir.mkdir(parents=True, exist_ok=True)
    with ScoringPool(workers=ecfg.scoring_workers, timeout_s=ecfg.scoring_timeout_s) as pool:
        for name in ecfg.benchmarks:
            bench_units = [u for u in todo if u.benchmark == name]
            if not bench_units:
                continue
            rows = runner.score_units(bench_units, responses, pool)
            runner.write_jsonl(rows, predictions_dir / f"{name}.jsonl")
            failed = [r for r in rows if r["error"] and not r["timed_out"]]
            result = ShardResult(
                shard=name, in_rows=len(rows), out_rows=len(rows), passed=len(rows) - len(failed)
            )
            if failed:
                result.rejected = {"request_failed": len(failed)}
            rejects = make_rejects(
                {"input_id": f"{r['item_id']}@{r['option_order']}", "stage": SECTION, "reason": "request_failed",
                 "detail": r["error"], "source": r["subtask"]}
                for r in failed
            )  # fmt: skip
            stage.write_shard(result, runner.predictions_table(rows), rejects)
            print(
                f"[evaluate] {name}: {sum(r['correct'] for r in rows)}/{len(rows)} correct (strict)",
                flush=True,
            )

    summary = write_report(config, ecfg, stage, missing)
    return finish_stage(
        config, SECTION, stage, started,
        generation=gen_stats, missing=[m.message() for m in missing], scores=summary,
    )  # fmt: skip


def write_report(config: RunConfig, ecfg: EvalConfig, stage: Any, missing: list[Any]) -> dict[str, Any]:
    rows = stage.read_table().to_pylist()
    subtasks = runner.subtask_summary(rows)
    scores = report_mod.benchmark_scores(subtasks)
    averages = {order: report_mod.averages(s) for order, s in scores.items()}
    out = Path(stage.path)
    (out / "report.md").write_text(
        report_mod.markdown(scores, model=ecfg.model, missing=missing, paper_model=ecfg.paper_model)
    )
    report_mod.chart(scores, out / "scores.png", model=ecfg.model, paper_model=ecfg.paper_model)
    summary = {
        "model": ecfg.model,
        "config": to_dict(ecfg),
        "subtasks": subtasks,
        "benchmarks": scores,
        "averages": averages,
    }
    (out / "scores.json").write_text(json.dumps(summary, indent=2, default=str))
    print((out / "report.md").read_text(), flush=True)
    return {order: {k: v["value"] for k, v in avg.items()} for order, avg in averages.items()}


def main() -> None:
    args, config = stage_cli(__doc__.splitlines()[0])
    connect(config, args.address)
    run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
