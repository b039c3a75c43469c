"""Chunk boundaries and limits, with a word tokenizer and with the real Qwen tokenizer."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from pipeline.chunk.chunker import boundary_priority, chunk_text, join_pages
from pipeline.chunk.config import ChunkConfig
from pipeline.chunk.stage import chunk_document
from pipeline.config import ConfigError, from_dict
from pipeline.schema import PAGE_SCHEMA

WORD = re.compile(r"\S+|\s+")


def word_tokens(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in WORD.finditer(text)]


def count_words(text: str) -> int:
    return len(WORD.findall(text))


def test_cuts_prefer_paragraphs_and_cover_the_text():
    paragraphs = [" ".join(f"w{p}_{i}" for i in range(30)) + "." for p in range(10)]
    text = "\n\n".join(paragraphs)
    spans = chunk_text(text, word_tokens(text), count_words, max_tokens=150)
    assert "".join(text[s.char_start : s.char_end] for s in spans) == text
    assert all(s.n_tokens <= 150 for s in spans)
    for span in spans[:-1]:
        assert text[: span.char_end].endswith("\n\n")  # every cut right after a paragraph


def test_sentence_then_word_boundaries_when_no_paragraph():
    text = " ".join(f"Sentence number {i} ends here." for i in range(60))
    spans = chunk_text(text, word_tokens(text), count_words, max_tokens=50)
    for span in spans[:-1]:
        assert text[: span.char_end].rstrip().endswith(".")
    assert boundary_priority("a.\n\nb", 4) == 4
    assert boundary_priority("Ends. Next", 5) == 3
    assert boundary_priority("line\nnext", 5) == 2
    assert boundary_priority("two words", 3) == 1
    assert boundary_priority("word", 2) == 0


def test_one_giant_word_still_respects_the_limit():
    text = "x" * 10 + " " + "y" * 5
    offsets = [(i, i + 1) for i in range(len(text))]  # one token per character
    spans = chunk_text(text, offsets, len, max_tokens=4)
    assert all(s.n_tokens <= 4 for s in spans)
    assert "".join(text[s.char_start : s.char_end] for s in spans) == text


def test_page_spans():
    doc = join_pages([(3, "aaaa"), (4, "bbbb"), (6, "cc")])
    assert doc.text == "aaaa\n\nbbbb\n\ncc"
    assert doc.page_span(0, 4) == (3, 3)
    assert doc.page_span(2, 9) == (3, 4)
    assert doc.page_span(4, 6) == (3, 3)  # the separator belongs to the page before
    assert doc.page_span(12, 14) == (6, 6)


def _pages(texts: list[str]) -> pa.Table:
    rows = [
        {"doc_id": "d1", "page_no": i + 1, "text": t, "n_chars": len(t), "status": "ok", "source": "b.pdf",
         "subject": "physics", "title": None, "licence": None, "n_pages": len(texts)}
        for i, t in enumerate(texts)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=PAGE_SCHEMA)


def test_real_tokenizer_limits_and_multibyte_text(qwen3_tokenizer):
    page = "∮ E⃗·dA⃗ = q/ε₀ — 电场通量 🙂 " * 40 + "\n\nThe flux through a closed surface. " * 30
    table = _pages([page] * 4)
    rows = chunk_document(table, qwen3_tokenizer, ChunkConfig(max_tokens=256))
    text = "\n\n".join([page] * 4)
    assert "".join(r["text"] for r in rows) == text
    for r in rows:
        n = len(qwen3_tokenizer(r["text"], add_special_tokens=False)["input_ids"])
        assert n == r["n_tokens"] <= 256
    assert [r["chunk_index"] for r in rows] == list(range(len(rows)))
    assert len({r["chunk_id"] for r in rows}) == len(rows)
    assert rows[0]["page_start"] == 1 and rows[-1]["page_end"] == 4
    assert rows == chunk_document(table, qwen3_tokenizer, ChunkConfig(max_tokens=256))  # deterministic


def test_missing_columns_fail_with_the_stage_name(qwen3_tokenizer):
    with pytest.raises(ValueError, match=r"\[chunk\] input is missing column"):
        chunk_document(pa.table({"text": ["x"]}), qwen3_tokenizer, ChunkConfig())


def test_config_validation():
    with pytest.raises(ConfigError, match=r"chunk\.max_tokens"):
        from_dict(ChunkConfig, {"max_tokens": 4}, prefix="chunk")
    with pytest.raises(ConfigError, match=r"unknown key chunk\.max_token in ChunkConfig"):
        from_dict(ChunkConfig, {"max_token": 4096}, prefix="chunk")
