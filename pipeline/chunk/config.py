"""Configuration of the chunk stage (pages of a document → token-bounded chunks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config import check
from pipeline.resources import StageResources


@dataclass(frozen=True)
class TokenizerConfig:
    """Args:
    name_or_path: the extraction model's tokenizer: a Hugging Face id (``meta-llama/Llama-3.3-70B-Instruct``,
        ``Qwen/Qwen3-8B``), a local folder, or ``builtin:qwen3-tokenizer`` (the real Qwen BPE, offline).
    """

    name_or_path: str = "builtin:qwen3-tokenizer"

    def __post_init__(self) -> None:
        check(bool(self.name_or_path), "tokenizer.name_or_path", "is required")


@dataclass(frozen=True)
class ChunkConfig:
    """Args:
    tokenizer: whose tokens ``max_tokens`` counts (the model that reads the chunks).
    max_tokens: hard upper bound on a chunk's token count (the reference: 4,096).
    min_fill: a cut is searched only in the last ``1 - min_fill`` of the window, so chunks are
        at least this full (except a document's last); within that part the best boundary wins:
        paragraph > sentence > line > word > any token boundary.
    """

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    max_tokens: int = 4096
    min_fill: float = 0.5
    resources: StageResources = field(default_factory=StageResources)

    def __post_init__(self) -> None:
        check(self.max_tokens >= 16, "chunk.max_tokens", f"must be >= 16, got {self.max_tokens}")
        check(0.0 <= self.min_fill < 1.0, "chunk.min_fill", "must be within [0, 1)")
