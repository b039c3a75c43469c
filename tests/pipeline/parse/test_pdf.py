"""Inventory and page extraction on generated and real PDFs (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from pipeline.parse import pdf
from pipeline.parse.config import OcrConfig, ParseConfig
from pipeline.parse.manifest import Manifest, parse_manifest
from pipeline.parse.ocr import OcrUnavailable, TesseractOcr, build_ocr_engine
from tests.pdf_fixtures import scanned_pdf, text_pdf, write_bad_files

CONFIG = ParseConfig(input="unused", default_subject="physics")


def inspect(path: Path, config: ParseConfig = CONFIG, manifest: Manifest | None = None) -> pdf.DocumentInfo:
    manifest = manifest or Manifest()
    file = pdf.InputFile(path=str(path), relative=path.name, size=path.stat().st_size)
    return pdf.inspect_pdf(file, path.read_bytes(), manifest, config)


def tesseract_or_skip() -> TesseractOcr:
    try:
        return TesseractOcr(OcrConfig())
    except OcrUnavailable as exc:
        pytest.skip(str(exc))


def test_each_bad_file_gets_its_reason(tmp_path):
    good = text_pdf(tmp_path / "good.pdf", ["Energy is conserved in an isolated system."] * 3)
    expected = write_bad_files(tmp_path / "bad", good)
    for name, reason in expected.items():
        info = inspect(tmp_path / "bad" / name)
        assert info.reason == reason, (name, info)
        assert info.detail, f"{name}: a reject must say what was wrong"
    assert inspect(good).reason is None


def test_too_large_is_refused_without_reading(tmp_path):
    good = text_pdf(tmp_path / "good.pdf", ["Some text on a page."])
    file = pdf.InputFile(path=str(good), relative="good.pdf", size=5 * 2**20)
    info = pdf.inspect_pdf(
        file, None, Manifest(), ParseConfig(input="x", max_file_mb=1, default_subject="math")
    )
    assert info.reason == pdf.TOO_LARGE and "max_file_mb" in info.detail


def test_subject_from_manifest_then_filename_else_rejected(tmp_path):
    path = text_pdf(tmp_path / "chem_notes.pdf", ["Acids donate protons."])
    manifest = parse_manifest("path,subject,licence,title\nchem_*.pdf,biology,CC BY,Notes\n", "m.csv")
    info = inspect(path, ParseConfig(input="x"), manifest)
    assert (info.subject, info.licence, info.title) == ("biology", "CC BY", "Notes")
    assert inspect(path, ParseConfig(input="x")).subject == "chemistry"  # inferred from "chem"
    plain = text_pdf(tmp_path / "book.pdf", ["Text."])
    info = inspect(plain, ParseConfig(input="x", infer_subject_from_filename=True))
    assert info.reason == pdf.NO_SUBJECT and "manifest" in info.detail


def test_text_pages_headers_and_page_numbers_removed(tmp_path):
    body = [f"Section {i}. A body of {i * 3} kilograms rests on a frictionless plane." for i in range(1, 7)]
    path = text_pdf(tmp_path / "book.pdf", body, header="INTRODUCTORY MECHANICS", numbered=True)
    info = inspect(path)
    out = pdf.extract_page_range(path.read_bytes(), info, 1, 6, CONFIG, None)
    assert [r["page_no"] for r in out.rows] == [1, 2, 3, 4, 5, 6]
    for row, text in zip(out.rows, body):
        assert row["text"] == text
        assert row["status"] == "ok" and row["n_chars"] == len(text)
        assert row["doc_id"] == info.doc_id and row["subject"] == "physics"


def test_blank_page_and_no_ocr_are_rejects_not_silence(tmp_path):
    doc = pymupdf.open()
    doc.new_page()  # blank
    doc.save(tmp_path / "blank.pdf")
    info = inspect(tmp_path / "blank.pdf")
    out = pdf.extract_page_range((tmp_path / "blank.pdf").read_bytes(), info, 1, 1, CONFIG, None)
    assert out.rows == [] and [r["reason"] for r in out.rejects] == [pdf.EMPTY_PAGE]

    scan = scanned_pdf(tmp_path / "scan.pdf", "The rate constant doubles for every ten degrees.")
    info = inspect(scan)
    out = pdf.extract_page_range(scan.read_bytes(), info, 1, 1, CONFIG, None)
    assert [r["reason"] for r in out.rejects] == [pdf.NO_TEXT_LAYER]
    assert out.rejects[0]["input_id"] == f"{info.doc_id}:1"


def test_generated_scan_is_read_by_tesseract(tmp_path):
    ocr = tesseract_or_skip()
    scan = scanned_pdf(tmp_path / "scan.pdf", "The rate constant doubles for every ten degrees.")
    info = inspect(scan)
    out = pdf.extract_page_range(scan.read_bytes(), info, 1, 1, CONFIG, ocr)
    assert out.rejects == []
    assert out.rows[0]["status"] == "ocr"
    assert "rate constant doubles" in out.rows[0]["text"]


def test_unreadable_scan_is_ocr_failed(tmp_path):
    ocr = tesseract_or_skip()
    doc = pymupdf.open()
    page = doc.new_page()
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), 0)
    pixmap.clear_with(128)  # a flat grey photo: nothing to read
    page.insert_image(page.rect, pixmap=pixmap)
    doc.save(tmp_path / "noise.pdf")
    info = inspect(tmp_path / "noise.pdf")
    out = pdf.extract_page_range((tmp_path / "noise.pdf").read_bytes(), info, 1, 1, CONFIG, ocr)
    assert [r["reason"] for r in out.rejects] == [pdf.OCR_FAILED]


def test_vlm_ocr_is_an_honest_not_implemented():
    with pytest.raises(NotImplementedError, match="vlm"):
        build_ocr_engine(OcrConfig(engine="vlm"))
    assert build_ocr_engine(OcrConfig(engine="none")) is None


def test_real_scanned_textbook_page_is_ocred(textbooks_dir):
    ocr = tesseract_or_skip()
    path = next(textbooks_dir.glob("SCANNED_*.pdf"))
    info = inspect(path, ParseConfig(input="x"))
    assert info.reason is None and info.subject == "chemistry" and info.n_pages == 1
    out = pdf.extract_page_range(path.read_bytes(), info, 1, 1, CONFIG, ocr)
    text = out.rows[0]["text"]
    assert out.rows[0]["status"] == "ocr"
    for word in ("Radical", "Chain", "Mechanism", "propagation", "initiation"[:5]):
        assert word.lower() in text.lower(), word


def test_page_ranges_cover_every_page_once():
    assert pdf.page_ranges(130, 64) == [(1, 64), (65, 128), (129, 130)]
    assert pdf.page_ranges(1, 64) == [(1, 1)]
    assert pdf.page_shard_name("abc", 65) == "abc-p00065"
