"""CSV and TSV as a Markdown table, with the delimiter sniffed rather than assumed.

Large files show their first :data:`~.table.MAX_TABLE_ROWS` rows and a line with the
total, so the model knows it sees a sample.
"""

from __future__ import annotations

import csv
import io
import os

from . import problems
from .plaintext import decode_or_refuse
from .record import Extracted
from .table import MAX_TABLE_ROWS, markdown_table, rows_cut_line

__all__ = ["extract_delimited", "sniff_delimiter"]

_CANDIDATES = ",;\t|"
_SAMPLE_CHARS = 64 * 1024


def sniff_delimiter(text: str, kind: str) -> str:
    """The delimiter of ``text``: sniffed, checked against the header line."""
    default = "\t" if kind == "tsv" else ","
    sample = text[:_SAMPLE_CHARS]
    if len(text) > _SAMPLE_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    first_line = sample.split("\n", 1)[0]
    if kind == "tsv" and "\t" in first_line:
        return "\t"
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_CANDIDATES).delimiter
    except csv.Error:
        delimiter = ""
    if delimiter and delimiter in first_line:
        return delimiter
    counts = {candidate: first_line.count(candidate) for candidate in _CANDIDATES}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else default


def extract_delimited(data: bytes, name: str, kind: str) -> Extracted:
    """A table whose header is the first row; rows past the cap are counted, not shown."""
    text, notes = decode_or_refuse(data, name, kind)
    delimiter = sniff_delimiter(text, kind)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[list[str]] = []
    data_rows = 0
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if rows:
                data_rows += 1
            if data_rows <= MAX_TABLE_ROWS:
                rows.append(row)
    except csv.Error as error:
        raise problems.corrupted(
            name, kind, f"line {reader.line_num}: {error}"
        ) from error
    if not rows:
        return Extracted(text="", kind=kind, notes=notes)
    table = markdown_table(rows)
    shown = len(rows) - 1
    if data_rows > shown:
        table += "\n" + rows_cut_line(data_rows, shown)
        base = os.path.basename(name.replace("\\", "/")) or name
        notes += (f"{base} has {data_rows:,} rows; first {shown:,} shown",)
    return Extracted(text=table, kind=kind, notes=notes)
