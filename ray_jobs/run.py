"""The stage runner: the whole chain (or a sub-range) on the current Ray cluster.

    python -m ray_jobs.run --config ray_jobs/configs/quickstart.yaml
    python -m ray_jobs.run --config run.yaml --from dedup --to finalize
    python -m ray_jobs.run --config run.yaml --only train_sft,evaluate
    python -m ray_jobs.run --config run.yaml --submit http://head:8265    # one Ray job per stage

The chain is every stage whose section appears in the config, in pipeline order (see
:data:`CHAIN`). A finished stage is skipped (its ``_SUCCESS`` marker and config fingerprint match),
so rerunning the command after a stop resumes at the first incomplete stage; a stage that fails
is retried ``--retries`` times (it resumes from its finished shards), and a stage that keeps
failing stops the chain with the stage, the error, where its log is and what to do. Nothing
already written is deleted.

With ``--submit ADDRESS`` each stage runs as its own Ray job through the Job Submission API, with a
``runtime_env`` holding the working directory, the environment variables the stages need and
``run.runtime_env`` from the config (``pip``/``uv`` extras, more ``env_vars``). That is exactly
``ray job submit --working-dir . -- python -m ray_jobs.<stage> --config <run.yaml>``, so every stage
can also be run by hand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import run_config as rc
from pipeline.config import ConfigError
from ray_jobs.common import PASSTHROUGH_ENV, connect

REPO = Path(__file__).resolve().parents[1]

# (config section, module under ray_jobs/), in pipeline order.
CHAIN: list[tuple[str, str]] = [
    ("parse", "ray_jobs.parse"),
    ("chunk", "ray_jobs.chunk"),
    ("extract_qa", "ray_jobs.extract_qa"),
    ("dedup", "ray_jobs.dedup"),
    ("refine", "ray_jobs.refine"),
    ("cot_judge", "ray_jobs.cot_judge"),
    ("cot_distill", "ray_jobs.cot_distill"),
    ("filter_qa", "ray_jobs.filter_qa"),
    ("decontam_retrieve", "ray_jobs.decontam_retrieve"),
    ("decontaminate", "ray_jobs.decontaminate"),
    ("reference_answer", "ray_jobs.reference_answer"),
    ("finalize", "ray_jobs.finalize"),
    ("mixture", "ray_jobs.mixture"),
    ("train_sft", "ray_jobs.train_sft"),
    ("evaluate", "ray_jobs.evaluate"),
]
SECTIONS = [section for section, _ in CHAIN]


class StageFailed(RuntimeError):
    pass


@dataclass
class StageOutcome:
    section: str
    status: str  # done | skipped | failed
    seconds: float = 0.0
    attempts: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    log: str | None = None


def select(config: rc.RunConfig, only: str | None, start: str | None, stop: str | None) -> list[str]:
    """The stages to run: configured ones in chain order, cut to ``--only`` / ``--from``..``--to``."""
    for name in [*(only.split(",") if only else []), start, stop]:
        if name and name not in SECTIONS:
            raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(SECTIONS)}")
    chosen = [s for s in SECTIONS if s in config.stages]
    if only:
        wanted = set(only.split(","))
        chosen = [s for s in SECTIONS if s in wanted]
    if start:
        chosen = [s for s in chosen if SECTIONS.index(s) >= SECTIONS.index(start)]
    if stop:
        chosen = [s for s in chosen if SECTIONS.index(s) <= SECTIONS.index(stop)]
    return chosen


def stage_done(config: rc.RunConfig, section: str) -> bool:
    stage = config.run_dir.stage(section)
    return stage.completed_fingerprint() == config.fingerprint(section)


def read_stats(config: rc.RunConfig, section: str) -> dict[str, Any]:
    try:
        return config.run_dir.stage(section).read_stats()
    except (OSError, ValueError):
        return {}


def run_in_process(config: rc.RunConfig, section: str) -> dict[str, Any]:
    module = importlib.import_module(dict(CHAIN)[section])
    stats = module.run(config, force=False)
    return stats or read_stats(config, section)


def _log_location(config: rc.RunConfig) -> str:
    import ray

    try:
        return f"{ray._private.worker._global_node.get_session_dir_path()}/logs"
    except Exception:
        return f"the Ray session logs (ray status; {config.run_dir.uri})"


def run_chain(
    config: rc.RunConfig, sections: list[str], retries: int, submit: str | None = None
) -> list[StageOutcome]:
    outcomes: list[StageOutcome] = []
    for section in sections:
        if stage_done(config, section):
            outcomes.append(StageOutcome(section, "skipped", stats=read_stats(config, section)))
            print(f"[run] {section}: already complete, skipped")
            continue
        outcome = StageOutcome(section, "failed")
        started = time.time()
        for attempt in range(1, retries + 2):
            outcome.attempts = attempt
            print(f"[run] {section}: attempt {attempt}/{retries + 1}", flush=True)
            try:
                if submit:
                    outcome.stats, outcome.log = submit_stage(config, section, submit, attempt)
                else:
                    outcome.stats = run_in_process(config, section)
                    outcome.log = _log_location(config)
                outcome.status = "done"
                break
            except (Exception, SystemExit) as exc:  # a stage's own SystemExit carries its message
                outcome.error = f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, (SystemExit, StageFailed)):
                    traceback.print_exc()
                if outcome.log is None:
                    outcome.log = getattr(exc, "log", None) or _log_location(config)
                print(f"[run] {section}: attempt {attempt} failed: {outcome.error}", file=sys.stderr)
        outcome.seconds = time.time() - started
        outcomes.append(outcome)
        if outcome.status == "failed":
            break
    return outcomes


def submit_stage(config: rc.RunConfig, section: str, address: str, attempt: int) -> tuple[dict, str]:
    """Run one stage as a Ray job and wait for it; returns (stats, where its log is)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    entrypoint = " ".join(
        ["python", "-m", dict(CHAIN)[section], "--config", _config_path_for_job(config), *_override_args()]
    )
    env_vars = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    runtime_env = dict(config.run.runtime_env)
    runtime_env["env_vars"] = {**env_vars, **runtime_env.get("env_vars", {})}
    runtime_env.setdefault("working_dir", str(REPO))
    job_id = client.submit_job(
        entrypoint=entrypoint,
        runtime_env=runtime_env,
        submission_id=f"{config.run.name}-{section}-{attempt}-{int(time.time())}",
    )
    log = f"ray job logs --address {address} {job_id}"
    print(f"[run] {section}: submitted {job_id} ({entrypoint})", flush=True)
    printed = 0
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        if len(logs) > printed:
            sys.stdout.write(logs[printed:])
            sys.stdout.flush()
            printed = len(logs)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            break
        time.sleep(2)
    if status != JobStatus.SUCCEEDED:
        error = StageFailed(f"job {job_id} ended {status.value}; last log lines:\n{logs[-2000:]}")
        error.log = log  # type: ignore[attr-defined]
        raise error
    return read_stats(config, section), log


_OVERRIDES: list[str] = []


def _override_args() -> list[str]:
    return [arg for item in _OVERRIDES for arg in ("--set", f"'{item}'")]


def _config_path_for_job(config: rc.RunConfig) -> str:
    # Inside the working directory the relative path travels with the upload; elsewhere the
    # absolute path must be visible on the cluster (a shared file system).
    path = Path(config.source or "").resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def print_summary(config: rc.RunConfig, outcomes: list[StageOutcome]) -> None:
    print(f"\n{'stage':<18}{'status':<9}{'in':>8}{'out':>8}{'rejected':>10}{'seconds':>9}  tries")
    for o in outcomes:
        s = o.stats or {}
        print(
            f"{o.section:<18}{o.status:<9}{s.get('in', '-'):>8}{s.get('out', '-'):>8}"
            f"{s.get('rejected_total', '-'):>10}{o.seconds:>9.1f}  {o.attempts or '-'}"
        )
    print(f"\nrun directory: {config.run_dir.uri}")


def failure_message(config: rc.RunConfig, outcome: StageOutcome, retries: int) -> str:
    return (
        f"\n[run] stage {outcome.section!r} failed {outcome.attempts} time(s) (--retries {retries}).\n"
        f"  error: {outcome.error}\n"
        f"  log:   {outcome.log}\n"
        f"  kept:  every finished stage and every finished shard of {outcome.section!r} under "
        f"{config.run_dir.uri} (nothing was deleted)\n"
        f"  fix:   correct the cause above (the config section `{outcome.section}:` or the input), then rerun "
        f"the same command: finished stages are skipped and {outcome.section!r} resumes where it stopped. "
        f"To start it afresh: python -m ray_jobs.{outcome.section} --config {config.source} --force"
    )


def main(argv: list[str] | None = None) -> list[StageOutcome]:
    parser = argparse.ArgumentParser(description="Run the MegaScience chain on Ray.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--from", dest="start", help="first stage to run")
    parser.add_argument("--to", dest="stop", help="last stage to run")
    parser.add_argument("--only", help="comma-separated stages to run")
    parser.add_argument("--retries", type=int, default=None, help="retries per failing stage (run.retries)")
    parser.add_argument("--submit", metavar="ADDRESS", help="submit each stage as a Ray job to this address")
    parser.add_argument("--address", help="Ray cluster to run in-process stages on")
    args = parser.parse_args(argv)
    try:
        config = rc.load(args.config, dict(rc.parse_override(s) for s in args.set))
        sections = select(config, args.only, args.start, args.stop)
    except ConfigError as exc:
        parser.exit(2, f"config error: {exc}\n")
    _OVERRIDES[:] = args.set
    retries = config.run.retries if args.retries is None else args.retries
    if not args.submit:
        connect(config, args.address)
    config.run_dir.write_text("config.yaml", _yaml(config.to_dict()))
    print(f"[run] {config.run.name}: {' -> '.join(sections)}")
    outcomes = run_chain(config, sections, retries, args.submit)
    print_summary(config, outcomes)
    write_funnel(config)
    if outcomes and outcomes[-1].status == "failed":
        print(failure_message(config, outcomes[-1], retries), file=sys.stderr)
        raise SystemExit(1)
    _report_outputs(config)
    return outcomes


def write_funnel(config: rc.RunConfig) -> None:
    """The record count after every finished stage: printed, and drawn to ``<run>/funnel.png``."""
    from pipeline.funnel import collect_funnel, format_funnel, plot_funnel

    rows = collect_funnel(config.run_dir)
    if not rows or "://" in config.run_dir.uri:
        return  # nothing finished yet, or a remote run dir: `python -m ray_jobs.funnel` draws it
    print("\n" + format_funnel(rows))
    plot_funnel(
        rows, f"{config.run_dir.path}/funnel.png", title=f"{config.run.name}: records after each stage"
    )


def _report_outputs(config: rc.RunConfig) -> None:
    """Tell the user where the things they will want to look at are."""
    root = config.run_dir
    wanted = [
        ("funnel", "funnel.png"),
        ("final dataset", "finalize/data"),
        ("dataset card", "finalize/README.md"),
        ("contamination report", "decontaminate/report.md"),
        ("loss curve", "train_sft/loss.png"),
        ("fine-tuned model", "train_sft/model"),
        ("scores", "evaluate/report.md"),
        ("score chart", "evaluate/scores.png"),
    ]
    lines = []
    for label, relative in wanted:
        path = f"{root.path}/{relative}"
        if root.fs.get_file_info(path).type.name != "NotFound":
            lines.append(f"  {label:<21} {root.uri}/{relative}")
    if lines:
        print("outputs:\n" + "\n".join(lines))


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


if __name__ == "__main__":
    main()
