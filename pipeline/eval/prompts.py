"""Zero-shot chain-of-thought prompts per question type, option order, and chat-template rendering.

Prompt families (SPEC-eval §1.1; wording ours, formats the reference's):

- ``mc``: the instruction to end with a line ``Answer: $LETTER`` (listing the allowed letters),
  then ``Question: …`` and the options one per line as ``(A) text`` (SuperGPQA: ``A) text``).
  MMLU-Pro, SuperGPQA and ChemBench list A–J whatever the option count, as the reference does.
- ``mc_pubmedqa``: the same instruction plus a sentence asking to reason over the information,
  then ``Information:`` with one ``- passage`` line per context, the question and (A) Yes (B) No
  (C) Maybe, without a ``Question:`` prefix.
- ``box``: ``Question: …`` then "reason step by step, and put your final answer within \\boxed{}".
- ``scibench``: a clear step-by-step solution, the unit is given and must not be written, a decimal
  with three digits after the point, ending "The answer is therefore \\boxed{[ANSWER]}."
- ``olympiad``: a one-line persona, then the item's own rendered problem text.

Option order: ``reference`` keeps the order the registry gives (the reference's: GPQA's gold is
always D); ``shuffled`` permutes the options with an RNG seeded by (seed, item id), so a rerun
gives the same order and every item its own.

Rendering: the user turn alone through the model's chat template with ``add_generation_prompt``;
``enable_thinking`` is passed only when set (Qwen3: ``False`` = the paper's non-thinking mode,
which pre-fills an empty think block), the result is left-stripped and a leading BOS/EOS removed.
The string goes to the completions endpoint so the server cannot re-template it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.benchmarks import BenchmarkItem, Subtask
from pipeline.benchmarks import registry as benchmark_registry
from pipeline.rundir import stable_id

PROMPT_VERSION = "eval-prompts@1"
OptionOrder = Literal["reference", "shuffled"]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

MC_INSTRUCTION = (
    "Answer the following multiple choice question. There is only one correct answer. The last line "
    "of your response should be in the format 'Answer: $LETTER' (without quotes), where LETTER is one of {letters}."
)
PUBMEDQA_EXTRA = " Read the information below, analyze it step by step together with your own knowledge, and then give your answer."
BOX_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
SCIBENCH_INSTRUCTION = (
    "Solve the following scientific problem (chemistry, physics or mathematics) with a clear, "
    "step-by-step solution. The unit of the answer is given in the problem; do not write the unit "
    "in your answer. Give the final answer as a decimal number with three digits after the decimal "
    'point, and end your response with "The answer is therefore \\boxed{[ANSWER]}."'
)
OLYMPIAD_PERSONA = "You are a highly skilled student proficient in solving scientific problems."


def letter_list(letters: str) -> str:
    """ "A or B", "A, B, or C", … as the instruction lists them."""
    if len(letters) == 1:
        return letters
    if len(letters) == 2:
        return f"{letters[0]} or {letters[1]}"
    return ", ".join(letters[:-1]) + f", or {letters[-1]}"


@dataclass(frozen=True)
class PresentedItem:
    """An item as the model sees it: options in the order asked and the gold letter in that order."""

    item: BenchmarkItem
    option_order: OptionOrder
    options: tuple[str, ...]
    gold: str
    permutation: tuple[int, ...]  # presented position -> index in the reference order
    instruction_letters: str  # letters the instruction lists
    extraction_letters: str  # letters extraction accepts

    @property
    def key(self) -> str:
        """``<item_id>@<option_order>``: one evaluation unit."""
        return f"{self.item.item_id}@{self.option_order}"

    def scoring_unit(self) -> dict[str, Any]:
        """What the scorer needs, as a plain dict (it crosses a process boundary)."""
        item = self.item
        return {
            "item_id": item.item_id,
            "subtask": item.subtask,
            "qtype": item.qtype,
            "question": item.question,
            "options": list(self.options),
            "gold": self.gold,
            "extraction_letters": self.extraction_letters,
            "solution": item.solution,
            "meta": item.meta,
        }


def present(item: BenchmarkItem, option_order: OptionOrder = "reference", seed: int = 0) -> PresentedItem:
    """Fix the option order (and so the gold letter) for one item."""
    sub = benchmark_registry.subtask(item.subtask)
    n = len(item.options)
    permutation = tuple(range(n))
    if item.qtype == "mc" and option_order == "shuffled":
        order = list(range(n))
        random.Random(stable_id("option-order", seed, item.item_id)).shuffle(order)
        permutation = tuple(order)
    options = tuple(item.options[i] for i in permutation)
    gold = item.gold
    if item.qtype == "mc":
        gold = LETTERS[permutation.index(item.gold_index)]
    own = LETTERS[:n]
    instruction = (
        sub.instruction_letters if sub.instruction_letters and len(sub.instruction_letters) >= n else own
    )
    extraction = instruction if sub.extraction_letters == "fixed" else own
    return PresentedItem(item, option_order, options, gold, permutation, instruction, extraction)


def _options_block(options: tuple[str, ...], style: str) -> str:
    if style == "right_paren":
        return "\n".join(f"{LETTERS[i]}) {text}" for i, text in enumerate(options))
    return "\n".join(f"({LETTERS[i]}) {text}" for i, text in enumerate(options))


def user_prompt(presented: PresentedItem) -> str:
    """The user turn for one presented item."""
    item = presented.item
    sub: Subtask = benchmark_registry.subtask(item.subtask)
    if item.qtype == "mc":
        instruction = MC_INSTRUCTION.format(letters=letter_list(presented.instruction_letters))
        options = _options_block(presented.options, sub.option_style)
        if sub.prompt == "mc_pubmedqa":
            context = "\n".join(f"- {c}" for c in item.meta.get("contexts", []))
            body = f"Information:\n{context}\n\nQuestion:\n{item.question}\n{options}"
            return f"{instruction}{PUBMEDQA_EXTRA}\n{body}".strip()
        return f"{instruction}\nQuestion: {item.question}\n{options}".strip()
    if item.qtype == "scibench":
        unit_prob = item.meta.get("unit_prob", "")
        suffix = f" The unit of the answer is {unit_prob}." if unit_prob else ""
        return f"{SCIBENCH_INSTRUCTION}\nQuestion: {item.question}{suffix}\nLet's think step by step."
    if item.qtype == "olympiad":
        return f"{OLYMPIAD_PERSONA}\n{item.meta.get('prompt') or item.question}"
    return f"Question: {item.question}\n{BOX_INSTRUCTION}"


def render_chat(tokenizer: Any, user_text: str, enable_thinking: bool | None) -> str:
    """The completion prompt: the model's chat template over the single user turn."""
    kwargs: dict[str, Any] = {"add_generation_prompt": True, "tokenize": False}
    if enable_thinking is not None:
        kwargs["enable_thinking"] = enable_thinking
    text = tokenizer.apply_chat_template([{"role": "user", "content": user_text}], **kwargs).lstrip()
    for special in (getattr(tokenizer, "bos_token", None), getattr(tokenizer, "eos_token", None)):
        if special and text.startswith(special):
            text = text[len(special) :]
    return text


def stop_token_ids_for(model_path: str) -> list[int] | None:
    """The reference's dispatch by model path: Llama -> <|eot_id|>, Qwen3 -> <|im_end|>, <|endoftext|>."""
    lowered = model_path.lower()
    if "llama" in lowered:
        return [128009]
    if "qwen3" in lowered:
        return [151645, 151643]
    return None
