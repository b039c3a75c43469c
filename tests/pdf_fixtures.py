"""Generated PDFs for tests: good ones with known text and each kind of bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pymupdf

ZERO_PAGE_PDF = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
)


def text_pdf(path: Path, pages: list[str], header: str | None = None, numbered: bool = False) -> Path:
    """A PDF with one text box per page, optionally a running header and page numbers."""
    doc = pymupdf.open()
    for i, text in enumerate(pages, start=1):
        page = doc.new_page(width=612, height=792)
        if header:
            page.insert_text((72, 40), header, fontsize=9)
        page.insert_textbox(pymupdf.Rect(72, 90, 540, 700), text, fontsize=11)
        if numbered:
            page.insert_text((300, 770), str(i), fontsize=9)
    doc.save(path)
    doc.close()
    return path


def scanned_pdf(path: Path, text: str) -> Path:
    """A one-page PDF whose only content is a picture of ``text`` (no text layer): needs OCR."""
    src = pymupdf.open()
    page = src.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 400), text, fontsize=18)
    pixmap = page.get_pixmap(dpi=150)
    src.close()
    doc = pymupdf.open()
    out = doc.new_page(width=612, height=792)
    out.insert_image(out.rect, pixmap=pixmap)
    doc.save(path)
    doc.close()
    return path


def write_bad_files(folder: Path, good_pdf: Path) -> dict[str, str]:
    """Write one file per kind of bad input; returns ``{file name: expected reject reason}``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = good_pdf.read_bytes()
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(4000) + b"\n%%EOF\n")
    (folder / "truncated.pdf").write_bytes(data[: int(len(data) * 0.6)])
    doc = pymupdf.open(good_pdf)
    doc.save(
        folder / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner"
    )
    doc.close()
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "zero_pages.pdf").write_bytes(ZERO_PAGE_PDF)
    (folder / "notes_renamed.pdf").write_text(
        "These are plain-text lecture notes saved with a .pdf name.\n" * 20
    )
    return {
        "corrupt.pdf": "corrupt",
        "truncated.pdf": "truncated",
        "encrypted.pdf": "encrypted",
        "empty.pdf": "empty_file",
        "zero_pages.pdf": "zero_pages",
        "notes_renamed.pdf": "not_pdf",
    }
