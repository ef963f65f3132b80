"""Refusing Office files (zip archives) that would unpack to something huge.

DOCX, XLSX and PPTX are zip archives. A small, crafted one can declare parts that
inflate to gigabytes and exhaust memory while a parser reads them. Python's zipfile
never inflates a member past its declared size, so checking the declared sizes before
any parser runs bounds the memory used.
"""

from __future__ import annotations

import io
import zipfile

from . import problems

__all__ = ["check_zip", "MAX_RATIO", "RATIO_CHECK_BYTES"]

#: A member inflating more than this many times its packed size looks crafted...
MAX_RATIO = 200
#: ...when it is also bigger than this once unpacked (small XML parts compress well).
RATIO_CHECK_BYTES = 10 * 1024 * 1024


def check_zip(data: bytes, name: str, kind: str, *, max_inflated_bytes: int) -> None:
    """Raise an :class:`AttachmentError` unless ``data`` is a zip that is safe to unpack."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise problems.corrupted(name, kind, "it is not a complete zip archive") from error
    total_bytes = sum(member.file_size for member in members)
    if total_bytes > max_inflated_bytes:
        raise problems.too_inflated(name, total_bytes, max_inflated_bytes)
    for member in members:
        if (
            member.file_size > RATIO_CHECK_BYTES
            and member.file_size > MAX_RATIO * max(member.compress_size, 1)
        ):
            raise problems.suspicious_ratio(
                name, member.filename, member.compress_size, member.file_size
            )
