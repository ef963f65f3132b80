"""Extraction of every supported format from real files, and the errors for bad ones."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbchat.core.errors import AttachmentError
from nbchat.core.extract import EXTRACTOR_VERSION, KINDS, Extracted, extract_bytes
from filegen import (
    Bullet,
    Formula,
    Heading,
    Picture,
    Slide,
    code_cell,
    error_output,
    image_output,
    make_csv,
    make_docx,
    make_encrypted_pdf,
    make_html,
    make_image_only_pdf,
    make_notebook,
    make_pptx,
    make_random_bytes,
    make_text,
    make_text_pdf,
    make_truncated,
    make_xlsx,
    make_zip,
    make_zip_bomb_docx,
    markdown_cell,
    result_output,
    rewrite_zip_member,
    stream_output,
    tiny_png,
)

_CLASS_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception|Warning)\b")


def extract_file(path: Path, **options: int) -> Extracted:
    return extract_bytes(path.read_bytes(), str(path), **options)


def extraction_error(path: Path, **options: int) -> AttachmentError:
    with pytest.raises(AttachmentError) as caught:
        extract_file(path, **options)
    error = caught.value
    assert_actionable(error, str(path))
    return error


def assert_actionable(error: AttachmentError, name: str) -> None:
    """The message names the file, says what to do, and reads as prose, not a trace."""
    message = str(error)
    assert error.name == name
    assert message.startswith(f"{name}: ")
    assert error.problem and error.fix
    assert "Traceback" not in message
    assert not _CLASS_NAME.search(message), message


def in_order(text: str, *parts: str) -> bool:
    """Every part occurs in ``text``, each after the previous one."""
    position = 0
    for part in parts:
        found = text.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


# --------------------------------------------------------------------------- API


def test_extracted_is_a_frozen_record_with_a_known_kind() -> None:
    result = extract_bytes(b"hello", "greeting.txt")
    assert result == Extracted(text="hello", kind="text", notes=())
    assert result.kind in KINDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "changed"  # type: ignore[misc]
    assert isinstance(EXTRACTOR_VERSION, str) and EXTRACTOR_VERSION


def test_importing_extract_loads_no_parsing_library() -> None:
    code = (
        "import sys, nbchat.core.extract\n"
        "heavy = ['pypdf', 'docx', 'openpyxl', 'pptx', 'lxml', 'charset_normalizer']\n"
        "print([name for name in heavy if name in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- PDF


def test_pdf_text_comes_page_by_page_under_page_markers(tmp_path: Path) -> None:
    path = make_text_pdf(tmp_path, "report.pdf", ["Alpha findings", "Beta results", "Gamma end"])
    result = extract_file(path)
    assert result.kind == "pdf"
    assert in_order(
        result.text,
        "--- page 1 ---", "Alpha findings",
        "--- page 2 ---", "Beta results",
        "--- page 3 ---", "Gamma end",
    )
    assert result.notes == ()


def test_pdf_page_without_text_is_named_in_the_notes(tmp_path: Path) -> None:
    path = make_text_pdf(tmp_path, "mixed.pdf", ["Cover text", "", "Closing text"])
    result = extract_file(path)
    assert "Closing text" in result.text
    assert result.notes == (
        "page 2 has no text (scanned or images only); only the text of the other pages is included",
    )


def test_image_only_pdf_has_no_extractable_text(tmp_path: Path) -> None:
    error = extraction_error(make_image_only_pdf(tmp_path, "scan.pdf", page_count=2))
    assert error.problem.startswith("no extractable text (scanned or image-only)")
    assert "2 pages" in error.problem
    assert "DOCX" in error.fix and "paste the text" in error.fix


def test_pdf_locked_only_by_an_owner_password_opens_with_the_empty_password(
    tmp_path: Path,
) -> None:
    path = make_encrypted_pdf(tmp_path, "restricted.pdf", "Quarterly numbers", user_password="")
    assert b"/Encrypt" in path.read_bytes()
    assert "Quarterly numbers" in extract_file(path).text


def test_pdf_with_a_user_password_is_password_protected(tmp_path: Path) -> None:
    path = make_encrypted_pdf(tmp_path, "locked.pdf", "Secret plans", user_password="hunter2")
    error = extraction_error(path)
    assert error.problem.startswith("password-protected")
    assert "text PDF" in error.fix and "DOCX" in error.fix and "paste the text" in error.fix
    assert "Secret plans" not in str(error)


def test_random_bytes_named_pdf_are_not_really_a_pdf(tmp_path: Path) -> None:
    error = extraction_error(make_random_bytes(tmp_path, "invoice.pdf"))
    assert "could not be read as a PDF file" in error.problem
    assert "not really a PDF file" in error.problem
    assert "save it again" in error.fix


def test_truncated_pdf_is_corrupted_and_the_cause_is_kept(tmp_path: Path) -> None:
    pages = [f"Page {n} " + "words " * 50 for n in range(1, 6)]
    path = make_truncated(make_text_pdf(tmp_path, "long.pdf", pages))
    error = extraction_error(path)
    assert "looks damaged" in error.problem
    assert error.__cause__ is not None


# --------------------------------------------------------------------------- DOCX


def test_docx_paragraphs_and_tables_keep_document_order(tmp_path: Path) -> None:
    path = make_docx(
        tmp_path,
        "memo.docx",
        [
            "Opening paragraph.",
            [["Fruit", "Count"], ["apple", 3], ["pear", 5]],
            "Paragraph between tables.",
            [["City", "Country"], ["Lyon", "France"]],
            "Closing paragraph.",
        ],
    )
    result = extract_file(path)
    assert result.kind == "docx"
    assert in_order(
        result.text,
        "Opening paragraph.",
        "| Fruit | Count |\n|---|---|\n| apple | 3 |\n| pear | 5 |",
        "Paragraph between tables.",
        "| City | Country |\n|---|---|\n| Lyon | France |",
        "Closing paragraph.",
    )


def test_docx_short_form_writes_paragraphs_then_the_table(tmp_path: Path) -> None:
    path = make_docx(tmp_path, "short.docx", paragraphs=["One", "Two"], table_rows=[["k", "v"]])
    assert in_order(extract_file(path).text, "One", "Two", "| k | v |")


def test_docx_headings_and_bullets_keep_their_markdown_shape(tmp_path: Path) -> None:
    path = make_docx(
        tmp_path,
        "plan.docx",
        [
            Heading("Project plan", 0),
            Heading("Goals", 2),
            Bullet("ship it"),
            Bullet("test it"),
            "Done.",
        ],
    )
    text = extract_file(path).text
    assert text == "# Project plan\n\n## Goals\n\n- ship it\n- test it\n\nDone."


def test_docx_pictures_are_counted_not_inlined(tmp_path: Path) -> None:
    path = make_docx(tmp_path, "photo.docx", ["Caption below.", Picture(), Picture()])
    result = extract_file(path)
    assert result.text == "Caption below."
    assert result.notes == ("2 images or drawings not included",)


def test_docx_table_cell_with_pipe_and_lines_stays_one_cell(tmp_path: Path) -> None:
    path = make_docx(tmp_path, "cells.docx", [[["Rule", "Example"], ["or", "a | b\nc"]]])
    assert "| or | a \\| b<br>c |" in extract_file(path).text


def test_docx_keeps_tracked_insertions_and_content_controls_but_not_deletions(
    tmp_path: Path,
) -> None:
    path = make_docx(tmp_path, "tracked.docx", ["PLACEHOLDER", "Last line."])
    run = b"<w:r><w:t>PLACEHOLDER</w:t></w:r></w:p>"
    replacement = (
        b'<w:ins w:id="1" w:author="Ann"><w:r><w:t>inserted words</w:t></w:r></w:ins>'
        b'<w:del w:id="2" w:author="Ann"><w:r><w:delText>deleted words</w:delText></w:r></w:del>'
        b"</w:p><w:sdt><w:sdtContent><w:p><w:r><w:t>inside a control</w:t></w:r></w:p>"
        b"</w:sdtContent></w:sdt>"
    )
    rewrite_zip_member(path, "word/document.xml", lambda xml: xml.replace(run, replacement))
    text = extract_file(path).text
    assert in_order(text, "inserted words", "inside a control", "Last line.")
    assert "deleted words" not in text


def test_truncated_docx_is_corrupted(tmp_path: Path) -> None:
    path = make_truncated(make_docx(tmp_path, "thesis.docx", ["A paragraph."] * 40))
    error = extraction_error(path)
    assert "could not be read as a DOCX (Word) file" in error.problem
    assert "re-export" in error.fix.lower()


def test_zip_without_word_document_xml_is_not_really_a_docx(tmp_path: Path) -> None:
    path = make_zip(tmp_path, "fake.docx", {"[Content_Types].xml": "<Types/>", "notes.txt": "hi"})
    error = extraction_error(path)
    assert "not really a DOCX (Word) file" in error.problem
    assert "word/document.xml" in error.problem


def test_docx_with_unparseable_xml_is_corrupted_with_the_cause_chained(tmp_path: Path) -> None:
    path = make_docx(tmp_path, "broken.docx", ["text"])
    rewrite_zip_member(path, "word/document.xml", lambda xml: xml[: len(xml) // 2])
    error = extraction_error(path)
    assert "looks damaged" in error.problem
    assert error.__cause__ is not None


def test_workbook_named_docx_is_read_as_a_workbook(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path, "misnamed.docx", {"Sheet A": [["x"], ["1"]]})
    result = extract_file(path)
    assert result.kind == "xlsx"
    assert "## Sheet: Sheet A" in result.text


def test_macro_enabled_word_document_is_read_like_a_docx(tmp_path: Path) -> None:
    path = make_docx(tmp_path, "macros.docm", [Heading("Macro doc", 1), "Body text."])
    rewrite_zip_member(
        path,
        "[Content_Types].xml",
        lambda xml: xml.replace(
            b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            b"application/vnd.ms-word.document.macroEnabled.main+xml",
        ),
    )
    assert extract_file(path).text == "# Macro doc\n\nBody text."


def test_slide_show_file_is_read_like_a_pptx(tmp_path: Path) -> None:
    path = make_pptx(tmp_path, "kiosk.ppsx", [("Loop", "Runs forever")])
    rewrite_zip_member(
        path,
        "[Content_Types].xml",
        lambda xml: xml.replace(
            b"presentationml.presentation.main+xml", b"presentationml.slideshow.main+xml"
        ),
    )
    assert extract_file(path).text == "## Slide 1: Loop\n\nRuns forever"


def test_encrypted_office_file_is_password_protected(tmp_path: Path) -> None:
    # Password-protected Office files are OLE containers holding an EncryptedPackage.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    ole += "EncryptedPackage".encode("utf-16-le") + b"\x00" * 512
    error = extraction_error(_write(tmp_path / "budget.xlsx", ole))
    assert error.problem.startswith("password-protected")
    assert "XLSX" in error.problem


def test_old_binary_word_file_asks_to_save_as_docx(tmp_path: Path) -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024
    error = extraction_error(_write(tmp_path / "letter.doc", ole))
    assert "unsupported format" in error.problem
    assert "save it as DOCX" in error.problem


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- zip bombs


def test_zip_bomb_is_refused_by_its_compression_ratio_before_parsing(tmp_path: Path) -> None:
    path = make_zip_bomb_docx(tmp_path, "harmless.docx", inflated_bytes=20 * 1024 * 1024)
    assert path.stat().st_size < 200_000
    error = extraction_error(path)  # the default cap (512 MB) is not what stops it
    assert "word/document.xml" in error.problem
    assert "20 MB" in error.problem
    assert "zip bomb" in error.problem


def test_office_file_declaring_more_than_the_cap_is_refused(tmp_path: Path) -> None:
    path = make_zip_bomb_docx(tmp_path, "big.docx", inflated_bytes=3 * 1024 * 1024)
    error = extraction_error(path, max_inflated_bytes=2 * 1024 * 1024)
    assert error.problem.startswith("expands to 3.")
    assert "MB when unpacked, over the limit of 2 MB" in error.problem
    assert "max_inflated_bytes" in error.fix


def test_the_same_office_file_under_the_cap_is_read(tmp_path: Path) -> None:
    path = make_zip_bomb_docx(tmp_path, "fine.docx", inflated_bytes=3 * 1024 * 1024)
    assert extract_file(path, max_inflated_bytes=4 * 1024 * 1024).text == "Looks harmless."


# --------------------------------------------------------------------------- XLSX


def test_every_sheet_is_a_markdown_table_under_its_name_in_workbook_order(
    tmp_path: Path,
) -> None:
    path = make_xlsx(
        tmp_path,
        "book.xlsx",
        {
            "Sales": [["Region", "Amount"], ["North", 120], ["South", 80.5]],
            "Empty": [],
            "People": [["Name"], ["Ada"], ["Grace"]],
        },
    )
    result = extract_file(path)
    assert result.kind == "xlsx"
    assert in_order(
        result.text,
        "## Sheet: Sales",
        "| Region | Amount |\n|---|---|\n| North | 120 |\n| South | 80.5 |",
        "## Sheet: Empty",
        "(empty sheet)",
        "## Sheet: People",
        "| Name |\n|---|\n| Ada |\n| Grace |",
    )


def test_formula_cells_show_the_results_saved_with_the_file(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path,
        "totals.xlsx",
        {
            "Data": [
                ["a", "b", "sum", "label"],
                [2, 3, Formula("=A2+B2", 5), Formula('="x"&A2', "x2")],
            ]
        },
    )
    result = extract_file(path)
    assert "| 2 | 3 | 5 | x2 |" in result.text
    assert "=A2+B2" not in result.text
    assert result.notes == ()


def test_formula_without_a_saved_result_shows_the_formula_and_says_so(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path, "script.xlsx", {"Calc": [["a", "double"], [4, Formula("=A2*2")]]})
    result = extract_file(path)
    assert "| 4 | =A2*2 |" in result.text
    assert result.notes == (
        "sheet 'Calc': 1 formula cell has no saved result, so the formula is shown",
    )


def test_long_sheet_is_cut_visibly_and_never_silently(tmp_path: Path) -> None:
    rows = [["id", "value"]] + [[n, n * 2] for n in range(1, 2501)]
    path = make_xlsx(tmp_path, "raw.xlsx", {"Raw": rows, "Tail": [["after"], ["yes"]]})
    result = extract_file(path)
    assert "| 1999 | 3998 |" in result.text
    assert "| 2001 | 4002 |" not in result.text
    assert "[2,501 rows in total; first 2,000 shown]" in result.text
    assert result.notes == ("sheet 'Raw' has 2,501 rows; first 2,000 shown",)
    assert "## Sheet: Tail" in result.text


def test_dates_and_floats_read_as_people_see_them(tmp_path: Path) -> None:
    rows: list[list[object]] = [["when", "x", "flag"], [dt.datetime(2024, 3, 1), 0.1 + 0.2, True]]
    result = extract_file(make_xlsx(tmp_path, "kinds.xlsx", {"S": rows}))
    assert "| 2024-03-01 | 0.3 | TRUE |" in result.text


def test_workbook_with_only_empty_sheets_is_empty(tmp_path: Path) -> None:
    error = extraction_error(make_xlsx(tmp_path, "blank.xlsx", {"One": [], "Two": []}))
    assert error.problem == "empty: no text found."


# --------------------------------------------------------------------------- PPTX


def test_slides_come_in_order_with_title_text_table_and_notes(tmp_path: Path) -> None:
    path = make_pptx(
        tmp_path,
        "deck.pptx",
        [
            ("Welcome", "Agenda item one\nAgenda item two"),
            Slide(
                "Numbers",
                "Growth was strong",
                notes="Mention the caveat",
                table=[["Q", "Sales"], ["Q1", "10"]],
            ),
            ("Thanks", ""),
        ],
    )
    result = extract_file(path)
    assert result.kind == "pptx"
    assert in_order(
        result.text,
        "## Slide 1: Welcome",
        "Agenda item one\nAgenda item two",
        "## Slide 2: Numbers",
        "Growth was strong",
        "| Q | Sales |\n|---|---|\n| Q1 | 10 |",
        "Notes:\nMention the caveat",
        "## Slide 3: Thanks",
    )
    assert result.text.count("Welcome") == 1  # the title is not repeated as body text


def test_pptx_pictures_are_counted_in_the_notes(tmp_path: Path) -> None:
    path = make_pptx(tmp_path, "pics.pptx", [Slide("Photo", "Look", picture=True)])
    assert extract_file(path).notes == ("1 picture not included",)


def test_truncated_pptx_is_corrupted(tmp_path: Path) -> None:
    path = make_truncated(make_pptx(tmp_path, "talk.pptx", [("One", "two")]))
    assert "could not be read as a PPTX (PowerPoint) file" in extraction_error(path).problem


# --------------------------------------------------------------------------- CSV / TSV


def test_csv_with_semicolons_in_windows_1252_becomes_a_table(tmp_path: Path) -> None:
    rows = [["name", "city"], ["Zoé", "Köln"], ["Ana", "São Paulo"]]
    path = make_csv(tmp_path, "people.csv", rows, delimiter=";", encoding="cp1252")
    result = extract_file(path)
    assert result.kind == "csv"
    assert result.text == "| name | city |\n|---|---|\n| Zoé | Köln |\n| Ana | São Paulo |"


def test_tsv_becomes_a_table(tmp_path: Path) -> None:
    path = make_csv(tmp_path, "scores.tsv", [["team", "score"], ["red", "3"]], delimiter="\t")
    result = extract_file(path)
    assert result.kind == "tsv"
    assert result.text == "| team | score |\n|---|---|\n| red | 3 |"


def test_quoted_commas_pipes_and_newlines_stay_in_their_cell(tmp_path: Path) -> None:
    rows = [["id", "comment"], ["1", "fine, thanks | really\nsecond line"]]
    result = extract_file(make_csv(tmp_path, "comments.csv", rows))
    assert "| 1 | fine, thanks \\| really<br>second line |" in result.text


def test_large_csv_shows_first_rows_and_the_total(tmp_path: Path) -> None:
    rows = [["n", "square"]] + [[n, n * n] for n in range(1, 5001)]
    result = extract_file(make_csv(tmp_path, "squares.csv", rows))
    assert "| 2000 | 4000000 |" in result.text
    assert "| 2001 |" not in result.text
    assert result.text.endswith("[5,000 rows in total; first 2,000 shown]")
    assert result.notes == ("squares.csv has 5,000 rows; first 2,000 shown",)


# --------------------------------------------------------------------------- JSON / HTML


def test_json_is_pretty_printed_with_two_space_indents(tmp_path: Path) -> None:
    path = make_text(tmp_path, "config.json", '{"name":"nbchat","tags":["a","b"],"café":1}')
    result = extract_file(path)
    assert result.kind == "json"
    assert result.text == (
        '{\n  "name": "nbchat",\n  "tags": [\n    "a",\n    "b"\n  ],\n  "café": 1\n}'
    )


def test_invalid_json_is_corrupted_naming_line_and_column(tmp_path: Path) -> None:
    path = make_text(tmp_path, "bad.json", '{\n  "a": 1,\n  "b": [1, 2,\n}\n')
    error = extraction_error(path)
    assert "could not be read as a JSON file" in error.problem
    assert "line 4, column 1" in error.problem


def test_html_gives_text_without_tags_scripts_or_styles(tmp_path: Path) -> None:
    body = (
        "<h1>Release notes</h1><p>First &amp; <b>bold</b>\n   paragraph.</p>"
        "<script>alert('x')</script><style>p {color: red}</style>"
        "<p>Second paragraph.<br>Same paragraph, new line.</p>"
        "<ul><li>one</li><li>two</li></ul>"
        "<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>"
    )
    result = extract_file(make_html(tmp_path, "notes.html", body, title="Notes page"))
    assert result.kind == "html"
    assert result.text == (
        "# Notes page\n\n# Release notes\n\nFirst & bold paragraph.\n\n"
        "Second paragraph.\nSame paragraph, new line.\n\n- one\n- two\n\nk | v\na | 1"
    )


def test_html_uses_the_charset_its_meta_tag_declares(tmp_path: Path) -> None:
    page = (
        '<html><head><meta charset="windows-1252"></head>'
        "<body><p>Crème brûlée – 5 €</p></body></html>"
    )
    path = _write(tmp_path / "menu.htm", page.encode("cp1252"))
    assert extract_file(path).text == "Crème brûlée – 5 €"


# --------------------------------------------------------------------------- text


def test_latin1_text_is_detected_not_assumed(tmp_path: Path) -> None:
    path = make_text(tmp_path, "french.txt", "café naïve", encoding="latin-1")
    assert extract_file(path) == Extracted(text="café naïve", kind="text")


def test_utf16_text_with_bom_decodes(tmp_path: Path) -> None:
    path = make_text(tmp_path, "windows.txt", "Grüße, 世界\n", encoding="utf-16")
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    assert extract_file(path).text == "Grüße, 世界\n"


def test_utf8_bom_is_removed_and_crlf_becomes_lf(tmp_path: Path) -> None:
    path = make_text(tmp_path, "excel.md", "# Title\r\n\r\nBody\r\n", encoding="utf-8-sig")
    assert extract_file(path) == Extracted(text="# Title\n\nBody\n", kind="markdown")


def test_source_code_keeps_its_text_and_is_marked_as_code(tmp_path: Path) -> None:
    source = "def area(r):\n    return 3.14159 * r ** 2  # π r²\n"
    for name in ("geometry.py", "query.sql", "model.R", "settings.yaml", "main.rs", "Makefile"):
        assert extract_file(make_text(tmp_path, name, source)) == Extracted(source, "code")


def test_text_file_with_nul_bytes_is_binary_not_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "dump.txt", b"header\x00\x01\x02\x00data" * 20)
    error = extraction_error(path)
    assert "binary data" in error.problem


def test_unknown_extension_that_decodes_as_text_is_text(tmp_path: Path) -> None:
    path = make_text(tmp_path, "results.dat", "run 1: ok\nrun 2: failed\n")
    assert extract_file(path) == Extracted(text="run 1: ok\nrun 2: failed\n", kind="text")


def test_file_without_extension_is_recognised_by_its_content(tmp_path: Path) -> None:
    pdf = make_text_pdf(tmp_path, "download.pdf", ["From the web"])
    renamed = pdf.rename(tmp_path / "download")
    assert extract_file(renamed).kind == "pdf"
    docx = make_docx(tmp_path, "attachment.docx", ["Mailed file"]).rename(tmp_path / "attachment")
    assert extract_file(docx).text == "Mailed file"


def test_html_and_notebooks_without_extension_are_recognised(tmp_path: Path) -> None:
    page = make_html(tmp_path, "saved.html", "<p>Saved page</p>").rename(tmp_path / "saved")
    assert extract_file(page) == Extracted(text="Saved page", kind="html")
    cells = [markdown_cell("Notebook body")]
    notebook = make_notebook(tmp_path, "nb.ipynb", cells).rename(tmp_path / "nb.backup")
    assert extract_file(notebook) == Extracted(text="Notebook body", kind="ipynb")


def test_pdf_saved_under_a_text_extension_is_read_as_a_pdf(tmp_path: Path) -> None:
    pdf = make_text_pdf(tmp_path, "export.pdf", ["Real PDF inside"])
    path = pdf.rename(tmp_path / "export.txt")
    assert extract_file(path).kind == "pdf"


def test_unknown_binary_is_unsupported_and_lists_what_is(tmp_path: Path) -> None:
    error = extraction_error(make_random_bytes(tmp_path, "model.bin"))
    assert error.problem.startswith("unsupported format")
    for kind in ("PDF", "DOCX", "XLSX", "PPTX", "CSV", "JSON", "HTML", "Markdown", "notebooks"):
        assert kind in error.problem


def test_image_is_unsupported_and_named_as_an_image(tmp_path: Path) -> None:
    error = extraction_error(_write(tmp_path / "chart.png", tiny_png()))
    assert "(it looks like a PNG image)" in error.problem


def test_zero_byte_and_blank_files_are_empty(tmp_path: Path) -> None:
    for name, content in (("nothing.txt", ""), ("blank.md", " \n\t\n"), ("spaces.csv", "\n\n")):
        error = extraction_error(make_text(tmp_path, name, content))
        assert error.problem == "empty: no text found."


def test_empty_docx_is_empty(tmp_path: Path) -> None:
    error = extraction_error(make_docx(tmp_path, "blank.docx", []))
    assert error.problem == "empty: no text found."


_PRINTABLE = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff", whitelist_characters="\n\t"
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(_PRINTABLE, min_size=1, max_size=200).filter(str.strip),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]),
)
def test_any_text_round_trips_through_unicode_encodings(text: str, encoding: str) -> None:
    result = extract_bytes(text.encode(encoding), "note.txt")
    assert result.text == text.replace("\r\n", "\n").replace("\r", "\n")


def _prose_like(words: list[str]) -> bool:
    """At most half the letters accented, as in real Western European prose."""
    letters = [char for char in "".join(words) if char.isalpha()]
    return sum(not char.isascii() for char in letters) <= len(letters) / 2


_WESTERN_WORDS = st.lists(
    st.sampled_from(
        ["café", "naïve", "garçon", "Straße", "über", "niño", "señal", "crème", "brûlée",
         "fjörd", "Ærø", "été", "à", "déjà", "vu", "the", "und", "le", "el", "data", "of"]
    ),
    min_size=2,
    max_size=30,
).filter(_prose_like)


@settings(max_examples=60, deadline=None)
@given(words=_WESTERN_WORDS, encoding=st.sampled_from(["latin-1", "cp1252"]))
def test_western_european_text_in_a_legacy_encoding_round_trips(
    words: list[str], encoding: str
) -> None:
    text = " ".join(words)
    assert extract_bytes(text.encode(encoding), "legacy.txt").text == text


# --------------------------------------------------------------------------- notebooks


def test_notebook_cells_come_in_order_with_fenced_code_and_text_outputs(tmp_path: Path) -> None:
    cells = [
        markdown_cell("# Analysis\nLoading the data."),
        code_cell("import math\nprint(math.pi)", [stream_output("3.141592653589793\n")]),
        markdown_cell("Then a result:"),
        code_cell("6 * 7", [result_output("42")]),
    ]
    result = extract_file(make_notebook(tmp_path, "analysis.ipynb", cells))
    assert result.kind == "ipynb"
    assert result.text == (
        "# Analysis\nLoading the data.\n\n"
        "```python\nimport math\nprint(math.pi)\n```\n\n"
        "Output:\n```text\n3.141592653589793\n```\n\n"
        "Then a result:\n\n"
        "```python\n6 * 7\n```\n\n"
        "Output:\n```text\n42\n```"
    )


def test_notebook_error_output_is_name_and_value_without_the_coloured_traceback(
    tmp_path: Path,
) -> None:
    cells = [code_cell("1/0", [error_output("ZeroDivisionError", "division by zero")])]
    text = extract_file(make_notebook(tmp_path, "oops.ipynb", cells)).text
    assert "ZeroDivisionError: division by zero" in text
    assert "\x1b" not in text
    assert "most recent call last" not in text


def test_notebook_images_are_named_not_inlined(tmp_path: Path) -> None:
    cells = [code_cell("plt.plot(x)", [image_output("image/png")])]
    result = extract_file(make_notebook(tmp_path, "plot.ipynb", cells))
    assert "[image output: image/png]" in result.text
    assert "iVBOR" not in result.text  # no base64 PNG
    assert "<Figure" not in result.text
    assert result.notes == ("1 image output not included",)


def test_huge_notebook_output_is_cut_with_a_visible_note(tmp_path: Path) -> None:
    cells = [code_cell("print('x' * 50000)", [stream_output("x" * 50_000 + "\n")])]
    result = extract_file(make_notebook(tmp_path, "loud.ipynb", cells))
    assert "[output cut: first 20,000 of 50,000 characters]" in result.text
    assert len(result.text) < 21_000
    assert result.notes == ("an output of cell 1 was cut to 20,000 characters",)


def test_progress_bar_carriage_returns_keep_only_the_final_state(tmp_path: Path) -> None:
    cells = [code_cell("train()", [stream_output("10%\r50%\r100%\ndone\n", name="stderr")])]
    text = extract_file(make_notebook(tmp_path, "train.ipynb", cells)).text
    assert "100%\ndone" in text
    assert "10%" not in text.replace("100%", "")


def test_notebook_language_comes_from_its_metadata_and_fences_outlast_backticks(
    tmp_path: Path,
) -> None:
    cells = [code_cell('cat("```")\nsummary(df)')]
    text = extract_file(make_notebook(tmp_path, "stats.ipynb", cells, language="R")).text
    assert text == '````r\ncat("```")\nsummary(df)\n````'


def test_malformed_notebook_json_is_corrupted(tmp_path: Path) -> None:
    path = make_text(tmp_path, "half.ipynb", json.dumps({"cells": [], "nbformat": 4})[:-5])
    error = extraction_error(path)
    assert "could not be read as a Jupyter notebook (.ipynb) file" in error.problem
    assert "line 1" in error.problem


def test_json_that_is_not_a_notebook_is_corrupted(tmp_path: Path) -> None:
    error = extraction_error(make_text(tmp_path, "list.ipynb", "[1, 2, 3]"))
    assert "no notebook cells" in error.problem


def test_notebook_in_the_old_format_3_is_read(tmp_path: Path) -> None:
    notebook = {
        "nbformat": 3,
        "metadata": {},
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "heading", "level": 2, "source": ["Old notebook"]},
                    {
                        "cell_type": "code",
                        "language": "python",
                        "input": ["1 + 1"],
                        "outputs": [{"output_type": "pyout", "text": ["2"]}],
                    },
                ]
            }
        ],
    }
    text = extract_file(make_text(tmp_path, "old.ipynb", json.dumps(notebook))).text
    assert text == "## Old notebook\n\n```python\n1 + 1\n```\n\nOutput:\n```text\n2\n```"
