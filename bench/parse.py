"""Parse-stage throughput on the real textbook PDFs, side by side in one run.

    python bench/parse.py                      # ../shared/data/textbooks, copied 4 times
    python bench/parse.py --books DIR --copies 8 --ocr tesseract

Prints pages/s for:
  bare     a single-process PyMuPDF ``page.get_text()`` loop over the same files (the baseline)
  library  our extraction (blocks, header/footer removal, clean-up) in one process, no Ray
  ray-1    the parse stage on Ray Data with 1 worker
  ray-2    the same with 2 workers
and the ratios ray-1/bare (goal >= 0.9), ray-1/library (the cost of the Ray layer) and ray-2/ray-1
(goal >= 1.8 on 2 cores), plus peak memory. OCR is off by default so every mode does the same
text-layer work; ``--ocr tesseract`` adds the two scanned pages (about 1 s each).

The shelf is copied ``--copies`` times (each copy gets a distinct trailing comment, hence a
distinct doc_id) so the run lasts long enough that Ray's fixed start-up cost does not dominate.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def make_shelf(books: Path, copies: int, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for pdf in sorted(books.glob("*.pdf")):
        data = pdf.read_bytes()
        for k in range(copies):
            target = out / f"{pdf.stem}__copy{k}.pdf"
            # A PDF comment after %%EOF: readers ignore it, the content hash changes.
            target.write_bytes(data + f"\n% bench copy {k}\n".encode())
            files.append(target)
    return files


def bare_loop(files: list[Path]) -> tuple[int, float]:
    import pymupdf

    pages, started = 0, time.perf_counter()
    for path in files:
        with pymupdf.open(path) as doc:
            for page in doc:
                page.get_text()
                pages += 1
    return pages, time.perf_counter() - started


def library_loop(files: list[Path], config) -> tuple[int, float]:
    from pipeline.parse import pdf
    from pipeline.parse.manifest import Manifest

    pages, started = 0, time.perf_counter()
    for path in files:
        data = path.read_bytes()
        info = pdf.inspect_pdf(pdf.InputFile(str(path), path.name, len(data)), data, Manifest(), config)
        with pdf.open_document(data) as doc:  # opened once per book, as a parse worker does
            for first, last in pdf.page_ranges(info.n_pages, config.pages_per_shard):
                pdf.extract_page_range(data, info, first, last, config, None, doc=doc)
        pages += info.n_pages
    return pages, time.perf_counter() - started


class PeakRss:
    """Peak summed RSS of this process and every Ray worker process, sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_info().rss
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                if "ray::" in cmd and "MapWorker" in cmd and proc.info["memory_info"]:
                    total += proc.info["memory_info"].rss
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def ray_stage(shelf: Path, workers: int, ocr: str, root: Path) -> tuple[int, float, int]:
    from pipeline import run_config
    from ray_jobs import parse

    config = run_config.from_dict(
        {
            "run": {"name": f"bench-{workers}", "root": str(root)},
            "parse": {
                "input": str(shelf),
                "default_subject": "physics",
                "ocr": {"engine": ocr},
                "resources": {"concurrency": workers},
            },
        }
    )
    with PeakRss() as rss:
        started = time.perf_counter()
        stats = parse.run(config, force=True)
        seconds = time.perf_counter() - started
    return stats["in"], seconds, rss.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_books = (
        Path(os.environ.get("MEGASCIENCE_SHARED_DATA", REPO.parent / "shared" / "data")) / "textbooks"
    )
    parser.add_argument("--books", type=Path, default=default_books)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--ocr", default="none", choices=["none", "tesseract"])
    args = parser.parse_args()

    import ray

    from pipeline.parse.config import ParseConfig

    tmp = Path(tempfile.mkdtemp(prefix="bench_parse_"))
    try:
        files = make_shelf(args.books, args.copies, tmp / "shelf")
        print(f"{len(files)} files ({args.copies} copies of {args.books}), OCR: {args.ocr}")
        bare_pages, bare_s = bare_loop(files)
        bare_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        lib_pages, lib_s = library_loop(files, ParseConfig(input=str(tmp), default_subject="physics"))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        one_pages, one_s, one_peak = ray_stage(tmp / "shelf", 1, args.ocr, tmp / "runs")
        two_pages, two_s, two_peak = ray_stage(tmp / "shelf", 2, args.ocr, tmp / "runs")
        ray.shutdown()
        assert bare_pages == lib_pages == one_pages == two_pages, (
            bare_pages,
            lib_pages,
            one_pages,
            two_pages,
        )

        def rate(pages: int, seconds: float) -> float:
            return pages / seconds

        rows = [
            ("bare PyMuPDF get_text loop", bare_pages, bare_s, bare_peak),
            ("library, one process", lib_pages, lib_s, None),
            ("Ray Data parse stage, 1 worker", one_pages, one_s, one_peak),
            ("Ray Data parse stage, 2 workers", two_pages, two_s, two_peak),
        ]
        print(f"\n{'mode':<34}{'pages':>7}{'seconds':>9}{'pages/s':>9}{'peak RSS':>11}")
        for name, pages, seconds, peak in rows:
            mem = f"{peak / 2**20:.0f} MiB" if peak else "-"
            print(f"{name:<34}{pages:>7}{seconds:>9.2f}{rate(pages, seconds):>9.0f}{mem:>11}")
        print(
            f"\nray-1 / bare    = {rate(one_pages, one_s) / rate(bare_pages, bare_s):.2f}x  (goal >= 0.9)"
            f"\nray-1 / library = {rate(one_pages, one_s) / rate(lib_pages, lib_s):.2f}x  (cost of the Ray layer)"
            f"\nray-2 / ray-1   = {rate(two_pages, two_s) / rate(one_pages, one_s):.2f}x  (goal >= 1.8 on 2 cores)"
            f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
