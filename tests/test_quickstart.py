"""The README's first command, end to end: the quickstart chain on the embedded default (sample
textbooks, tiny Qwen3 on CPU vLLM, local Ray), then the notebook executed on its output.

One run of `python -m ray_jobs.run` with the shipped `quickstart.yaml` (only `run.root` moved to a
temp dir), in its own process with its own local Ray as a user runs it (not the session cluster):
every stage finishes with in = passed + rejected, each stage's input is the previous one's output,
the funnel, loss curve and score report exist, lineage traces a final row to its page, and
`notebooks/megascience_run.ipynb` runs top to bottom on the result (so it cannot rot).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import lineage
from pipeline import run_config as rc

# The chain takes ~13 min on 2 idle cores; pytest-timeout counts the fixture in the first test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
REPO = Path(__file__).resolve().parents[1]
CHAIN = ["parse", "chunk", "extract_qa", "dedup", "refine", "cot_judge", "cot_distill", "filter_qa",
         "decontam_retrieve", "decontaminate", "reference_answer", "finalize"]  # fmt: skip


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    root = tmp_path_factory.mktemp("quickstart")
    env = {
        k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"
    }  # a fresh local Ray, as `make quickstart`
    command = [sys.executable, "-m", "ray_jobs.run", "--config", str(REPO / "ray_jobs/configs/quickstart.yaml"),
               "--set", f"run.root={root}"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=2300)
    assert done.returncode == 0, (
        f"quickstart failed (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    )
    config = rc.load(REPO / "ray_jobs/configs/quickstart.yaml", {"run.root": str(root)})
    return config, done.stdout


def test_every_stage_ran_and_accounts_for_its_inputs(quickstart):
    config, stdout = quickstart
    for name in [*CHAIN, "train_sft", "evaluate"]:
        assert config.run_dir.stage(name).completed_fingerprint() == config.fingerprint(name), name
        assert re.search(rf"^{name}\s+done\s", stdout, re.M), f"summary line for {name} missing"
    stats = {name: config.run_dir.stage(name).read_stats() for name in CHAIN}
    for name, s in stats.items():
        assert s["in"] == s["passed"] + s["rejected_total"], (name, s)
    # Each curation stage reads exactly what the stage before it wrote (refine via its join step).
    for before, after in [("extract_qa", "dedup"), ("cot_judge", "cot_distill"), ("cot_distill", "filter_qa"),
                          ("filter_qa", "decontam_retrieve"), ("decontam_retrieve", "decontaminate"),
                          ("decontaminate", "reference_answer"), ("reference_answer", "finalize")]:  # fmt: skip
        assert stats[after]["in"] == stats[before]["out"], (before, after)
    assert stats["parse"]["counters"]["ocr_pages"] == 1  # the sample chemistry book's scanned page
    assert stats["finalize"]["out"] > 0, "rows must reach the final dataset"


def test_outputs_a_user_looks_at(quickstart):
    config, stdout = quickstart
    root = Path(config.run_dir.path)
    # The run ends by telling the user where each output is.
    for relative in ("funnel.png", "train_sft/loss.png", "evaluate/report.md"):
        assert str(root / relative) in stdout, relative
    for relative in ("funnel.png", "train_sft/loss.png", "train_sft/metrics.jsonl", "train_sft/model/config.json",
                     "decontaminate/report.md", "evaluate/report.md", "evaluate/scores.png"):  # fmt: skip
        assert (root / relative).is_file(), relative
    final = config.run_dir.stage("finalize").read_table()
    assert {"question", "answer", "subject", "reference_answer", "qa_id", "chunk_id"} <= set(
        final.column_names
    )


def test_lineage_of_a_final_row_reaches_its_page(quickstart):
    config, _ = quickstart
    info = lineage.lookup(config.run_dir, "row:0")
    assert info["final"] is not None and info["dropped"] is None
    assert info["document"]["source"].endswith(".pdf") and info["document"]["licence"] == "CC0-1.0"
    assert info["chunk"]["chunk_id"] == info["final"]["chunk_id"]
    assert info["extraction_raw_output"].startswith("Question:")
    assert "refined_question" in info["fields"] and "retrieved_benchmark" in info["fields"]
    assert "qa_id" in lineage.render(info)


def test_notebook_runs_on_the_quickstart_output(quickstart):
    import nbformat
    from nbclient import NotebookClient

    config, _ = quickstart
    notebook = nbformat.read(REPO / "notebooks" / "megascience_run.ipynb", as_version=4)
    os.environ["MEGASCIENCE_RUN"] = config.run_dir.path
    try:
        NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
        ).execute()
    finally:
        os.environ.pop("MEGASCIENCE_RUN", None)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum(1 for o in outputs if "image/png" in o.get("data", {})) >= 2  # funnel + loss curve at least
