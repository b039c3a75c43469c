"""Textbook clean-up rules on literal text (no PDF)."""

from pipeline.parse.cleanup import (
    TextBlock,
    clean_text,
    edge_positions,
    find_running_lines,
    is_page_number,
    page_text,
)


def test_dehyphenation_joins_lowercase_breaks_only():
    assert clean_text("proba-\nbility theory") == "probability theory"
    assert clean_text("Navier-\nStokes equations") == "Navier-\nStokes equations"
    assert clean_text("soft\u00adhyphen") == "softhyphen"


def test_ligatures_expanded_and_math_symbols_kept():
    text = "The ﬂux Φ = ∮ E⃗ · dA⃗ ≤ q/ε₀, x² + ∑ᵢ aᵢ, ℏω"
    cleaned = clean_text(text)
    assert cleaned.startswith("The flux")
    for symbol in ("Φ", "∮", "⃗", "≤", "ε₀", "x²", "∑ᵢ", "ℏ"):
        assert symbol in cleaned


def test_whitespace_normalised():
    assert clean_text("a  \n\n\n\nb \n") == "a\n\nb"


def test_page_numbers():
    for line in ("42", " 7 ", "Page 12", "xiv", "3 of 120", "12/300"):
        assert is_page_number(line), line
    for line in ("Chapter 2", "x = 2y", "mix of both", "2.1 Flux", "civil"):
        assert not is_page_number(line), line


FOOTNOTES = ["See Feller for a proof.", "Buffon posed this in 1777.", "Compare Figure 2.3.", "Due to Gauss."]


def _page(header: str, body: str, number: str, footnote: str) -> list[TextBlock]:
    return [
        TextBlock(f"{number}\n{header}", 0.12, 0.13),  # LaTeX headers sit below a fixed 8% band
        TextBlock(body, 0.2, 0.8),
        TextBlock(footnote, 0.85, 0.88),
    ]


def test_running_headers_removed_by_position_and_repetition():
    pages = [
        _page("2.1. SIMULATION OF CONTINUOUS PROBABILITIES", f"Body text {i}.", str(40 + i), FOOTNOTES[i])
        for i in range(4)
    ]
    running = find_running_lines(pages, margin=0.08, min_repeats=3)
    texts = [page_text(p, 0.08, running, strip_margins=True) for p in pages]
    assert texts == [f"Body text {i}.\n\n{FOOTNOTES[i]}" for i in range(4)]
    # The same words in the body are kept: only edge blocks are candidates.
    body_repeat = [[TextBlock("top", 0.0, 0.05), TextBlock("Repeated body line", 0.3, 0.4),
                    TextBlock("bottom", 0.9, 0.95)] for _ in range(4)]  # fmt: skip
    running = find_running_lines(body_repeat, 0.08, 3)
    assert "Repeated body line" in page_text(body_repeat[0], 0.08, running, True)


def test_edge_positions_use_coordinates_not_order():
    blocks = [TextBlock("body", 0.2, 0.8), TextBlock("Chapter 2 | Scarcity\n27", 0.03, 0.04)]
    assert edge_positions(blocks, 0.08) == {1: "top", 0: "bottom"}
    assert page_text(blocks, 0.08, set(), True) == "body"


def test_a_page_that_is_one_block_keeps_it_even_if_it_repeats():
    pages = [[TextBlock(f"Page {i}: momentum is conserved.", 0.1, 0.2)] for i in range(5)]
    running = find_running_lines(pages, 0.08, 3)
    assert [page_text(p, 0.08, running, True) for p in pages] == [
        f"Page {i}: momentum is conserved." for i in range(5)
    ]


def test_long_edge_blocks_are_body_text():
    body = "\n".join(f"line {i} of a long paragraph" for i in range(6))
    pages = [[TextBlock(body, 0.05, 0.5), TextBlock("other", 0.6, 0.7)] for _ in range(4)]
    running = find_running_lines(pages, 0.08, 3)
    assert page_text(pages[0], 0.08, running, True).startswith("line 0 of a long paragraph")
