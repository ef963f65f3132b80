"""PDF extraction time per page: PDFium alone, pypdf alone, and nbchat's rule.

The rule (``nbchat/core/extractors/pdf.py``, see docs/attachments.md) reads every page
with PDFium and asks pypdf only about a page PDFium found empty or whose words it split.
Each reader starts from the file's bytes (opening included); each figure is the median
of ``--runs`` runs, the three readers alternating within a run. The libraries are
imported before timing; their first import is timed apart, in fresh interpreters.

Generated documents, made here (fpdf2 and the test suite's file generators):

- ``text``: ``--pages`` pages of report-like prose, each with a unique marker. Goal
  (issue 17): the rule reads a 100-page text PDF in <= 0.5 s, every marker found.
- ``ocr-split``: 20 pages drawn like an OCR text layer whose words PDFium splits
  ("Unite d Ara b"): every page goes to pypdf.
- ``scanned``: 10 image-only pages (no text: pypdf is asked about each page).

With a FOLDER, every ``*.pdf`` in it is compared too, page by page: letters and words
each reader found, the pages the rule took from pypdf, and the share of detached
letters (the rule's measure of split words) over all pages.

    python bench/bench_pdf.py [FOLDER] [--pages 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import emit, load_test_helper, median, print_table, prose, ratio, scratch_dir

from nbchat.core.errors import AttachmentError
from nbchat.core.extractors.pdf import SPLIT_SHARE, detached_share, read_pages

GOAL_PAGES = 100
GOAL_S = 0.5
LETTER_RUN = re.compile(r"[^\W\d_]+")
SHARE_BINS = (0.0, 0.02, 0.05, 0.10, SPLIT_SHARE, 0.25, 1.01)

# A page reading: its texts in page order, or the error that stopped it.
Reading = tuple[list[str], str]


# -- the three readers -------------------------------------------------------------------------


def read_pdfium(data: bytes) -> Reading:
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        return [], str(error)
    try:
        texts = []
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return texts, ""
    finally:
        document.close()


def read_pypdf(data: bytes) -> Reading:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            return [], "password"
        pages = reader.pages
        texts = []
        for page in pages:
            try:
                texts.append(page.extract_text() or "")
            except Exception:  # counted as a page without text, as nbchat marks it
                texts.append("")
        return texts, ""
    except Exception as error:
        return [], f"{type(error).__name__}: {error}"


def read_rule(data: bytes) -> tuple[Reading, list[str]]:
    """The rule's texts and, per page, the library it took the text from."""
    try:
        pages = read_pages(data, "document.pdf")
    except AttachmentError as error:
        return ([], error.problem), []
    except Exception as error:
        return ([], f"{type(error).__name__}: {error}"), []
    return ([page.text or "" for page in pages], ""), [page.reader for page in pages]


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Document:
    name: str
    data: bytes
    markers: list[str] = field(default_factory=list)  # one per page, generated documents
    seconds: dict[str, list[float]] = field(default_factory=dict)
    readings: dict[str, Reading] = field(default_factory=dict)
    readers: list[str] = field(default_factory=list)


def time_documents(documents: list[Document], runs: int) -> None:
    """Median-ready times of the three readers, alternating, and each one's texts."""
    readers: dict[str, Callable[[bytes], Any]] = {
        "pdfium": read_pdfium, "pypdf": read_pypdf, "rule": read_rule
    }
    for run in range(runs):
        order = list(readers)[run % 3:] + list(readers)[: run % 3]
        for document in documents:
            for name in order:
                started = time.perf_counter()
                result = readers[name](document.data)
                document.seconds.setdefault(name, []).append(time.perf_counter() - started)
                if name == "rule":
                    document.readings[name], document.readers = result
                else:
                    document.readings[name] = result


def letters(texts: list[str]) -> int:
    return sum(len(run) for text in texts for run in LETTER_RUN.findall(text))


def words(texts: list[str]) -> int:
    return sum(len(LETTER_RUN.findall(text)) for text in texts)


def figures(document: Document) -> dict[str, Any]:
    pages = max(len(reading[0]) for reading in document.readings.values())
    row: dict[str, Any] = {"name": document.name, "pages": pages}
    for name in ("pdfium", "pypdf", "rule"):
        texts, error = document.readings[name]
        seconds = median(document.seconds[name])
        row[name] = {
            "s": seconds,
            "ms_per_page": 1000 * seconds / max(pages, 1),
            "letters": letters(texts),
            "words": words(texts),
            "error": error,
        }
    row["speedup_rule_over_pypdf"] = ratio(row["pypdf"]["s"], row["rule"]["s"])
    row["pages_from_pypdf"] = [n for n, r in enumerate(document.readers, 1) if r == "pypdf"]
    if document.markers:
        rule_pages = document.readings["rule"][0]
        row["markers_found"] = sum(
            1 for marker, text in zip(document.markers, rule_pages)
            if marker in " ".join(text.split())
        )
    return row


def page_shares(document: Document) -> list[tuple[str, int, float, float, int, int]]:
    """Per page: document, number, detached share PDFium / pypdf, letters PDFium / pypdf."""
    first, _ = document.readings["pdfium"]
    second, _ = document.readings["pypdf"]
    return [
        (document.name, number, detached_share(a), detached_share(b), letters([a]), letters([b]))
        for number, (a, b) in enumerate(zip(first, second), start=1)
        if LETTER_RUN.search(a) or LETTER_RUN.search(b)
    ]


# -- documents ------------------------------------------------------------------------------------


def generated_documents(folder: Path, pages: int) -> list[Document]:
    filegen = load_test_helper("filegen")
    markers = [f"marker-{n:03d}-{(n * 7919) % 10007:05d}" for n in range(1, pages + 1)]
    texts = [
        f"Page {n} of the survey. {markers[n - 1]}.\n\n" + prose(n, 22) for n in range(1, pages + 1)
    ]
    text_pdf = filegen.make_text_pdf(folder, "text.pdf", texts)
    split_markers = [f"marker{n:02d}x" for n in range(1, 21)]
    split_texts = [f"{split_markers[n - 1]} " + prose(1000 + n, 5) for n in range(1, 21)]
    split_pdf = filegen.make_ocr_layer_pdf(folder, "ocr-split.pdf", split_texts)
    scanned_pdf = filegen.make_image_only_pdf(folder, "scanned.pdf", page_count=10)
    return [
        Document(f"text ({pages} pages)", text_pdf.read_bytes(), markers),
        Document("ocr-split (20 pages)", split_pdf.read_bytes(), split_markers),
        Document("scanned (10 pages)", scanned_pdf.read_bytes()),
    ]


def first_import_s(module: str, runs: int = 3) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(runs)
    ]
    return median(times)


# -- output ---------------------------------------------------------------------------------------


def print_documents(title: str, rows: list[dict[str, Any]]) -> None:
    table = []
    for row in rows:
        errors = {row[n]["error"] for n in ("pdfium", "pypdf", "rule")} - {""}
        table.append([
            row["name"][:34], row["pages"],
            row["pdfium"]["ms_per_page"], row["pypdf"]["ms_per_page"], row["rule"]["ms_per_page"],
            row["rule"]["s"], row["speedup_rule_over_pypdf"],
            f"{row['pdfium']['letters']}/{row['pypdf']['letters']}/{row['rule']['letters']}",
            f"{row['pdfium']['words']}/{row['pypdf']['words']}/{row['rule']['words']}",
            _page_numbers(row["pages_from_pypdf"]),
            row.get("markers_found", "") if "markers_found" in row else "",
            "; ".join(sorted(e[:40] for e in errors)),
        ])
    print_table(
        title,
        ["document", "pages", "PDFium ms/p", "pypdf ms/p", "rule ms/p", "rule s",
         "pypdf/rule", "letters Pm/py/rule", "words Pm/py/rule", "pypdf pages", "markers",
         "errors"],
        table,
    )


def _page_numbers(numbers: list[int]) -> str:
    if not numbers:
        return "-"
    shown = ",".join(str(n) for n in numbers[:8])
    return shown + (f" +{len(numbers) - 8}" if len(numbers) > 8 else "")


def print_shares(shares: list[tuple[str, int, float, float, int, int]]) -> dict[str, Any]:
    """How the detached-letter share of PDFium's pages spreads, against the threshold."""
    bins = []
    for low, high in zip(SHARE_BINS, SHARE_BINS[1:]):
        inside = [s for s in shares if low <= s[2] < high]
        bins.append({"from": low, "to": min(high, 1.0), "pages": len(inside)})
    over = [s for s in shares if s[2] > SPLIT_SHARE]
    under = [s for s in shares if s[2] <= SPLIT_SHARE]
    print_table(
        f"detached-letter share of PDFium's pages (split words: > {SPLIT_SHARE})",
        ["share from", "to", "pages"],
        [[b["from"], b["to"], b["pages"]] for b in bins],
    )
    print_table(
        "pages over the threshold: PDFium's share / pypdf's share, letters",
        ["document", "page", "PDFium", "pypdf", "letters Pm/py"],
        [[s[0][:34], s[1], s[2], s[3], f"{s[4]}/{s[5]}"] for s in over],
    )
    fewer = [s for s in shares if s[4] < s[5]]
    print_table(
        "pages where PDFium found fewer letters than pypdf",
        ["document", "page", "letters Pm/py"],
        [[s[0][:34], s[1], f"{s[4]}/{s[5]}"] for s in fewer] or [["(none)", "", ""]],
    )
    return {
        "bins": bins,
        "max_share_under_threshold": max((s[2] for s in under), default=0.0),
        "min_share_over_threshold": min((s[2] for s in over), default=None),
        "pages_over_threshold": [[s[0], s[1], s[2], s[3]] for s in over],
        "pages_with_fewer_pdfium_letters": [[s[0], s[1], s[4], s[5]] for s in fewer],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, help="compare every *.pdf in it too")
    parser.add_argument("--pages", type=int, default=GOAL_PAGES, help="pages of the text PDF")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if args.folder is not None and not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")

    imports = {module: first_import_s(module) for module in ("pypdfium2", "pypdf")}
    import pypdf  # noqa: F401  (warm: the timed runs measure reading, not importing)
    import pypdfium2  # noqa: F401

    scratch = scratch_dir("pdf")
    try:
        generated = generated_documents(scratch, args.pages)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    time_documents(generated, args.runs)
    generated_rows = [figures(d) for d in generated]
    print_documents(f"generated PDFs (median of {args.runs} runs)", generated_rows)

    folder_rows: list[dict[str, Any]] | None = None
    shares: dict[str, Any] | None = None
    if args.folder is not None:
        real = [Document(p.name, p.read_bytes()) for p in sorted(args.folder.glob("*.pdf"))]
        time_documents(real, args.runs)
        folder_rows = [figures(d) for d in real]
        print_documents(f"PDFs in {args.folder} (median of {args.runs} runs)", folder_rows)
        readable = [d for d in real if not d.readings["pdfium"][1] and not d.readings["pypdf"][1]]
        shares = print_shares([s for d in readable for s in page_shares(d)])
        totals = {
            name: sum(row[name]["s"] for row in folder_rows) for name in ("pdfium", "pypdf", "rule")
        }
        speedup = ratio(totals["pypdf"], totals["rule"])
        print(
            f"all {len(real)} PDFs: PDFium {totals['pdfium']:.2f} s, "
            f"pypdf {totals['pypdf']:.2f} s, rule {totals['rule']:.2f} s "
            f"(pypdf / rule {speedup:.1f}x)"
        )

    text = generated_rows[0]
    scaled_s = text["rule"]["s"] * GOAL_PAGES / max(text["pages"], 1)
    met = scaled_s <= GOAL_S and text["markers_found"] == text["pages"]
    print(
        f"first import: pypdfium2 {imports['pypdfium2']:.3f} s, pypdf {imports['pypdf']:.3f} s\n"
        f"goal: a {GOAL_PAGES}-page text PDF in <= {GOAL_S} s with every page's marker: "
        f"{scaled_s:.3f} s"
        + ("" if text["pages"] == GOAL_PAGES else f" (scaled from {text['pages']} pages)")
        + f", markers {text['markers_found']}/{text['pages']}: {'met' if met else 'NOT met'}"
    )
    emit("pdf", {
        "runs": args.runs,
        "first_import_s": imports,
        "generated": generated_rows,
        "folder": str(args.folder) if args.folder is not None else None,
        "documents": folder_rows,
        "detached_shares": shares,
        "split_share": SPLIT_SHARE,
        "goal": {"pages": GOAL_PAGES, "limit_s": GOAL_S, "rule_s": scaled_s,
                 "measured_pages": text["pages"], "met": met},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
