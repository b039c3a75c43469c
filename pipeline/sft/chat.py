"""Records → conversations → token ids with an assistant-only loss mask.

A record's ``question`` becomes the user turn and its ``answer`` the assistant turn (column names
come from the config, so any QA table works). The chat template renders the conversation and marks
the assistant's content and end-of-turn token with ``{% generation %}``; transformers'
``apply_chat_template(..., return_assistant_tokens_mask=True)`` turns those marks into a 0/1 mask
over the token ids. Only mask-1 tokens are trained on: the model learns to answer, not to write
questions or chat headers. With the Qwen3 ChatML template one conversation looks like this
(``|`` separates tokens, ``^`` marks trained ones)::

    <|im_start|>|user|\\n|What|…|?|<|im_end|>|\\n|<|im_start|>|assistant|\\n|The|…|.|<|im_end|>|\\n
                                                                        ^^^^^^^^^^^^^^^^

Too-long conversations are cut as LLaMA-Factory cuts them (:func:`truncate_lengths`), so a long
question never leaves the answer without a single trained token. One deliberate difference: a cut
prompt keeps its closing template tokens (``<|im_end|>\\n<|im_start|>assistant\\n``), so the answer
still follows an assistant header; LLaMA-Factory keeps the prompt's first tokens only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pipeline import assets
from pipeline.config import ConfigError

BUILTIN_TEMPLATES = ("builtin:qwen3", "builtin:qwen2.5", "builtin:llama3")


def load_chat_template(name: str, tokenizer: Any) -> str:
    """The Jinja chat template named by ``model.chat_template`` (see :class:`SftModelConfig`)."""
    if name == "auto":
        template = getattr(tokenizer, "chat_template", None)
        if not template:
            raise ConfigError(
                f"train_sft.model.chat_template: the tokenizer {tokenizer.name_or_path!r} has no chat "
                f"template; set one of {', '.join(BUILTIN_TEMPLATES)} or a path to a .jinja file"
            )
    elif name == "builtin:qwen3":
        template = assets.QWEN3_CHAT_TEMPLATE
    elif name in BUILTIN_TEMPLATES:
        file = name.removeprefix("builtin:").replace(".", "_") + ".jinja"
        template = resources.files("pipeline.sft").joinpath("templates").joinpath(file).read_text()
    else:
        try:
            with open(name, encoding="utf-8") as f:
                template = f.read()
        except OSError as exc:
            raise ConfigError(
                f"train_sft.model.chat_template: cannot read template file {name!r} ({exc}); use 'auto', "
                f"one of {', '.join(BUILTIN_TEMPLATES)} or an existing .jinja file"
            ) from None
    if "generation" not in template or "endgeneration" not in template:
        raise ConfigError(
            f"train_sft.model.chat_template: the template {name!r} has no {{% generation %}} … "
            "{% endgeneration %} block around the assistant content, so the loss cannot be limited to "
            f"assistant tokens; use one of {', '.join(BUILTIN_TEMPLATES)} or add the markers"
        )
    return template


def load_sft_tokenizer(tokenizer_name: str, chat_template: str) -> Any:
    """The tokenizer with the training chat template installed and a pad token set."""
    tokenizer = assets.load_tokenizer(tokenizer_name)
    tokenizer.chat_template = load_chat_template(chat_template, tokenizer)
    if tokenizer.pad_token_id is None:
        # Llama-3 tokenizers have no pad token; pads are masked out of attention and loss anyway.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_messages(question: str, answer: str, system_prompt: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": question})
    messages.append({"role": "assistant", "content": answer})
    return messages


def truncate_lengths(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """How many prompt (source) and answer (target) tokens to keep within ``cutoff_len``.

    LLaMA-Factory's ``infer_seqlen``, which the paper's training used: a short answer is kept whole
    and the question cut; a short question is kept whole and the answer cut; otherwise both are cut
    in proportion to their lengths. Both keep their first tokens.
    """
    if target_len * 2 < cutoff_len:
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target_len = cutoff_len - source_len
    else:
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    new_source_len = min(max(cutoff_len - new_target_len, 0), source_len)
    return new_source_len, new_target_len


@dataclass(frozen=True)
class TokenizedConversation:
    input_ids: list[int]
    loss_mask: list[int]  # 1 = trained-on (assistant) token
    truncated: bool

    @property
    def n_loss_tokens(self) -> int:
        return sum(self.loss_mask)


def tokenize_conversations(
    tokenizer: Any, conversations: Sequence[list[dict[str, str]]], max_length: int
) -> list[TokenizedConversation]:
    """Render and tokenise a batch of single-exchange conversations, cut to ``max_length`` tokens."""
    ids_batch, mask_batch = _render(tokenizer, conversations)
    results = []
    for ids, mask in zip(ids_batch, mask_batch):
        if len(ids) <= max_length:
            results.append(TokenizedConversation(ids, mask, truncated=False))
            continue
        # Source = everything before the first trained token (system, question, assistant header);
        # target = the rest (answer, end-of-turn, trailing newline).
        source_len = mask.index(1) if 1 in mask else len(ids)
        keep_source, keep_target = truncate_lengths(source_len, len(ids) - source_len, max_length)
        header = min(assistant_header_length(tokenizer), keep_source)
        keep = (
            list(range(keep_source - header))
            + list(range(source_len - header, source_len))
            + list(range(source_len, source_len + keep_target))
        )
        results.append(TokenizedConversation([ids[i] for i in keep], [mask[i] for i in keep], truncated=True))
    return results


def _render(
    tokenizer: Any, conversations: Sequence[list[dict[str, str]]]
) -> tuple[list[list[int]], list[list[int]]]:
    out = tokenizer.apply_chat_template(
        list(conversations), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    return [list(ids) for ids in out["input_ids"]], [list(m) for m in out["assistant_masks"]]


def assistant_header_length(tokenizer: Any) -> int:
    """Tokens the template puts between the end of the question and the answer (for ChatML:
    ``<|im_end|>``, ``\\n``, ``<|im_start|>``, ``assistant``, ``\\n``): the common tail of two prompts."""
    cached = getattr(tokenizer, "_sft_header_length", None)
    if cached is None:
        (a, b), (mask_a, mask_b) = _render(
            tokenizer, [build_messages("Alpha", "x"), build_messages("Beta gamma delta", "x")]
        )
        a, b = a[: mask_a.index(1)], b[: mask_b.index(1)]
        cached = 0
        while cached < min(len(a), len(b)) and a[-1 - cached] == b[-1 - cached]:
            cached += 1
        tokenizer._sft_header_length = cached
    return cached


def end_of_turn_token_id(tokenizer: Any) -> int:
    """The token that closes an assistant turn under the installed template (``<|im_end|>``,
    ``<|eot_id|>``): the last trained token of a rendered reply. Serving must stop on it."""
    (conv,) = tokenize_conversations(tokenizer, [build_messages("q", "a")], max_length=1 << 30)
    last = max(i for i, m in enumerate(conv.loss_mask) if m)
    return conv.input_ids[last]
