"""Every message nbchat shows when a file cannot be attached, in one place.

Each function returns an :class:`~nbchat.core.errors.AttachmentError` whose ``problem``
says what is wrong in plain words and whose ``fix`` says what to do. No message carries
a traceback or the name of an exception class.
"""

from __future__ import annotations

from nbchat.core.errors import AttachmentError

from .catalog import FORMATS

__all__ = [
    "FORMAT_LABELS",
    "SUPPORTED_SUMMARY",
    "format_mb",
    "empty",
    "corrupted",
    "unsupported",
    "password_protected",
    "needs_package",
    "no_pdf_text",
    "too_inflated",
    "suspicious_ratio",
    "not_found",
    "is_directory",
    "not_regular_file",
    "permission_denied",
    "unreadable",
    "too_large",
]

#: How each kind is called in messages.
FORMAT_LABELS = {f.kind: f.label for f in FORMATS}

SUPPORTED_SUMMARY = (
    "PDF, DOCX, XLSX, PPTX, CSV, TSV, JSON, HTML, Markdown, plain text, "
    "source code and Jupyter notebooks (.ipynb)"
)

_CLOUD_HINT = (
    "If it lives in a synced folder (OneDrive, Dropbox, iCloud Drive, Google Drive), "
    "an online-only placeholder is not on this disk: download it (make it available "
    "offline) first."
)

_TEXT_ALTERNATIVES = "attach a text PDF or a DOCX instead, or paste the text into the prompt"


def format_mb(size_bytes: int) -> str:
    """``52428800`` -> ``"50 MB"``; small sizes keep two decimals, never ``"0 MB"``."""
    megabytes = size_bytes / (1024 * 1024)
    if size_bytes and megabytes < 0.01:
        return "<0.01 MB"
    text = f"{megabytes:.2f}" if megabytes < 10 else f"{megabytes:.1f}"
    text = text.rstrip("0").rstrip(".")
    return f"{text} MB"


def empty(name: str) -> AttachmentError:
    return AttachmentError(
        name,
        "empty: no text found.",
        "Check that this is the file you meant, or paste the text into the prompt.",
    )


def corrupted(name: str, kind: str, detail: str = "", fix: str = "") -> AttachmentError:
    """The file claims to be ``kind`` but cannot be parsed as one."""
    label = FORMAT_LABELS.get(kind, kind)
    article = "an" if label[:1] in "AEFHILMNORSX" else "a"
    problem = (
        f"could not be read as {article} {label} file: the file looks damaged "
        f"or is not really {article} {label} file"
    )
    problem += f" ({detail})." if detail else "."
    return AttachmentError(
        name,
        problem,
        fix
        or "Re-export it from the program that made it, or open it and save it "
        "again, then attach the new copy.",
    )


def unsupported(name: str, what: str = "") -> AttachmentError:
    """A binary file of a kind nbchat does not read (``what`` says what it looks like)."""
    seems = f" (it looks like {what})" if what else ""
    return AttachmentError(
        name,
        f"unsupported format{seems}: nbchat reads {SUPPORTED_SUMMARY}.",
        "Convert it to one of these (for example export it as PDF, DOCX or CSV), "
        "or paste the text into the prompt.",
    )


def password_protected(name: str, kind: str = "pdf") -> AttachmentError:
    label = FORMAT_LABELS.get(kind, kind)
    return AttachmentError(
        name,
        f"password-protected: this {label} file is encrypted and cannot be opened "
        "without its password.",
        f"Save a copy without a password, or {_TEXT_ALTERNATIVES}.",
    )


def needs_package(name: str, package: str, why: str) -> AttachmentError:
    return AttachmentError(
        name,
        f"cannot be opened here: {why}.",
        f"Install it (pip install {package}) and attach the file again, "
        f"or {_TEXT_ALTERNATIVES}.",
    )


def no_pdf_text(name: str, page_count: int) -> AttachmentError:
    where = (
        "its only page has no text layer"
        if page_count == 1
        else f"none of its {page_count} pages has a text layer"
    )
    return AttachmentError(
        name,
        f"no extractable text (scanned or image-only): {where}.",
        f"Run OCR on it to get a text PDF, or {_TEXT_ALTERNATIVES}.",
    )


def too_inflated(name: str, inflated_bytes: int, limit_bytes: int) -> AttachmentError:
    return AttachmentError(
        name,
        f"expands to {format_mb(inflated_bytes)} when unpacked, over the limit of "
        f"{format_mb(limit_bytes)} for Office files (a guard against zip bombs).",
        "If the file is genuine, attach a smaller part of it (for example one sheet "
        "exported as CSV), or raise the limit with c.NbChat.max_inflated_bytes.",
    )


def suspicious_ratio(
    name: str, member: str, packed_bytes: int, inflated_bytes: int
) -> AttachmentError:
    ratio = inflated_bytes // max(packed_bytes, 1)
    return AttachmentError(
        name,
        f"its part {member} expands from {format_mb(packed_bytes)} to "
        f"{format_mb(inflated_bytes)} (about {ratio:,} times), which only zip bombs "
        "do; it was not opened.",
        "If the file is genuine, open it and save it again, or export the part you "
        "need (for example as PDF or CSV).",
    )


def not_found(name: str, cwd: str, icloud_stub: bool = False) -> AttachmentError:
    if icloud_stub:
        return AttachmentError(
            name,
            "is in iCloud Drive but not downloaded to this computer (only a placeholder "
            "is on disk).",
            "Download it in Finder (Download Now) and attach it again.",
        )
    return AttachmentError(
        name,
        "not found.",
        f"Check the path (a relative path starts at {cwd}). {_CLOUD_HINT}",
    )


def is_directory(name: str) -> AttachmentError:
    return AttachmentError(
        name,
        "is a directory, not a file.",
        "Attach the files inside it instead, for example with a glob such as "
        f"'{name.rstrip('/')}/*.pdf'.",
    )


def not_regular_file(name: str) -> AttachmentError:
    return AttachmentError(
        name,
        "is not a regular file (it is a pipe, socket or device).",
        "Copy its content into a file and attach that file.",
    )


def permission_denied(name: str) -> AttachmentError:
    return AttachmentError(
        name,
        "permission denied: the user running Jupyter may not read it.",
        "Make it readable (or copy it somewhere readable) and attach it again. "
        + _CLOUD_HINT,
    )


def unreadable(name: str, reason: str) -> AttachmentError:
    return AttachmentError(
        name,
        f"could not be read from disk ({reason}).",
        "Check that the disk or network share is available. " + _CLOUD_HINT,
    )


def too_large(name: str, size_bytes: int, limit_bytes: int) -> AttachmentError:
    return AttachmentError(
        name,
        f"is {format_mb(size_bytes)}, over the limit of {format_mb(limit_bytes)} "
        "per attached file.",
        "Attach a smaller file or an excerpt, or raise the limit with "
        "c.NbChat.max_file_bytes (for example %config NbChat.max_file_bytes = "
        f"{max(limit_bytes * 2, size_bytes + 1):_}).",
    )
