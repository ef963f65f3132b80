"""Reading a magic's line, and showing nbchat's errors as a message alone.

``UsageError`` is IPython's "the user got something wrong": the cell fails and shows
the message without a traceback. Every subcommand parses with these helpers.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from nbchat.core.errors import NbChatError, redact

__all__ = ["split_line", "user_errors", "make_parser", "no_arguments"]


@contextmanager
def user_errors(*secrets: str | None) -> Iterator[None]:
    """Show nbchat's errors as a message alone (``UsageError``): no traceback."""
    try:
        yield
    except NbChatError as error:
        raise UsageError(redact(str(error), *secrets)) from None


def split_line(line: str) -> list[str]:
    """Split a magic's line like a shell would (quotes group, backslashes kept on Windows)."""
    try:
        if os.name == "nt":
            parts = shlex.split(line, posix=False)
            return [p[1:-1] if len(p) > 1 and p[0] == p[-1] and p[0] in "\"'" else p for p in parts]
        return shlex.split(line)
    except ValueError as error:
        raise UsageError(f"Cannot read the options {line!r}: {error} (check the quotes).") from None


def make_parser(prog: str) -> MagicArgumentParser:
    """A subcommand's parser: bad flags become ``UsageError``."""
    parser: MagicArgumentParser = MagicArgumentParser(  # type: ignore[no-untyped-call]
        prog=prog, add_help=False
    )
    return parser


def no_arguments(name: str, argv: list[str]) -> None:
    if argv:
        raise UsageError(f"%chat {name} takes no arguments (got {' '.join(argv)!r}).")
