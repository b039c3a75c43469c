"""Rendering with the chat template and the assistant-only loss mask, on the real Qwen tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError
from pipeline.sft.chat import (
    build_messages,
    end_of_turn_token_id,
    load_chat_template,
    load_sft_tokenizer,
    tokenize_conversations,
    truncate_lengths,
)


@pytest.fixture(scope="module")
def tokenizer(qwen3_tokenizer_dir: Path):
    return load_sft_tokenizer(str(qwen3_tokenizer_dir), "builtin:qwen3")


def test_loss_mask_covers_exactly_the_assistant_tokens(tokenizer) -> None:
    question, answer = "What is the SI unit of force?", "The newton (N), equal to 1 kg·m/s²."
    (conv,) = tokenize_conversations(tokenizer, [build_messages(question, answer)], max_length=4096)
    pieces = [tokenizer.decode([t]) for t in conv.input_ids]
    prompt_ids = tokenizer.encode(f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")
    answer_ids = tokenizer.encode(answer)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    newline = tokenizer.encode("\n")
    # The rendered conversation is exactly: prompt, answer, <|im_end|>, "\n" …
    assert conv.input_ids == prompt_ids + answer_ids + [im_end] + newline
    # … and, token by token, only the answer and its closing <|im_end|> are trained on.
    expected = [0] * len(prompt_ids) + [1] * len(answer_ids) + [1] + [0] * len(newline)
    for i, (piece, got, want) in enumerate(zip(pieces, conv.loss_mask, expected)):
        assert got == want, f"token {i} {piece!r}: mask {got}, expected {want}"
    assert len(conv.loss_mask) == len(expected)
    assert tokenizer.decode([t for t, m in zip(conv.input_ids, conv.loss_mask) if m]) == answer + "<|im_end|>"
    assert not conv.truncated


def test_system_prompt_is_not_trained_on(tokenizer) -> None:
    (conv,) = tokenize_conversations(tokenizer, [build_messages("Q?", "A.", "Be brief.")], 4096)
    trained = tokenizer.decode([t for t, m in zip(conv.input_ids, conv.loss_mask) if m])
    assert trained == "A.<|im_end|>"
    assert tokenizer.decode(conv.input_ids).startswith("<|im_start|>system\nBe brief.<|im_end|>")


@pytest.mark.parametrize(
    ("source", "target", "cutoff", "expected"),
    [
        (3000, 500, 1024, (524, 500)),  # short answer kept whole, question cut
        (100, 3000, 1024, (100, 924)),  # short question kept whole, answer cut
        (3000, 1000, 1024, (768, 256)),  # both long: cut in proportion (LLaMA-Factory infer_seqlen)
    ],
)
def test_truncation_follows_llama_factory(source: int, target: int, cutoff: int, expected: tuple) -> None:
    assert truncate_lengths(source, target, cutoff) == expected
    assert sum(truncate_lengths(source, target, cutoff)) <= cutoff


def test_long_conversation_is_cut_and_keeps_answer_tokens(tokenizer) -> None:
    question = "Describe the experiment. " * 200
    answer = "First we measure the mass. " * 200
    (conv,) = tokenize_conversations(tokenizer, [build_messages(question, answer)], max_length=256)
    assert conv.truncated and len(conv.input_ids) == 256
    assert 0 < conv.n_loss_tokens < 256
    first_trained = conv.loss_mask.index(1)
    assert tokenizer.decode(conv.input_ids[first_trained - 3 : first_trained]) == "<|im_start|>assistant\n"


@pytest.mark.parametrize("template", ["builtin:qwen2.5", "builtin:llama3"])
def test_builtin_templates_mark_the_assistant_turn(qwen3_tokenizer_dir: Path, template: str) -> None:
    tok = load_sft_tokenizer(str(qwen3_tokenizer_dir), template)
    (conv,) = tokenize_conversations(tok, [build_messages("Why?", "Because.")], 4096)
    trained = tok.decode([t for t, m in zip(conv.input_ids, conv.loss_mask) if m])
    assert trained.startswith("Because.")
    assert "Why?" not in trained


def test_template_without_generation_markers_is_refused(qwen3_tokenizer, tmp_path: Path) -> None:
    plain = tmp_path / "plain.jinja"
    plain.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    with pytest.raises(ConfigError, match="generation"):
        load_chat_template(str(plain), qwen3_tokenizer)
    with pytest.raises(ConfigError, match="cannot read template file"):
        load_chat_template(str(tmp_path / "missing.jinja"), qwen3_tokenizer)


def test_end_of_turn_token_is_im_end(tokenizer) -> None:
    assert end_of_turn_token_id(tokenizer) == tokenizer.convert_tokens_to_ids("<|im_end|>")
