"""Decontamination retrieval with the real benchmark files and the real embedding model.

Planted paraphrases of benchmark questions, mixed with ordinary textbook-style questions, must
find their source item among the top-5 neighbours (recall >= 95%), reported per benchmark.
The pool embedding (17,908 questions) is computed once and cached in $MEGASCIENCE_CACHE.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict

import pyarrow as pa
import pytest

from pipeline.decontam.config import DecontamRetrieveConfig
from pipeline.decontam.embed import MINILM, Embedder
from pipeline.decontam.retrieve import build_index, load_index, retrieve_table
from pipeline.dedup.synthetic import generate_questions
from pipeline.rundir import RunDir

PER_BENCHMARK = 4

_SWAPS = [
    (r"\bWhat is\b", "Determine"), (r"\bCalculate\b", "Compute"), (r"\bcalculate\b", "compute"),
    (r"\bFind\b", "Determine"), (r"\bWhich of the following\b", "Which one of these"),
    (r"\bfollowing\b", "given"), (r"\bapproximately\b", "roughly"), (r"\bpatient\b", "person"),
    (r"\bman\b", "gentleman"), (r"\bwoman\b", "lady"), (r"\bHow\b", "In what way"),
]  # fmt: skip
_OPENERS = ["Consider this problem: ", "Here is a question. ", "Answer the following. ", ""]


def paraphrase(question: str, rng: random.Random) -> str:
    """A light rewording a contaminated training set could contain: synonyms, a new opener,
    trailing punctuation and a closing instruction."""
    text = question.strip()
    for pattern, repl in _SWAPS:
        text = re.sub(pattern, repl, text, count=1)
    text = rng.choice(_OPENERS) + text.rstrip("?.") + rng.choice(["?", ".", " — explain briefly."])
    return text


@pytest.fixture(scope="module")
def retrieve_cfg(benchmarks_dir):
    return DecontamRetrieveConfig(benchmarks_dir=str(benchmarks_dir), embedding_model=MINILM, batch_size=64)


@pytest.fixture(scope="module")
def index(tmp_path_factory, retrieve_cfg):
    run = RunDir(str(tmp_path_factory.mktemp("decontam")), "r")
    meta = build_index(run.uri, retrieve_cfg)
    pool, vectors = load_index(run.uri)
    return meta, pool, vectors


def test_index_covers_the_registry_pool(index):
    meta, pool, vectors = index
    assert meta["rows"] == pool.num_rows == vectors.shape[0] == 17_908  # the 15 present files (SPEC §15)
    assert vectors.shape[1] == 384 and len(meta["counts"]) == 15
    assert set(meta["missing"]) == {"mmlu", "mmlu_pro", "gpqa_main", "super_gpqa", "math",
                                    "NEWTON-explicit-questions-bool", "NEWTON-explicit-questions-mc",
                                    "NEWTON-implicit-questions"}  # fmt: skip


def test_planted_paraphrases_are_retrieved(index, retrieve_cfg):
    _meta, pool, vectors = index
    rng = random.Random(7)
    by_bench = defaultdict(list)
    for i, bench in enumerate(pool["benchmark"].to_pylist()):
        by_bench[bench].append(i)
    planted, rows = {}, []
    for bench, positions in sorted(by_bench.items()):
        for pos in rng.sample(positions, PER_BENCHMARK):
            qa_id = f"planted-{bench}-{pos}"
            planted[qa_id] = (bench, pool["question"][pos].as_py())
            rows.append({"qa_id": qa_id, "refined_question": paraphrase(pool["question"][pos].as_py(), rng)})
    rows += [{"qa_id": r["qa_id"], "refined_question": r["question"]} for r in generate_questions(40, seed=3)
             if r["planted"] == "original"]  # fmt: skip
    rows.append({"qa_id": "empty", "refined_question": ""})
    embedder = Embedder(MINILM, batch_size=64)
    data, _rejects, result = retrieve_table(
        pa.Table.from_pylist(rows), embedder, pool, vectors, retrieve_cfg, "s.parquet"
    )
    assert (result.in_rows, result.rejected) == (len(rows), {"missing_query": 1})
    found = defaultdict(list)
    for row in data.to_pylist():
        cands = row["retrieved_benchmark"]
        assert len(cands) == 5 and cands == sorted(cands, key=lambda c: -c["similarity_score"])
        if row["qa_id"] in planted:
            bench, source = planted[row["qa_id"]]
            # a hit is the source item or an identical question (benchmarks repeat some templates)
            found[bench].append(any(c["question"] == source for c in cands))
    recall = {bench: sum(hits) / len(hits) for bench, hits in found.items()}
    print("\nrecall@5 of planted paraphrases per benchmark:")
    for bench, value in sorted(recall.items()):
        print(f"  {bench:<40} {value:.2f}")
    total = sum(sum(h) for h in found.values()) / sum(len(h) for h in found.values())
    print(f"  {'overall':<40} {total:.3f} ({sum(len(h) for h in found.values())} planted)")
    assert len(recall) == 15
    assert total >= 0.95
