"""Located sections: every page, sheet, slide and cell is a span of the extracted text.

The text sent to the model is the sections joined as before (``\\n\\n``), byte for byte;
the sections only say where each unit sits, and survive the extraction cache.
"""

from __future__ import annotations

from filegen import (
    code_cell,
    make_notebook,
    make_pptx,
    make_text_pdf,
    make_xlsx,
    markdown_cell,
    stream_output,
)

from nbchat.core.extract import EXTRACTOR_VERSION, extract_bytes
from nbchat.core.extractors.record import Extracted, Section, join_sections


def spans_tile_the_text(extracted: Extracted) -> bool:
    """The sections, in order, cover the text with only the separators between them."""
    pieces = [extracted.section_text(s) for s in extracted.sections]
    return "\n\n".join(pieces) == extracted.text


def test_join_sections_gives_the_joined_text_and_each_part_where_it_sits():
    text, sections = join_sections([("page", 1, "", "one"), ("page", 2, "", ""), ("page", 3, "", "three")])
    assert text == "one\n\n\n\nthree"
    assert sections == (
        Section("page", 1, 0, 3), Section("page", 2, 5, 5), Section("page", 3, 7, 12)
    )


def test_pdf_pages_are_sections_that_start_with_their_marker(tmp_path):
    path = make_text_pdf(tmp_path, "report.pdf", ["Revenue rose.", "Costs fell.", "Outlook."])
    extracted = extract_bytes(path.read_bytes(), path.name)
    assert [(s.unit, s.number) for s in extracted.sections] == [("page", 1), ("page", 2), ("page", 3)]
    for section in extracted.sections:
        assert extracted.section_text(section).startswith(f"--- page {section.number} ---")
    assert "Costs fell." in extracted.section_text(extracted.sections[1])
    assert spans_tile_the_text(extracted)


def test_xlsx_sheets_are_sections_named_by_their_title(tmp_path):
    path = make_xlsx(tmp_path, "book.xlsx", {"Sales": [["region", "total"], ["north", 12]],
                                              "Costs": [["item", "eur"], ["rent", 900]]})
    extracted = extract_bytes(path.read_bytes(), path.name)
    assert [(s.unit, s.number, s.label) for s in extracted.sections] == [
        ("sheet", 1, "Sales"), ("sheet", 2, "Costs")]
    assert "rent" in extracted.section_text(extracted.sections[1])
    assert "rent" not in extracted.section_text(extracted.sections[0])
    assert spans_tile_the_text(extracted)


def test_pptx_slides_are_sections(tmp_path):
    path = make_pptx(tmp_path, "deck.pptx", [("Plan", "Ship in May"), ("Risks", "Supplier delay")])
    extracted = extract_bytes(path.read_bytes(), path.name)
    assert [(s.unit, s.number) for s in extracted.sections] == [("slide", 1), ("slide", 2)]
    assert extracted.section_text(extracted.sections[1]).startswith("## Slide 2: Risks")
    assert spans_tile_the_text(extracted)


def test_notebook_cells_are_sections_numbered_by_their_place_in_the_notebook(tmp_path):
    path = make_notebook(tmp_path, "analysis.ipynb", [
        markdown_cell("# Heron counts"),
        markdown_cell(""),  # an empty cell sends nothing, but keeps its number
        code_cell("print(41 + 1)", [stream_output("42\n")]),
    ])
    extracted = extract_bytes(path.read_bytes(), path.name)
    assert [(s.unit, s.number) for s in extracted.sections] == [("cell", 1), ("cell", 3)]
    third = extracted.section_text(extracted.sections[1])
    assert "print(41 + 1)" in third and "42" in third
    assert spans_tile_the_text(extracted)


def test_sections_survive_the_extraction_cache(store, tmp_path):
    path = make_xlsx(tmp_path, "book.xlsx", {"A": [["x"], [1]], "B": [["y"], [2]]})
    extracted = extract_bytes(path.read_bytes(), path.name)
    with store.transaction() as db:
        store.put_extract(db, "f" * 64, EXTRACTOR_VERSION, extracted)
    cached = store.cached_extract("f" * 64, EXTRACTOR_VERSION)
    assert cached == extracted and cached.sections == extracted.sections
    assert [s.label for s in cached.sections] == ["A", "B"]


def test_an_extraction_without_sections_is_cached_as_it_was(store):
    plain = Extracted("just text", "text", ("a note",))
    with store.transaction() as db:
        store.put_extract(db, "e" * 64, EXTRACTOR_VERSION, plain)
    cached = store.cached_extract("e" * 64, EXTRACTOR_VERSION)
    assert cached == plain and cached.sections == ()
