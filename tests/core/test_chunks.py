"""Chunks: ~300-token spans that never cross a page, sheet, slide or cell, labelled so a
user can check them against the file."""

from __future__ import annotations

from nbchat.core.chunks import CHUNK_CHARS, chunk_text, describe_chunks
from nbchat.core.extract import extract_bytes

from filegen import code_cell, make_notebook, make_pptx, make_text, make_text_pdf, make_xlsx, markdown_cell
from needles import needle_document


def extracted(path):
    return extract_bytes(path.read_bytes(), path.name)


def test_a_long_text_is_cut_at_paragraphs_into_line_labelled_chunks():
    document = needle_document()
    chunks = chunk_text(document.text)
    assert 150 < len(chunks) < 400
    assert all(c.end - c.start <= CHUNK_CHARS for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        piece = document.text[chunk.start:chunk.end]
        assert piece == piece.strip()
        # Cut between paragraphs: a chunk starts a paragraph and ends one.
        assert chunk.start == 0 or document.text[chunk.start - 2:chunk.start] == "\n\n"
        first = document.text.count("\n", 0, chunk.start) + 1
        last = document.text.count("\n", 0, chunk.end - 1) + 1
        assert chunk.label == (f"lines {first:,}-{last:,}" if first != last else f"line {first:,}")
    # Every fact sentence lies whole inside one chunk.
    for fact in document.facts:
        at = document.text.index(fact.sentence.rstrip("."))
        assert any(c.start <= at and at + len(fact.sentence) - 1 <= c.end for c in chunks)


def test_a_paragraph_longer_than_a_chunk_is_split_at_sentences():
    text = " ".join(f"Sentence number {i} says little." for i in range(200))
    chunks = chunk_text(text)
    assert len(chunks) > 3
    assert all(text[c.end - 1] == "." for c in chunks)
    assert all(c.label == "line 1" for c in chunks)


def test_text_file_chunks_are_labelled_by_lines(tmp_path):
    lines = [f"row {i}: " + "word " * 30 for i in range(1, 201)]
    got = extracted(make_text(tmp_path, "log.txt", "\n".join(lines)))
    chunks = chunk_text(got.text, got.sections)
    assert chunks[0].label.startswith("lines 1-")
    assert chunks[-1].label.endswith("-200")
    assert describe_chunks([chunks[0], chunks[-1]], chunks, got.text) == (
        f"lines 1-{chunks[0].last}, {chunks[-1].first}-200 of 200")


def test_pdf_chunks_are_labelled_by_page_and_never_cross_one(tmp_path):
    pages = [f"Page {n} text. " + "Plain words here. " * (10 if n != 3 else 150) for n in range(1, 6)]
    got = extracted(make_text_pdf(tmp_path, "report.pdf", pages))
    chunks = chunk_text(got.text, got.sections)
    labels = [c.label for c in chunks]
    assert labels[:2] == ["page 1", "page 2"]
    assert labels.count("page 3") > 1  # a long page is several chunks
    for chunk in chunks:
        section = next(s for s in got.sections if f"page {s.number}" == chunk.label)
        assert section.start <= chunk.start and chunk.end <= section.end
    picked = [c for c in chunks if c.label in ("page 1", "page 2", "page 5")]
    assert describe_chunks(picked, chunks, got.text) == "pages 1-2, 5 of 5"


def test_xlsx_chunks_name_the_sheet_and_rows(tmp_path):
    rows = [["region", "total"]] + [[f"north-{i}-" + "x" * 40, i] for i in range(1, 120)]
    got = extracted(make_xlsx(tmp_path, "book.xlsx", {"Sales": rows, "Costs": [["item"], ["rent"]]}))
    chunks = chunk_text(got.text, got.sections)
    sales = [c for c in chunks if c.sheet == "Sales"]
    assert len(sales) > 2
    assert sales[0].label.startswith("sheet Sales, rows 1-")
    assert sales[-1].last == 120 and sales[-1].label.endswith("120")
    # Consecutive chunks continue the row count.
    assert all(b.first == a.last + 1 for a, b in zip(sales, sales[1:]))
    assert chunks[-1].label == "sheet Costs, rows 1-2"
    assert f"north-{sales[1].first - 1}-" in got.text[sales[1].start:sales[1].end]


def test_pptx_and_notebook_chunks_are_labelled_by_slide_and_cell(tmp_path):
    deck = extracted(make_pptx(tmp_path, "deck.pptx", [("Plan", "Ship in May"), ("Risks", "Supplier delay")]))
    assert [c.label for c in chunk_text(deck.text, deck.sections)] == ["slide 1", "slide 2"]
    notebook = extracted(make_notebook(tmp_path, "a.ipynb", [
        markdown_cell("# Heron counts"), markdown_cell(""), code_cell("print(41 + 1)")]))
    assert [c.label for c in chunk_text(notebook.text, notebook.sections)] == ["cell 1", "cell 3"]


def test_chunking_is_a_pure_function_of_text_and_sections():
    text = needle_document(40_000).text
    assert chunk_text(text) == chunk_text(text)
