"""The PDF rule: PDFium reads, pypdf takes over a page whose words PDFium splits, and
every file PDFium cannot open as it is gets pypdf's reading and errors, as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nbchat.core.errors import AttachmentError
from nbchat.core.extract import extract_bytes
from nbchat.core.extractors import problems
from nbchat.core.extractors.pdf import SPLIT_SHARE, detached_share, read_pages
from filegen import (
    make_encrypted_pdf,
    make_image_only_pdf,
    make_ocr_layer_pdf,
    make_random_bytes,
    make_text_pdf,
)

SHIPPING = (
    "United Arab Shipping Co. carries containers from Jebel Ali to Singapore. "
    "The Metropolis Tower holds the regional office of the company."
)


def pdfium_page_texts(path: Path) -> list[str]:
    """What PDFium alone reads, page by page: the reading the rule has to repair."""
    import pypdfium2

    document = pypdfium2.PdfDocument(path.read_bytes())
    try:
        return [document[i].get_textpage().get_text_range() for i in range(len(document))]
    finally:
        document.close()


def words(text: str) -> str:
    """``text`` with every run of whitespace (line ends included) as one space."""
    return " ".join(text.split())


def error_of(path: Path) -> AttachmentError:
    with pytest.raises(AttachmentError) as caught:
        extract_bytes(path.read_bytes(), str(path))
    return caught.value


# --------------------------------------------------------------------------- split words


def test_words_pdfium_splits_come_back_whole(tmp_path: Path) -> None:
    path = make_ocr_layer_pdf(tmp_path, "agreement.pdf", [SHIPPING])
    assert "Unite d Ara b Shippin g" in pdfium_page_texts(path)[0]

    text = extract_bytes(path.read_bytes(), "agreement.pdf").text
    assert text.startswith("--- page 1 ---\n")
    assert words(text) == "--- page 1 --- " + SHIPPING


def test_only_the_page_with_split_words_is_read_by_pypdf(tmp_path: Path) -> None:
    pages = ["Cover of the agreement, plain text.", SHIPPING, "Signatures follow on this page."]
    path = make_ocr_layer_pdf(tmp_path, "mixed.pdf", pages, spaced_pages={2})
    assert [detached_share(t) > SPLIT_SHARE for t in pdfium_page_texts(path)] == [
        False, True, False
    ]

    read = read_pages(path.read_bytes(), "mixed.pdf")
    assert [(page.number, page.reader) for page in read] == [
        (1, "pdfium"), (2, "pypdf"), (3, "pdfium")
    ]
    text = extract_bytes(path.read_bytes(), "mixed.pdf").text
    assert text.startswith(
        "--- page 1 ---\nCover of the agreement, plain text.\n\n--- page 2 ---\n"
    )
    assert "--- page 2 ---\nUnited Arab Shipping Co. carries" in text
    assert text.endswith("--- page 3 ---\nSignatures follow on this page.")


def test_detached_letters_are_rare_in_prose_and_common_in_split_words() -> None:
    prose = (
        "The survey team measured the water level in the north basin, compared it with "
        "last year's figure and logged a drop of a few centimetres after the storm."
    )
    split = "Unite d Ara b Shippin g Co . carrie s container s fro m Jebe l Al i"
    assert detached_share(prose) < SPLIT_SHARE
    assert detached_share(split) > 2 * SPLIT_SHARE
    assert detached_share("") == 0.0
    assert detached_share("12 345 67") == 0.0


def test_a_false_alarm_keeps_pdfiums_text(tmp_path: Path) -> None:
    many_articles = "A survey of a harbour is a long job: it needs a boat, a crew and a plan."
    assert detached_share(many_articles) > SPLIT_SHARE  # so pypdf reads the page too
    path = make_text_pdf(tmp_path, "articles.pdf", [many_articles])
    (page,) = read_pages(path.read_bytes(), "articles.pdf")
    assert (page.text, page.reader) == (many_articles, "pdfium")


# --------------------------------------------------------------------------- nothing lost


def test_every_page_of_a_long_pdf_is_under_its_own_marker(tmp_path: Path) -> None:
    count = 150
    pages = [
        f"Section {n}. The survey team logged item {n * 7} near the depot. "
        f"Marker page-{n:03d}-{(n * 7919) % 10007:05d} ends this page." + " More words." * 20
        for n in range(1, count + 1)
    ]
    path = make_text_pdf(tmp_path, "long.pdf", pages)
    read = read_pages(path.read_bytes(), "long.pdf")
    assert [page.reader for page in read] == ["pdfium"] * count

    text = extract_bytes(path.read_bytes(), "long.pdf").text
    blocks = text.split("\n\n")
    assert len(blocks) == count
    for n, block in enumerate(blocks, start=1):
        header, body = block.split("\n", 1)
        assert header == f"--- page {n} ---"
        assert words(body) == words(pages[n - 1])


def test_a_hyphen_at_a_line_end_is_kept_with_its_line_break(tmp_path: Path) -> None:
    path = make_text_pdf(tmp_path, "hyphen.pdf", ["Eight exercises (Uebungsauf-\ngaben) remain."])
    assert "\ufffe" in pdfium_page_texts(path)[0]
    text = extract_bytes(path.read_bytes(), "hyphen.pdf").text
    assert text == "--- page 1 ---\nEight exercises (Uebungsauf-\ngaben) remain."


# --------------------------------------------------------------------------- errors as before


def test_a_password_protected_pdf_gives_the_same_error_as_before(tmp_path: Path) -> None:
    path = make_encrypted_pdf(tmp_path, "locked.pdf", "Secret plans", user_password="hunter2")
    error = error_of(path)
    assert str(error) == str(problems.password_protected(str(path), "pdf"))


def test_an_image_only_pdf_gives_the_same_error_as_before(tmp_path: Path) -> None:
    path = make_image_only_pdf(tmp_path, "scan.pdf", page_count=3)
    assert pdfium_page_texts(path) == ["", "", ""]
    error = error_of(path)
    assert str(error) == str(problems.no_pdf_text(str(path), 3))


def test_a_pdf_header_over_garbage_is_corrupted_with_the_cause_kept(tmp_path: Path) -> None:
    garbage = make_random_bytes(tmp_path, "noise.bin", size=8000)
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"%PDF-1.7\n" + garbage.read_bytes())
    error = error_of(path)
    assert str(error) == str(problems.corrupted(str(path), "pdf"))
    assert error.__cause__ is not None


def test_a_damaged_pdf_pdfium_would_repair_is_read_by_pypdf_as_before(tmp_path: Path) -> None:
    path = make_text_pdf(tmp_path, "moved.pdf", ["Alpha page", "Beta page"])
    data = path.read_bytes()
    damaged = data[: data.rindex(b"startxref")] + b"startxref\n999\n%%EOF\n"
    read = read_pages(damaged, "moved.pdf")
    assert [(page.text, page.reader) for page in read] == [
        ("Alpha page", "pypdf"), ("Beta page", "pypdf")
    ]


def test_importing_extract_does_not_load_pdfium() -> None:
    code = "import sys, nbchat.core.extract\nprint('pypdfium2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
