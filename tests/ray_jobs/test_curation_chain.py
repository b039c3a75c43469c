"""The whole curation chain on real textbook chunks with the real vLLM CPU engine and the tiny model.

One vLLM OpenAI-compatible server (the tiny random Qwen3) serves every LLM stage through Ray Data
LLM's HTTP processor, so the engine starts once. A random model writes noise; guided decoding
(regex / choice) makes it write each stage's output format, so real rows flow through every stage
and both the keep and the reject paths run. The stages are called through their ``ray_jobs``
entrypoints with one run YAML, as a user would. For every stage: in = passed + rejected, and its
input count is the previous stage's output count.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

PDF = "physics_ostp_intro_physics_ch_gauss_potential_2019-06.pdf"
KEY = "curation-test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir, tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model_dir),
           "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--api-key", KEY,
           "--max-model-len", "2048", "--max-num-seqs", "8", "--dtype", "bfloat16", "--enforce-eager"]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 600
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                req = urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {KEY}"})
                with urllib.request.urlopen(req, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"vLLM server not ready in 600 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(2)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def llm(base_url: str, max_tokens: int, temperature: float = 0.0, **guided) -> dict:
    # Sampled stages get a fixed seed: reproducible, yet different prompts give different outputs
    # (greedy decoding of a random model writes the same text for every chunk).
    return {
        "engine": {"kind": "openai", "model": "tiny", "base_url": base_url, "api_key_env": "CURATION_TEST_KEY",
                   "concurrency": 2, "batch_size": 4},
        "sampling": {"temperature": temperature, "max_tokens": max_tokens, "guided": guided,
                     **({"seed": 0} if temperature else {})},
    }  # fmt: skip


def run_yaml(tmp_path: Path, base_url: str, benchmarks_dir: Path) -> Path:
    words = "[a-z]{3,8}( [a-z]{2,8}){4,6}"  # >= 5 tokens, so the dedup length filter keeps them
    config = {
        "run": {"name": "chain", "root": str(tmp_path / "runs")},
        "extract_qa": {**llm(base_url, 200, 1.0, regex=rf"Question: {words}\?\nAnswer: {words}\.\n\nQuestion: {words}\?\nAnswer: {words}\."),
                       "standards": ["low"]},
        "dedup": {"input_stage": "extract_qa"},
        "refine": llm(base_url, 128, regex=rf"Refined Question: {words}\?\nRefined Answer: {words}\."),
        "cot_judge": llm(base_url, 24, 1.0, choice=["Analysis: it explains why.\nDecision: YES",
                                               "Analysis: a bare fact.\nDecision: NO"]),
        "cot_distill": llm(base_url, 64, regex=r"Step 1: [a-z ]{5,30}\. So the answer is [a-z0-9]{1,5}\."),
        "filter_qa": llm(base_url, 24, choice=["Analysis:\nThe pair is complete.\nDecision:\nYES"]),
        "decontam_retrieve": {"benchmarks_dir": str(benchmarks_dir), "embedding_model": "builtin:all-minilm-l6-v2",
                              "batch_size": 64, "top_k": 2},
        "decontaminate": llm(base_url, 24, 1.0, choice=["Analysis: The two problems differ.\nDecision: NO",
                                                   "Analysis: I cannot tell."]),
        "reference_answer": llm(base_url, 24, regex=r"Reference Answer: [a-z0-9]{1,8}"),
        "finalize": {"dataset_name": "chain test"},
    }  # fmt: skip
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_whole_curation_chain(vllm_server, ray_cluster, tmp_path, textbooks_dir, benchmarks_dir, monkeypatch):
    from pipeline import run_config as rc
    from pipeline.extract.task import ExtractQATask
    from ray_jobs import (
        cot_distill,
        cot_judge,
        decontam_retrieve,
        decontaminate,
        dedup,
        filter_qa,
        finalize,
        funnel,
        reference_answer,
        refine,
    )  # fmt: skip
    from ray_jobs.llm_stage import run_llm_stage
    from tests.pipeline.llm.helpers import chunks_from_pdf, write_stage

    monkeypatch.setenv("CURATION_TEST_KEY", KEY)
    path = run_yaml(tmp_path, vllm_server, benchmarks_dir)
    config = rc.load(path)
    chunks = chunks_from_pdf(textbooks_dir / PDF, "physics", 3, max_chars=700)
    write_stage(config.run_dir.stage("chunk"), {"part-000": chunks[:2], "part-001": chunks[2:]})
    run_llm_stage(config, "extract_qa", ExtractQATask(config.stage("extract_qa")))

    argv = ["--config", str(path)]
    for job in (dedup, refine, cot_judge, cot_distill, filter_qa, decontam_retrieve, decontaminate,
                reference_answer, finalize):  # fmt: skip
        job.main(argv)

    chain = ["extract_qa", "dedup", "refine_input", "refine", "cot_judge", "cot_distill", "filter_qa",
             "decontam_retrieve", "decontaminate", "reference_answer", "finalize"]  # fmt: skip
    stats = {name: config.run_dir.stage(name).read_stats() for name in chain}
    for name in chain:
        s = stats[name]
        assert config.run_dir.stage(name).is_complete(), name
        assert s["in"] == s["passed"] + s["rejected_total"], (name, s)
        assert len(config.run_dir.stage(name).read_rejects()) == s["rejected_total"], name
    assert stats["extract_qa"]["out"] == 6  # 3 chunks x 2 pairs
    for before, after in itertools.pairwise(chain):
        assert stats[after]["in"] == stats[before]["out"], (before, after)
    assert stats["finalize"]["out"] > 0, stats

    # lineage and content of the release
    import datasets

    final = config.run_dir.stage("finalize")
    ds = datasets.load_dataset("parquet", data_files=f"{final.data_path}/*.parquet", split="train")
    chunk_ids = {c["chunk_id"] for c in chunks}
    for row in ds:
        assert row["chunk_id"] in chunk_ids and row["subject"] == "physics"
        assert row["question"].endswith("?") and row["reference_answer"]
    refined = {r["qa_id"]: r for r in config.run_dir.stage("reference_answer").read_table().to_pylist()}
    for row in ds:
        source = refined[row["qa_id"]]
        assert row["answer"] == (source["distill_cot"] or source["refined_answer"])
        assert source["refine_gen"]["engine"] == "openai" and source["refine_gen"]["prompt"] == "refine_qa@v1"
        assert len(source["retrieved_benchmark"]) == 2
    # the contamination report and the funnel
    assert (config.run_dir.stage("decontaminate").path and
            Path(config.run_dir.stage("decontaminate").path, "report.md").read_text().startswith("# Contamination"))  # fmt: skip
    assert "| dedup |" in Path(final.path, "README.md").read_text()
    rows = funnel.main(argv)
    assert [r["stage"] for r in rows][:2] == ["chunk", "extract_qa"] and rows[-1]["stage"] == "finalize"
    assert Path(config.run_dir.path, "funnel.png").stat().st_size > 1000
    # a finished chain rerun is a no-op
    assert dedup.main(argv) is None and refine.main(argv) is None
