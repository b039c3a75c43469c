"""Column contracts of the records that flow between stages (see the README's flow picture).

Each stage checks its input columns at the door with :func:`require_columns`, so a wrong input
fails with the stage name, the missing columns and the present ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

SUBJECTS = ("math", "physics", "chemistry", "biology", "medicine", "cs", "economics")

# parse -> pages: one row per page of a readable PDF whose text we kept.
PAGE_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),  # sha256 of the file bytes (16 hex chars)
        ("page_no", pa.int32()),  # 1-based, as a reader counts
        ("text", pa.string()),  # cleaned text (de-hyphenated, running headers/footers removed)
        ("n_chars", pa.int32()),
        ("status", pa.string()),  # "ok" (text layer) | "ocr" (text from OCR)
        ("source", pa.string()),  # file path / URI
        ("subject", pa.string()),
        ("title", pa.string()),
        ("licence", pa.string()),
        ("n_pages", pa.int32()),  # pages in the whole document
    ]
)

# chunk -> chunks: contiguous slices of a document's text, at most max_tokens tokens each.
CHUNK_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),  # stable_id(doc_id, char_start, char_end)
        ("doc_id", pa.string()),
        ("subject", pa.string()),
        ("chunk_index", pa.int32()),  # 0-based position in the document
        ("page_start", pa.int32()),  # first and last page the chunk's text comes from
        ("page_end", pa.int32()),
        ("char_start", pa.int64()),  # offsets into the document text (pages joined by "\n\n")
        ("char_end", pa.int64()),
        ("n_tokens", pa.int32()),  # tokens of `text` under the chunk tokenizer
        ("text", pa.string()),
        ("source", pa.string()),
        ("title", pa.string()),
    ]
)


class SchemaError(ValueError):
    """A stage got records without the columns it needs."""


def require_columns(stage: str, present: Iterable[str], required: Iterable[str]) -> None:
    present = list(present)
    missing = [c for c in required if c not in present]
    if missing:
        raise SchemaError(
            f"[{stage}] input is missing column(s) {missing}; present: {present}. "
            "Was the previous stage run with this version of the pipeline?"
        )
