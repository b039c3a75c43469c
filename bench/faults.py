"""Reliability figures of the stage runner, measured on the quickstart chain (parse → finalize).

    python bench/faults.py            # ~15 min on 2 idle cores; writes bench/results/faults.json

1. **Worker killed during extraction.** The chain runs in a subprocess; once the extraction engine
   has written its first completions, the Ray worker holding the vLLM engine is SIGKILLed. The run
   must finish (Ray restarts the actor, or the runner retries the stage, which resumes from its
   cached completions) and its final dataset must equal an uninterrupted run's, row for row.
2. **The whole run stopped between stages.** ``--to chunk`` then the full command: the second run
   starts at the first incomplete stage (the earlier ones are reported ``skipped``).
3. **A stage that keeps failing.** A refine engine pointing at a model that does not exist: the
   chain stops at ``refine`` with exit code 1, a message naming the stage, the log and the fix, and
   every stage before it still complete.

Decoding is greedy (temperature 0) so the two runs of (1) are comparable: the random tiny model then
writes the same text for every prompt, which the guided formats still turn into valid rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
LLM_STAGES = (
    "extract_qa",
    "refine",
    "cot_judge",
    "cot_distill",
    "filter_qa",
    "decontaminate",
    "reference_answer",
)


def bench_config(tmp: Path, name: str, broken_refine: bool = False) -> Path:
    data = yaml.safe_load((REPO / "ray_jobs" / "configs" / "quickstart.yaml").read_text())
    data["run"]["name"] = name
    data["run"]["root"] = str(tmp / "runs")
    for stage in LLM_STAGES:
        data[stage]["sampling"]["temperature"] = 0.0
        data[stage]["engine"] = {
            **data[stage]["engine"],
            "batch_size": 4,
        }  # several blocks: a kill lands mid-stage
    # Greedy decoding picks one choice for every row; make it the keeping one.
    data["cot_judge"]["sampling"]["guided"] = {
        "choice": ["Analysis: the answer explains why.\nDecision: YES"]
    }
    data["filter_qa"]["sampling"]["guided"] = {"choice": ["Analysis:\nThe pair is complete.\nDecision:\nYES"]}
    if broken_refine:
        data["refine"]["engine"] = {**data["refine"]["engine"], "model": str(tmp / "no-such-model")}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_chain(config: Path, *extra: str, kill_engine_after_cache: Path | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cmd = [sys.executable, "-m", "ray_jobs.run", "--config", str(config), "--to", "finalize", *extra]
    started = time.time()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    killed_at = None
    if kill_engine_after_cache is not None:
        while proc.poll() is None and killed_at is None:
            parts = (
                list(kill_engine_after_cache.rglob("*.parquet")) if kill_engine_after_cache.exists() else []
            )
            if parts:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    try:
                        if "vLLMEngineStageUDF" in " ".join(child.cmdline()):
                            child.send_signal(signal.SIGKILL)
                            killed_at = time.time() - started
                    except psutil.NoSuchProcess:
                        continue
            time.sleep(0.5)
    output, _ = proc.communicate()
    return {"returncode": proc.returncode, "seconds": round(time.time() - started, 1), "killed_at": killed_at,
            "output": output}  # fmt: skip


def final_rows(runs: Path, name: str) -> list[dict]:
    from pipeline.rundir import RunDir

    table = RunDir(str(runs), name).stage("finalize").read_table()
    keep = [c for c in table.column_names if c not in ("gen",)]
    return sorted(table.select(keep).to_pylist(), key=lambda r: r["qa_id"])


def statuses(output: str) -> dict[str, str]:
    out = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in ("done", "skipped", "failed"):
            out[parts[0]] = parts[1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_faults_"))
    results: dict[str, dict] = {}
    try:
        clean = run_chain(bench_config(tmp, "clean"))
        assert clean["returncode"] == 0, clean["output"][-3000:]
        killed = run_chain(
            bench_config(tmp, "killed"),
            kill_engine_after_cache=tmp / "runs" / "killed" / "_llm_cache" / "extract_qa",
        )
        assert killed["returncode"] == 0, killed["output"][-3000:]
        same = final_rows(tmp / "runs", "clean") == final_rows(tmp / "runs", "killed")
        results["worker_killed_during_extract"] = {
            "engine_killed_after_s": killed["killed_at"],
            "clean_run_s": clean["seconds"],
            "killed_run_s": killed["seconds"],
            "extract_attempts": killed["output"].count("[run] extract_qa: attempt"),
            "final_rows": len(final_rows(tmp / "runs", "clean")),
            "final_dataset_identical": same,
        }

        stop_cfg = bench_config(tmp, "stopped")
        first = run_chain(stop_cfg, "--only", "parse,chunk")
        resumed = run_chain(stop_cfg)
        st = statuses(resumed["output"])
        results["stopped_between_stages"] = {
            "first_run": statuses(first["output"]),
            "resumed_run": st,
            "resumed_at": next((s for s, v in st.items() if v == "done"), None),
            "resumed_run_s": resumed["seconds"],
            "noop_rerun_s": run_chain(stop_cfg)["seconds"],
        }

        broken = run_chain(bench_config(tmp, "broken", broken_refine=True))
        message = broken["output"][broken["output"].find("[run] stage 'refine' failed") :]
        from pipeline.rundir import RunDir

        run = RunDir(str(tmp / "runs"), "broken")
        results["stage_keeps_failing"] = {
            "returncode": broken["returncode"],
            "stopped_at": "refine" if "stage 'refine' failed" in broken["output"] else None,
            "message_names_log_and_fix": all(w in message for w in ("log:", "fix:", "kept:")),
            "earlier_stages_complete": all(
                run.stage(s).is_complete() for s in ("parse", "chunk", "extract_qa", "dedup")
            ),
            "seconds": broken["seconds"],
            "message": message[:1500],
        }
    finally:
        out = REPO / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "faults.json").write_text(json.dumps(results, indent=2))
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {k: {kk: vv for kk, vv in v.items() if kk != "message"} for k, v in results.items()}, indent=2
        )
    )
    print(results.get("stage_keeps_failing", {}).get("message", ""))


if __name__ == "__main__":
    main()
