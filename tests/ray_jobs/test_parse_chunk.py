"""Parse + chunk on a real local Ray cluster over every real textbook PDF and every kind of bad file."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest
import yaml

from pipeline import run_config
from pipeline.rundir import RunDir
from ray_jobs import chunk, parse
from tests.pdf_fixtures import text_pdf, write_bad_files

REPO = Path(__file__).resolve().parents[2]


def make_config(tmp: Path, name: str, input_dir: Path, **parse_overrides) -> Path:
    path = tmp / f"{name}.yaml"
    body = {
        "run": {"name": name, "root": str(tmp / "runs")},
        "parse": {"input": str(input_dir), **parse_overrides},
        "chunk": {"max_tokens": 4096},
    }
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture(scope="module")
def shelf(textbooks_dir, tmp_path_factory) -> Path:
    """The real textbooks (linked, not copied) plus one file per kind of bad input."""
    root = tmp_path_factory.mktemp("shelf")
    for pdf in textbooks_dir.glob("*.pdf"):
        (root / pdf.name).symlink_to(pdf)
    good = text_pdf(root.parent / "good_source.pdf", ["Work equals force times distance."] * 2)
    expected = write_bad_files(root / "bad", good)
    (root / "manifest.csv").write_text(
        "path,subject,licence,title\nphysics_*.pdf,physics,CC BY-SA,Gauss and Potential\nbad/*,chemistry,,\n"
    )
    (root / "expected.yaml").write_text(yaml.safe_dump(expected))
    return root


@pytest.fixture(scope="module")
def textbook_run(ray_cluster, shelf, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    config = run_config.load(make_config(tmp, "books", shelf))
    parse_stats = parse.run(config)
    chunk_stats = chunk.run(config)
    return config, parse_stats, chunk_stats


def test_every_page_is_output_or_rejected(textbook_run, textbooks_dir):
    config, stats, _ = textbook_run
    stage = config.run_dir.stage("parse")
    pages = stage.read_table().to_pandas()
    rejects = stage.read_rejects().to_pandas()
    page_rejects = rejects[rejects.input_id.str.contains(":")]
    total_pages = 0
    for pdf in sorted(textbooks_dir.glob("*.pdf")):
        with pymupdf.open(pdf) as doc:
            n = doc.page_count
        total_pages += n
        out = pages[pages.source.str.endswith(pdf.name)]
        assert len(out) > 0, pdf.name
        doc_id = out.doc_id.iloc[0]
        rejected = page_rejects[page_rejects.input_id.str.startswith(f"{doc_id}:")]
        numbers = sorted(out.page_no.tolist() + [int(i.split(":")[1]) for i in rejected.input_id])
        assert numbers == list(range(1, n + 1)), f"{pdf.name}: pages lost or duplicated"
        assert (out.n_pages == n).all()
    assert stats["in"] == total_pages == stats["passed"] + stats["rejected_total"]
    assert set(stats["rejected"]) <= {"empty_page", "no_text_layer", "ocr_failed", "page_error"}


def test_scanned_pages_are_ocred(textbook_run):
    config, stats, _ = textbook_run
    pages = config.run_dir.stage("parse").read_table().to_pandas()
    scanned = pages[pages.source.str.contains("SCANNED_")]
    assert scanned.status.tolist() == ["ocr"]
    text = scanned.text.iloc[0].lower()
    assert "radical" in text and "mechanism" in text and "propagation" in text
    cover = pages[pages.source.str.contains("physics_") & (pages.page_no == 1)]
    assert cover.status.tolist() == ["ocr"]  # the image-only cover
    assert stats["counters"]["ocr_pages"] == 2


def test_manifest_metadata_reaches_pages(textbook_run):
    config, _, _ = textbook_run
    pages = config.run_dir.stage("parse").read_table().to_pandas()
    physics = pages[pages.source.str.contains("physics_")]
    assert set(physics.subject) == {"physics"} and set(physics.licence) == {"CC BY-SA"}
    assert set(pages[pages.source.str.contains("econ_")].subject) == {"economics"}  # from the file name


def test_bad_files_are_rejected_with_their_reason(textbook_run, shelf):
    config, stats, _ = textbook_run
    expected = yaml.safe_load((shelf / "expected.yaml").read_text())
    rejects = config.run_dir.stage("parse").read_rejects().to_pandas()
    by_file = {Path(s).name: r for s, r in zip(rejects.source, rejects.reason) if "/bad/" in s}
    assert by_file == expected
    files = stats["units"]["files"]
    assert files["in"] == 7 + len(expected) and files["passed"] == 7
    assert files["rejected"] == dict(collections.Counter(expected.values()))
    assert all(rejects.detail.str.len() > 0)


def test_chunks_bounded_and_covering(textbook_run, qwen3_tokenizer):
    config, _, chunk_stats = textbook_run
    pages = config.run_dir.stage("parse").read_table().to_pandas()
    chunks = config.run_dir.stage("chunk").read_table().to_pandas()
    assert chunk_stats["out"] == len(chunks) and chunk_stats["in"] == len(pages) == chunk_stats["passed"]
    for doc_id, doc_pages in pages.groupby("doc_id"):
        text = "\n\n".join(doc_pages.sort_values("page_no").text)
        doc_chunks = chunks[chunks.doc_id == doc_id].sort_values("chunk_index")
        assert "".join(doc_chunks.text) == text
        assert doc_chunks.page_start.min() == doc_pages.page_no.min()
        assert doc_chunks.page_end.max() == doc_pages.page_no.max()
    counts = [len(qwen3_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in chunks.text]
    assert max(counts) <= 4096
    assert counts == chunks.n_tokens.tolist()
    assert chunks.chunk_id.is_unique
    assert set(chunks.subject) <= {"math", "physics", "chemistry", "biology", "economics"}


def test_rerun_of_finished_stages_is_a_noop(textbook_run, capsys):
    config, stats, chunk_stats = textbook_run
    marker = Path(config.run_dir.stage("chunk").path) / "_SUCCESS"
    before = marker.stat().st_mtime_ns
    assert parse.run(config) == stats
    assert chunk.run(config) == chunk_stats
    assert "already complete" in capsys.readouterr().out
    assert marker.stat().st_mtime_ns == before


def test_changed_config_is_refused_not_silently_reused(textbook_run):
    config, _, _ = textbook_run
    changed = config.with_stage("chunk", max_tokens=1024)
    with pytest.raises(SystemExit, match="different chunk config"):
        chunk.run(changed)


def _rows(run_dir: RunDir, stage: str, key: list[str]):
    table = run_dir.stage(stage).read_table().to_pandas()
    return table.sort_values(key).reset_index(drop=True)


@pytest.mark.slow
def test_killed_parse_resumes_to_identical_rows(ray_cluster, textbooks_dir, tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    for name in ("econ_", "bio_", "physics_"):
        pdf = next(textbooks_dir.glob(f"{name}*.pdf"))
        (books / pdf.name).symlink_to(pdf)
    overrides = {"pages_per_shard": 4, "resources": {"concurrency": 1}}
    killed_cfg = make_config(tmp_path, "killed", books, **overrides)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ray_jobs.parse", "--config", str(killed_cfg)],
        cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    shards = tmp_path / "runs" / "killed" / "parse" / "shards"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and len(list(shards.glob("*-p*.json"))) < 5:
            assert proc.poll() is None, "the job ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = len(list(shards.glob("*-p*.json")))
    assert 5 <= done_before < 57, "kill must land mid-run"
    assert not (tmp_path / "runs" / "killed" / "parse" / "_SUCCESS").exists()

    killed = run_config.load(killed_cfg)
    parse.run(killed)  # resume in this process's Ray
    chunk.run(killed)
    clean = run_config.load(make_config(tmp_path, "clean", books, **overrides))
    parse.run(clean)
    chunk.run(clean)

    resumed_pages = _rows(killed.run_dir, "parse", ["doc_id", "page_no"])
    clean_pages = _rows(clean.run_dir, "parse", ["doc_id", "page_no"])
    assert len(resumed_pages) == len(clean_pages) == len(resumed_pages.drop_duplicates(["doc_id", "page_no"]))
    assert resumed_pages.equals(clean_pages)
    assert _rows(killed.run_dir, "chunk", ["chunk_id"]).equals(_rows(clean.run_dir, "chunk", ["chunk_id"]))
    stats = killed.run_dir.stage("parse").read_stats()
    assert stats["in"] == stats["passed"] + stats["rejected_total"] == 28 + 115 + 81
