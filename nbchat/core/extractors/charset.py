"""Decoding bytes whose text encoding nobody told us.

The order matters:

1. a byte-order mark decides (UTF-8, UTF-16, UTF-32);
2. NUL bytes in the first 8 KB without such a mark mean binary, not text;
3. bytes that are valid UTF-8 are UTF-8 (other encodings almost never produce valid
   UTF-8 by chance once a non-ASCII byte occurs);
4. bytes that read as Western European text in Windows-1252 (the most common legacy
   encoding; its printable characters include all of Latin-1's) are Windows-1252.
   charset-normalizer cannot tell this case on short texts: ``café`` decodes equally
   cleanly as cp1250, cp1251 or cp1006 and no language is recognised, and its mess
   measure penalises ordinary French (``café été``). The check is strict enough that
   Cyrillic, Greek, Hebrew, Arabic and most Central European texts fail it;
5. otherwise charset-normalizer decides (never UTF-16/32 without a byte-order mark).
   The known blind spot: Turkish or Baltic text whose letters all exist in
   Windows-1252 decodes as Windows-1252.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass

__all__ = ["Decoded", "decode_text", "has_bom", "looks_binary"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SNIFF_BYTES = 8192
_SNIFF_CHARS = 64 * 1024
_IN_WORD_MARKS = "\u2019\u2018\u00b7\u00ad\u2013"  # don’t, l·l, soft hyphen, en dash
_NO_BOM_UNICODE = ("utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be")


@dataclass(frozen=True)
class Decoded:
    """Decoded text, the encoding used, and how many bytes had to be replaced."""

    text: str
    encoding: str
    replaced_count: int = 0


def has_bom(data: bytes) -> bool:
    """True when ``data`` starts with a Unicode byte-order mark."""
    return any(data.startswith(bom) for bom, _ in _BOMS)


def looks_binary(data: bytes) -> bool:
    """NUL bytes near the start, and no UTF-16/32 byte-order mark to explain them."""
    return b"\x00" in data[:_SNIFF_BYTES] and not has_bom(data)


def _decode_with(data: bytes, encoding: str) -> Decoded:
    text = data.decode(encoding, errors="replace")
    replaced = 0
    if "\ufffd" in text:
        # Count only replacements we introduced, not U+FFFD already in the file.
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            replaced = text.count("\ufffd")
    return Decoded(normalise_newlines(text), encoding, replaced)


def normalise_newlines(text: str) -> str:
    """Windows and old Mac line ends become ``\\n``."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _looks_western(text: str) -> bool:
    """Whether ``text`` (bytes decoded as Windows-1252) reads like Western European text.

    Other single-byte encodings decoded as Windows-1252 give away themselves: Cyrillic,
    Greek, Hebrew or Arabic become words made only of accented letters, and Central
    European letters such as ``ż`` or ``ł`` become symbols inside words (``mo¿e``).
    """
    letters = accented = run = 0
    previous = ""
    for index, char in enumerate(text):
        if char < "\x80":
            run = 0
            letters += char.isalpha()
        elif unicodedata.category(char).startswith("L"):
            letters += 1
            accented += 1
            run += 1
            if run >= 3:
                return False
        else:
            run = 0
            following = text[index + 1 : index + 2]
            if previous.isalpha() and following.isalpha() and char not in _IN_WORD_MARKS:
                return False
            if unicodedata.category(char) == "Cc":
                return False
        previous = char
    return letters > 0 and accented <= 0.8 * letters


def _guess_encoding(data: bytes) -> str | None:
    try:
        if _looks_western(data.decode("cp1252")[:_SNIFF_CHARS]):
            return "cp1252"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    for match in from_bytes(data):  # cleanest first
        if match.encoding not in _NO_BOM_UNICODE:
            return str(match.encoding)
    return None


def _control_share(text: str) -> float:
    """Share of characters that are control codes other than ordinary whitespace."""
    sample = text[:_SNIFF_BYTES]
    if not sample:
        return 0.0
    controls = sum(
        1
        for char in sample
        if char not in "\t\n\r\f\v\x1b" and unicodedata.category(char) == "Cc"
    )
    return controls / len(sample)


def decode_text(data: bytes, *, strict: bool = False) -> Decoded | None:
    """Decode ``data`` as text, or return ``None`` when it does not look like text.

    With ``strict`` (used for files whose extension does not promise text), text full
    of control characters, or that no encoding decodes cleanly, counts as binary.
    Without it, a file that promises text is decoded anyway, with replacement
    characters counted in :attr:`Decoded.replaced_count`.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode_with(data, encoding)
    if looks_binary(data):
        return None
    try:
        decoded: Decoded | None = Decoded(normalise_newlines(data.decode("utf-8")), "utf-8")
    except UnicodeDecodeError:
        decoded = _decode_mixed(data)
        if decoded is None:
            guessed = _guess_encoding(data)
            if guessed is not None:
                decoded = _decode_with(data, guessed)
            elif not strict:
                decoded = _decode_with(data, "utf-8")
    if decoded is not None and strict and _control_share(decoded.text) > 0.05:
        return None
    return decoded


def _decode_mixed(data: bytes) -> Decoded | None:
    """Text whose lines mix UTF-8 with one legacy encoding (a CSV pasted from two
    sources): UTF-8 lines stay UTF-8, the others are decoded with an encoding guessed
    from them alone. Applies only when most lines, some non-ASCII, are valid UTF-8."""
    lines = data.splitlines(keepends=True)
    valid = [_is_utf8(line) for line in lines]
    if sum(not ok for ok in valid) * 2 > len(lines):
        return None
    if not any(ok and not line.isascii() for ok, line in zip(valid, lines)):
        return None
    legacy = _guess_encoding(b"".join(l for ok, l in zip(valid, lines) if not ok)) or "cp1252"
    text = "".join(
        line.decode("utf-8") if ok else line.decode(legacy, errors="replace")
        for ok, line in zip(valid, lines)
    )
    return Decoded(normalise_newlines(text), f"utf-8+{legacy}")


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
