"""The stage runner: selection, skipping finished stages, resuming between stages, a stage that
keeps failing stops the chain with the stage, the log and the fix, and nothing is lost."""

from __future__ import annotations

import pytest
import yaml

from pipeline import run_config
from pipeline.config import ConfigError
from ray_jobs import run
from tests.pdf_fixtures import text_pdf


def write_config(tmp_path, **sections) -> str:
    books = tmp_path / "books"
    books.mkdir(exist_ok=True)
    for subject in ("physics", "biology"):
        text_pdf(
            books / f"{subject}_notes.pdf", [f"{subject}: a worked example on page {i}." for i in range(1, 4)]
        )
    body = {
        "run": {"name": "chain", "root": str(tmp_path / "runs"), "retries": 1},
        "parse": {"input": str(books)},
        "chunk": {"max_tokens": 256},
        **sections,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def test_selection_follows_the_chain_order(tmp_path):
    config = run_config.load(write_config(tmp_path, dedup={}))
    assert run.select(config, None, None, None) == ["parse", "chunk", "dedup"]
    assert run.select(config, None, "chunk", None) == ["chunk", "dedup"]
    assert run.select(config, None, None, "chunk") == ["parse", "chunk"]
    assert run.select(config, "evaluate,parse", None, None) == ["parse", "evaluate"]
    with pytest.raises(ConfigError, match="unknown stage 'pasre'"):
        run.select(config, None, "pasre", None)


def test_stop_between_stages_resumes_at_the_first_incomplete_one(ray_cluster, tmp_path, capsys):
    path = write_config(tmp_path)
    first = run.main(["--config", path, "--only", "parse"])  # the run "stops" after parse
    assert [(o.section, o.status) for o in first] == [("parse", "done")]
    second = run.main(["--config", path])
    assert [(o.section, o.status) for o in second] == [("parse", "skipped"), ("chunk", "done")]
    third = run.main(["--config", path])
    assert [o.status for o in third] == ["skipped", "skipped"]
    out = capsys.readouterr().out
    assert "run directory:" in out and "chunk" in out


def test_a_stage_that_keeps_failing_stops_the_chain_and_keeps_outputs(ray_cluster, tmp_path, capsys):
    path = write_config(tmp_path, chunk={"tokenizer": {"name_or_path": str(tmp_path / "no-such-tokenizer")}})
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--config", path, "--retries", "1"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "stage 'chunk' failed 2 time(s)" in err
    assert "no-such-tokenizer" in err
    assert "log:" in err and "fix:" in err and "nothing was deleted" in err
    config = run_config.load(path)
    assert config.run_dir.stage("parse").is_complete()  # what was written stays
    assert config.run_dir.stage("parse").read_table().num_rows == 6
    assert not config.run_dir.stage("chunk").is_complete()
