"""The bad-input corpus: generated files and prompts that people really send by mistake.

Each :class:`Case` builds its input in a directory (real files, made by the generators
in ``tests/filegen.py``) and says what the right answer is: either a named error whose
message holds the file's name and the fix, or a turn that goes through with the right
text in the prompt that was sent. ``test_bad_input.py`` sends every case through
``nbchat.chat`` against the scripted server.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager

from nbchat.core.attachments import stored_spec, text_spec
from nbchat.core.errors import (
    AttachmentError,
    AttachmentsError,
    BudgetError,
    ConfigError,
    NbChatError,
)

import filegen

__all__ = ["Attempt", "Case", "CASES", "ERROR_CASES", "TEXT_CASES", "unreadable_to_this_thread"]

MB = 1024 * 1024


@dataclass(frozen=True)
class Attempt:
    """What one case sends: the prompt, the files, options of ``nbchat.chat``.

    ``names`` are what the error message must mention (the files as the user named
    them); ``during`` wraps the call (e.g. to make a file unreadable even to root).
    """

    prompt: str
    files: list[Any] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    during: Callable[[], ContextManager[Any]] = contextlib.nullcontext


@dataclass(frozen=True)
class Case:
    """One bad input and the answer nbchat owes it.

    For an error case, ``error`` is the class raised and ``says`` the phrases its
    message must hold (what is wrong and the fix). For a text case (``error`` None),
    ``sent`` are phrases the prompt sent to the model must hold and ``not_sent``
    phrases it must not.
    """

    id: str
    build: Callable[[Path], Attempt]
    error: type[NbChatError] | None = None
    says: tuple[str, ...] = ()
    sent: tuple[str, ...] = ()
    not_sent: tuple[str, ...] = ()


def _ask(path: Path, prompt: str = "Summarise the attached file.", **options: Any) -> Attempt:
    return Attempt(prompt, [str(path)], options, names=(path.name,))


# -- reading the path ---------------------------------------------------------------------


def missing_path(d: Path) -> Attempt:
    return _ask(d / "quarterly-report.pdf")


def dangling_symlink(d: Path) -> Attempt:
    link = d / "latest.csv"
    link.symlink_to(d / "moved-away.csv")
    return _ask(link)


def home_relative_missing(d: Path) -> Attempt:
    name = "~/nbchat-corpus-no-such-notes.txt"
    return Attempt("Read my notes.", [name], names=(name,))


def directory(d: Path) -> Attempt:
    folder = d / "data"
    folder.mkdir()
    (folder / "inside.txt").write_text("inside", encoding="utf-8")
    return _ask(folder)


def named_pipe(d: Path) -> Attempt:
    fifo = d / "stream.txt"
    os.mkfifo(fifo)
    return _ask(fifo)


def zero_bytes(d: Path) -> Attempt:
    path = d / "empty.txt"
    path.write_bytes(b"")
    return _ask(path)


def whitespace_only(d: Path) -> Attempt:
    return _ask(filegen.make_text(d, "blank.md", " \n\t\n   \n"))


def no_read_permission(d: Path) -> Attempt:
    path = filegen.make_text(d, "private.txt", "salaries, do not read")
    path.chmod(0)
    return Attempt("Read it.", [str(path)], names=(path.name,), during=unreadable_to_this_thread)


def over_the_default_size_limit(d: Path) -> Attempt:
    path = d / "huge-log.txt"
    with open(path, "wb") as handle:  # sparse: 51 MB on paper, nothing on disk
        handle.truncate(51 * MB)
    return _ask(path)


def over_a_configured_size_limit(d: Path) -> Attempt:
    path = filegen.make_text(d, "big.txt", "lorem ipsum dolor sit amet\n" * 80_000)
    return _ask(path, max_file_bytes=1 * MB)


# -- PDF ----------------------------------------------------------------------------------


def random_bytes_named_pdf(d: Path) -> Attempt:
    return _ask(filegen.make_random_bytes(d, "scan.pdf", 8192))


def truncated_pdf(d: Path) -> Attempt:
    pdf = filegen.make_text_pdf(d, "paper.pdf", ["Results on page one.", "More on page two."])
    return _ask(filegen.make_truncated(pdf))


def encrypted_pdf(d: Path) -> Attempt:
    return _ask(filegen.make_encrypted_pdf(d, "locked.pdf", "Secret plan.", user_password="hunter2"))


def image_only_pdf(d: Path) -> Attempt:
    return _ask(filegen.make_image_only_pdf(d, "scanned.pdf", page_count=2))


def textless_pdf(d: Path) -> Attempt:
    return _ask(filegen.make_text_pdf(d, "blank-pages.pdf", ["", ""]))


def encrypted_pdf_with_empty_password(d: Path) -> Attempt:
    return _ask(
        filegen.make_encrypted_pdf(d, "owner-only.pdf", "Quarterly revenue rose 12 percent.",
                                   user_password="")
    )


# -- Office files -------------------------------------------------------------------------


def _docx(d: Path, name: str) -> Path:
    return filegen.make_docx(d, name, ["The minutes of the meeting.", "Action items follow."])


def _xlsx(d: Path, name: str) -> Path:
    return filegen.make_xlsx(d, name, {"Sales": [["region", "total"], ["north", 10], ["south", 12]]})


def _pptx(d: Path, name: str) -> Path:
    return filegen.make_pptx(d, name, [("Roadmap", "Ship it\nMeasure it")])


def _garbage(data: bytes) -> bytes:
    return b"<<<" + data[: len(data) // 3]


def truncated_docx(d: Path) -> Attempt:
    return _ask(filegen.make_truncated(_docx(d, "minutes.docx")))


def docx_without_its_main_part(d: Path) -> Attempt:
    return _ask(filegen.make_zip(d, "hollow.docx", {"[Content_Types].xml": "<Types/>",
                                                     "word/styles.xml": "<styles/>"}))


def docx_with_a_damaged_part(d: Path) -> Attempt:
    path = _docx(d, "damaged.docx")
    return _ask(filegen.rewrite_zip_member(path, "word/document.xml", _garbage))


def truncated_xlsx(d: Path) -> Attempt:
    return _ask(filegen.make_truncated(_xlsx(d, "budget.xlsx")))


def xlsx_without_its_workbook(d: Path) -> Attempt:
    return _ask(filegen.make_zip(d, "hollow.xlsx", {"[Content_Types].xml": "<Types/>",
                                                     "xl/worksheets/sheet1.xml": "<worksheet/>"}))


def xlsx_with_a_damaged_sheet(d: Path) -> Attempt:
    path = _xlsx(d, "damaged.xlsx")
    return _ask(filegen.rewrite_zip_member(path, "xl/worksheets/sheet1.xml", _garbage))


def truncated_pptx(d: Path) -> Attempt:
    return _ask(filegen.make_truncated(_pptx(d, "deck.pptx")))


def pptx_with_a_damaged_slide(d: Path) -> Attempt:
    path = _pptx(d, "damaged.pptx")
    return _ask(filegen.rewrite_zip_member(path, "ppt/slides/slide1.xml", _garbage))


def zip_bomb_disguised_as_docx(d: Path) -> Attempt:
    return _ask(filegen.make_zip_bomb_docx(d, "invoice.docx", inflated_bytes=200 * MB))


def legacy_word_file(d: Path) -> Attempt:
    path = d / "old-letter.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4088))
    return _ask(path)


def workbook_named_docx(d: Path) -> Attempt:
    return _ask(_xlsx(d, "actually-a-sheet.docx"))


# -- text, notebooks, tables --------------------------------------------------------------


def nul_bytes_in_text(d: Path) -> Attempt:
    path = d / "export.txt"
    path.write_bytes(b"id,name\n1,alpha\x00\x00\x00\n2,beta\x00\n" * 20)
    return _ask(path)


def unknown_binary(d: Path) -> Attempt:
    path = d / "blob.bin"
    path.write_bytes(filegen.tiny_png() + bytes(64))
    return _ask(path)


def utf16_text(d: Path) -> Attempt:
    return _ask(filegen.make_text(d, "greetings.txt", "Grüße aus Köln — 日本語のテキスト\n" * 5, "utf-16"))


def latin1_text(d: Path) -> Attempt:
    text = "Le café coûte deux euros à Besançon; déjà payé.\n" * 10
    return _ask(filegen.make_text(d, "menu.txt", text, "latin-1"))


def csv_with_mixed_encodings(d: Path) -> Attempt:
    path = d / "customers.csv"
    path.write_bytes(
        "name,city\nJürgen,Zürich\n".encode("utf-8")
        + "Müller,Düsseldorf\n".encode("latin-1")
        + "Zoë,Genève\n".encode("utf-8")
    )
    return _ask(path)


def malformed_ipynb(d: Path) -> Attempt:
    path = filegen.make_notebook(d, "analysis.ipynb", [filegen.code_cell("print(1)")])
    path.write_bytes(path.read_bytes()[:-40])
    return _ask(path)


def ipynb_that_is_not_a_notebook(d: Path) -> Attempt:
    return _ask(filegen.make_text(d, "list.ipynb", json.dumps([1, 2, 3])))


def ipynb_with_huge_outputs(d: Path) -> Attempt:
    cells = [
        filegen.markdown_cell("# Training log"),
        filegen.code_cell("for step in range(10**6): print(step)",
                          [filegen.stream_output("".join(f"step {i}\n" for i in range(200_000)))], 1),
        filegen.code_cell("model.score()", [filegen.result_output("0.93")], 2),
    ]
    return _ask(filegen.make_notebook(d, "training.ipynb", cells))


def text_over_the_token_budget(d: Path) -> Attempt:
    words = " ".join(f"w{i}" for i in range(150_000))
    return _ask(filegen.make_text(d, "transcript.txt", words), attachment_budget=2_000)


# -- names, references, objects -----------------------------------------------------------


def unknown_stored_file(d: Path) -> Attempt:
    return Attempt("Use the stored contract.", [stored_spec("contract-v9.pdf")],
                   names=("contract-v9.pdf",))


def reference_to_a_missing_stored_file(d: Path) -> Attempt:
    return Attempt("Compare @ghost-notes.md with [Attached: phantom.pdf] please.")


def something_that_is_not_a_file(d: Path) -> Attempt:
    return Attempt("Use this.", [42], names=("42",))


def several_failures_at_once(d: Path) -> Attempt:
    missing = d / "gone.pdf"
    empty = d / "nothing.txt"
    empty.write_bytes(b"")
    folder = d / "folder"
    folder.mkdir()
    return Attempt("Use all of these.", [str(missing), str(empty), str(folder)],
                   names=("gone.pdf", "nothing.txt", "folder"))


def a_good_file_with_a_bad_one(d: Path) -> Attempt:
    good = filegen.make_text(d, "fine.txt", "All good here.")
    bad = filegen.make_random_bytes(d, "broken.pdf")
    return Attempt("Use both.", [str(good), str(bad)], names=("broken.pdf",))


# -- prompts ------------------------------------------------------------------------------


def empty_prompt(d: Path) -> Attempt:
    return Attempt("   \n\t  ")


def prompt_of_one_megabyte(d: Path) -> Attempt:
    return Attempt("Explain this log:\n" + ("ERROR worker 17 timed out\n" * 42_000))


def braces_and_backticks(d: Path) -> Attempt:
    return Attempt(BRACES_PROMPT)


def control_characters_in_prompt(d: Path) -> Attempt:
    return Attempt("Why does this print nothing?\x00\x07 print('a\\x00b')\r\nThanks\x1b[0m")


def unknown_backend(d: Path) -> Attempt:
    return Attempt("Hello?", options={"backend": "gpt-local"}, names=("gpt-local",))


def wide_dataframe(d: Path) -> Attempt:
    import numpy as np
    import pandas as pd

    from nbchat.core.dataframe import summarize_dataframe

    frame = pd.DataFrame(np.arange(50_000).reshape(5, 10_000),
                         columns=[f"feature_{i}" for i in range(10_000)])
    summary = summarize_dataframe(frame, "wide")
    return Attempt("Which columns matter?", [text_spec("wide", summary, label="dataframe")])


BRACES_PROMPT = (
    "Format {name} with f'{x!r:>{width}}', then {{literal}} and {0} and %s and $HOME.\n"
    "```python\nprint(f\"{value}\")\n```\nand inline `code {here}` and ``double `tick` ``"
    " and a stray ``` fence"
)

_MISSING = ("not found", "Check the path")
_CORRUPT = ("could not be read as", "Re-export it")

ERROR_CASES: list[Case] = [
    Case("missing-path", missing_path, AttachmentsError, _MISSING),
    Case("dangling-symlink", dangling_symlink, AttachmentsError, _MISSING),
    Case("home-relative-missing", home_relative_missing, AttachmentsError, _MISSING),
    Case("directory", directory, AttachmentsError, ("is a directory", "Attach the files inside it")),
    Case("named-pipe", named_pipe, AttachmentsError, ("not a regular file", "Copy its content")),
    Case("zero-bytes", zero_bytes, AttachmentsError, ("empty", "paste the text")),
    Case("whitespace-only", whitespace_only, AttachmentsError, ("empty", "paste the text")),
    Case("no-read-permission", no_read_permission, AttachmentsError,
         ("permission denied", "Make it readable")),
    Case("over-default-size-limit", over_the_default_size_limit, AttachmentsError,
         ("51 MB", "over the limit of 50 MB", "max_file_bytes")),
    Case("over-configured-size-limit", over_a_configured_size_limit, AttachmentsError,
         ("over the limit of 1 MB", "max_file_bytes")),
    Case("random-bytes-named-pdf", random_bytes_named_pdf, AttachmentsError, _CORRUPT),
    Case("truncated-pdf", truncated_pdf, AttachmentsError, _CORRUPT),
    Case("encrypted-pdf", encrypted_pdf, AttachmentsError,
         ("password-protected", "Save a copy without a password")),
    Case("image-only-pdf", image_only_pdf, AttachmentsError, ("no extractable text", "OCR")),
    Case("textless-pdf", textless_pdf, AttachmentsError, ("no extractable text", "OCR")),
    Case("truncated-docx", truncated_docx, AttachmentsError, _CORRUPT),
    Case("docx-without-main-part", docx_without_its_main_part, AttachmentsError,
         ("word/document.xml is missing", "Re-export it")),
    Case("docx-damaged-part", docx_with_a_damaged_part, AttachmentsError, _CORRUPT),
    Case("truncated-xlsx", truncated_xlsx, AttachmentsError, _CORRUPT),
    Case("xlsx-without-workbook", xlsx_without_its_workbook, AttachmentsError,
         ("xl/workbook.xml is missing", "Re-export it")),
    Case("xlsx-damaged-sheet", xlsx_with_a_damaged_sheet, AttachmentsError, _CORRUPT),
    Case("truncated-pptx", truncated_pptx, AttachmentsError, _CORRUPT),
    Case("pptx-damaged-slide", pptx_with_a_damaged_slide, AttachmentsError, _CORRUPT),
    Case("zip-bomb-as-docx", zip_bomb_disguised_as_docx, AttachmentsError, ("zip bomb",)),
    Case("legacy-doc", legacy_word_file, AttachmentsError, ("unsupported format", "save it as DOCX")),
    Case("unknown-binary", unknown_binary, AttachmentsError, ("unsupported format", "PNG image")),
    Case("nul-bytes-in-text", nul_bytes_in_text, AttachmentsError,
         ("binary data although .txt promises text", "Check that it is the file you meant")),
    Case("malformed-ipynb", malformed_ipynb, AttachmentsError, _CORRUPT),
    Case("ipynb-not-a-notebook", ipynb_that_is_not_a_notebook, AttachmentsError, _CORRUPT),
    Case("unknown-stored-file", unknown_stored_file, AttachmentsError,
         ("not in the file store", "%chat store PATH")),
    Case("not-a-file-object", something_that_is_not_a_file, AttachmentError,
         ("not something nbchat can attach", "Pass a file path")),
    Case("several-failures", several_failures_at_once, AttachmentsError,
         ("3 attachments could not be used", "nothing was sent and nothing was stored")),
    Case("good-file-with-bad-file", a_good_file_with_a_bad_one, AttachmentsError,
         ("1 attachment could not be used", "Re-export it")),
    Case("empty-prompt", empty_prompt, NbChatError, ("prompt is empty", "write your question")),
    Case("prompt-of-1-mb", prompt_of_one_megabyte, BudgetError,
         ("context window", "Shorten it")),
    Case("unknown-backend", unknown_backend, ConfigError, ("Unknown backend", "use one of")),
]

TEXT_CASES: list[Case] = [
    Case("encrypted-pdf-empty-password", encrypted_pdf_with_empty_password,
         sent=("Quarterly revenue rose 12 percent.",)),
    Case("workbook-named-docx", workbook_named_docx, sent=("region", "north", "12")),
    Case("utf-16-text", utf16_text, sent=("Grüße aus Köln — 日本語のテキスト",)),
    Case("latin-1-text", latin1_text, sent=("Le café coûte deux euros à Besançon; déjà payé.",)),
    Case("csv-mixed-encodings", csv_with_mixed_encodings,
         sent=("Jürgen", "Zürich", "Müller", "Düsseldorf", "Zoë", "Genève")),
    Case("ipynb-huge-outputs", ipynb_with_huge_outputs,
         # Over the budget: the head, the passages the question needs (a generic
         # question needs none) and the end (the last cell), never the runaway output's end.
         sent=("# Training log", "[cell 2]", "model.score()", "0.93", "ask about other parts"),
         not_sent=("step 199999",)),
    Case("text-over-token-budget", text_over_the_token_budget,
         sent=("included (~", "ask about other parts", "w0 w1 w2")),
    Case("reference-to-missing-stored-file", reference_to_a_missing_stored_file,
         sent=("[ghost-notes.md: file not found in the store]",
               "[phantom.pdf: file not found in the store]")),
    Case("braces-and-backticks", braces_and_backticks, sent=(BRACES_PROMPT,)),
    Case("control-characters", control_characters_in_prompt, sent=("\x00\x07", "\x1b[0m")),
    Case("dataframe-10000-columns", wide_dataframe,
         sent=("5 rows × 10,000 columns", "feature_0", "feature_39"), not_sent=("feature_9999",)),
]

CASES: list[Case] = ERROR_CASES + TEXT_CASES


# -- a file root cannot read ------------------------------------------------------------------

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2
_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


@contextlib.contextmanager
def unreadable_to_this_thread() -> Iterator[None]:
    """Make mode-000 files unreadable to this thread even when it runs as root.

    Root reads any file through two capabilities; they are dropped from this thread's
    effective set (they stay permitted) and raised again afterwards. Capabilities are
    per thread on Linux, so the servers' threads are not affected. A non-root user
    needs nothing: mode 000 is enough.
    """
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(_CAPABILITY_VERSION_3, threading.get_native_id())
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    saved = data[0].effective
    data[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    try:
        yield
    finally:
        data[0].effective = saved
        libc.capset(ctypes.byref(header), data)
