"""Read the metadata header of a GGUF model file.

Only the key/value header is parsed, never the tensors. The engine needs one key,
``tokenizer.chat_template``: a model without it must be started with llama.cpp's
built-in ``gemma`` template and Jinja off (see :mod:`nbchat.engine.server`).

The header is: magic ``GGUF``, a uint32 version, the tensor count and the key/value
count (uint64 from version 2, uint32 in version 1), then each key as a length-prefixed
string, a uint32 value type and the value. Arrays carry an element type and a count.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection
from pathlib import Path
from typing import Any

__all__ = ["GGUFError", "read_gguf_metadata", "gguf_chat_template"]

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"

# value type id -> struct format of one scalar (None: string, "array": array)
_SCALAR_FORMATS = {
    0: "B",  # uint8
    1: "b",  # int8
    2: "H",  # uint16
    3: "h",  # int16
    4: "I",  # uint32
    5: "i",  # int32
    6: "f",  # float32
    7: "?",  # bool
    10: "Q",  # uint64
    11: "q",  # int64
    12: "d",  # float64
}
_STRING = 8
_ARRAY = 9


class GGUFError(ValueError):
    """The file is not a GGUF model, or its header is cut short."""


class _Cursor:
    """Walks a memory-mapped header; ``skip`` jumps over values nobody asked for."""

    def __init__(self, data: mmap.mmap, endian: str, count_format: str) -> None:
        self.data = data
        self.endian = endian
        self.count_format = count_format
        self.offset = 0

    def unpack(self, fmt: str) -> Any:
        full = self.endian + fmt
        size = struct.calcsize(full)
        if self.offset + size > len(self.data):
            raise GGUFError("the GGUF header ends early; the file is truncated")
        (value,) = struct.unpack_from(full, self.data, self.offset)
        self.offset += size
        return value

    def count(self) -> int:
        return int(self.unpack(self.count_format))

    def string(self) -> str:
        length = self.count()
        end = self.offset + length
        if end > len(self.data):
            raise GGUFError("the GGUF header ends early; the file is truncated")
        text = bytes(self.data[self.offset : end]).decode("utf-8", errors="replace")
        self.offset = end
        return text

    def skip_string(self) -> None:
        length = self.count()  # advances past the length first
        self.offset += length

    def value(self, value_type: int) -> Any:
        if value_type == _STRING:
            return self.string()
        if value_type == _ARRAY:
            element_type = self.unpack("I")
            return [self.value(element_type) for _ in range(self.count())]
        fmt = _SCALAR_FORMATS.get(value_type)
        if fmt is None:
            raise GGUFError(f"unknown GGUF value type {value_type}")
        return self.unpack(fmt)

    def skip(self, value_type: int) -> None:
        if value_type == _STRING:
            self.skip_string()
        elif value_type == _ARRAY:
            element_type = self.unpack("I")
            length = self.count()
            fmt = _SCALAR_FORMATS.get(element_type)
            if fmt is not None:
                self.offset += length * struct.calcsize(self.endian + fmt)
                if self.offset > len(self.data):
                    raise GGUFError("the GGUF header ends early; the file is truncated")
            else:
                for _ in range(length):
                    self.skip(element_type)
        else:
            fmt = _SCALAR_FORMATS.get(value_type)
            if fmt is None:
                raise GGUFError(f"unknown GGUF value type {value_type}")
            self.offset += struct.calcsize(self.endian + fmt)


def read_gguf_metadata(path: str | Path, keys: Collection[str] | None = None) -> dict[str, Any]:
    """The header's key/values (only ``keys`` when given; the rest are skipped fast).

    Raises :class:`GGUFError` for a file that is not GGUF, and ``OSError`` when it
    cannot be read.
    """
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise GGUFError(f"{path} is not a GGUF model file (no GGUF magic)")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            # A big-endian file reads as a huge little-endian version number.
            (version,) = struct.unpack_from("<I", data, 4)
            endian = "<"
            if version >= 0x10000:
                endian = ">"
                (version,) = struct.unpack_from(">I", data, 4)
            cursor = _Cursor(data, endian, "I" if version == 1 else "Q")
            cursor.offset = 8
            cursor.count()  # tensor count
            kv_count = cursor.count()
            found: dict[str, Any] = {}
            wanted = set(keys) if keys is not None else None
            for _ in range(kv_count):
                key = cursor.string()
                value_type = cursor.unpack("I")
                if wanted is None or key in wanted:
                    found[key] = cursor.value(value_type)
                    if wanted is not None and len(found) == len(wanted):
                        break
                else:
                    cursor.skip(value_type)
            return found


def gguf_chat_template(path: str | Path) -> str | None:
    """The model's own chat template, or None when the GGUF carries none."""
    template = read_gguf_metadata(path, [CHAT_TEMPLATE_KEY]).get(CHAT_TEMPLATE_KEY)
    return template if isinstance(template, str) and template.strip() else None
