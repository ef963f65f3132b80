"""A failing cell as the text attached to "explain this error"."""

from __future__ import annotations

from nbchat.core.failure import CellFailure, failure_text, strip_ansi

COLOURED = "\x1b[31mValueError\x1b[39m Traceback\n\x1b[38;5;28;01mdef\x1b[39;00m f():\x1b]8;;file:///x.py\x1b\\link\x1b]8;;\x1b\\"


def test_terminal_colours_and_links_are_removed():
    assert strip_ansi(COLOURED) == "ValueError Traceback\ndef f():link"


def test_the_text_has_the_exception_the_plain_traceback_and_the_cell_with_keys_masked():
    failure = CellFailure(
        5, "ValueError", "bad key sk-or-v1-abcdef0123456789", COLOURED, "key = 'my-own-secret'\nf()"
    )
    text = failure_text(failure, secrets=("my-own-secret",))
    assert text.startswith("Exception: ValueError: bad key [redacted]")
    assert "Traceback:\nValueError Traceback\ndef f():link" in text
    assert text.endswith("In [5]:\nkey = '[redacted]'\nf()")
    assert "\x1b" not in text and "abcdef0123456789" not in text


def test_an_error_from_before_nbchat_was_loaded_says_its_cell_is_unknown():
    failure = CellFailure(None, "KeyError", "'x'", "", "")
    assert failure.name == "last error" and failure.summary == "KeyError: 'x'"
    assert "source is not known" in failure_text(failure)
