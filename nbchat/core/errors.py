"""The errors nbchat shows to people.

Every error nbchat raises on purpose derives from one base, so a front end can show
its message as it is (no traceback) and let anything else keep its traceback::

    NbChatError                  show the message to the user
    ├── ConfigError              a setting is missing or wrong (no API key, bad backend)
    ├── AttachmentError          one attachment cannot be used
    │   └── AttachmentsError     every failing attachment of one prompt, together
    ├── BudgetError              the prompt cannot fit the context window at all
    ├── BackendError             the model server refused or failed (has a ``kind``)
    │   └── BackendUnreachable   nothing answers at the server's address
    └── StoreError               the database cannot be opened or written

A message names the thing and what to do about it. Messages never carry an API key:
:func:`redact` is applied to texts that may echo one back from a server.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "NbChatError",
    "ConfigError",
    "AttachmentError",
    "AttachmentsError",
    "BudgetError",
    "BackendError",
    "BackendUnreachable",
    "StoreError",
    "redact",
]


class NbChatError(Exception):
    """Base of every error meant for the user: its message is the whole story."""


class ConfigError(NbChatError):
    """A setting is missing or has a value nbchat cannot use."""


class AttachmentError(NbChatError):
    """One attachment cannot be used.

    ``name`` is what the user called it (a path or a stored file's name); ``problem`` is
    the short reason and ``fix`` what to do. ``str(error)`` joins them.
    """

    def __init__(self, name: str, problem: str, fix: str = "") -> None:
        self.name = name
        self.problem = problem
        self.fix = fix
        text = f"{name}: {problem}"
        if fix:
            text += f" {fix}"
        super().__init__(text)


class AttachmentsError(AttachmentError):
    """Every attachment of one prompt that failed; nothing was sent or stored."""

    def __init__(self, failures: Sequence[AttachmentError]) -> None:
        self.failures = list(failures)
        count = len(self.failures)
        head = (
            "1 attachment could not be used"
            if count == 1
            else f"{count} attachments could not be used"
        )
        lines = [f"{head}; nothing was sent and nothing was stored:"]
        lines += [f"  - {failure}" for failure in self.failures]
        NbChatError.__init__(self, "\n".join(lines))
        self.name = ", ".join(f.name for f in self.failures)
        self.problem = head
        self.fix = ""


class BudgetError(NbChatError):
    """The prompt cannot fit the model's context window even after compaction."""


class BackendError(NbChatError):
    """The model server refused the request or failed while answering.

    ``kind`` is one of: ``credits``, ``context``, ``rate_limit``, ``auth``, ``model``,
    ``upstream``, ``timeout``, ``unreachable``, ``loading``, ``truncated``,
    ``interrupted``, ``generic``. ``retry_after`` is in seconds when the server said.
    """

    def __init__(
        self,
        message: str,
        kind: str = "generic",
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class BackendUnreachable(BackendError):
    """Nothing answers at the server's address (not running, wrong URL, timed out)."""

    def __init__(self, message: str, kind: str = "unreachable") -> None:
        super().__init__(message, kind)


class StoreError(NbChatError):
    """The conversation database cannot be opened, migrated or written."""


_KEY_PATTERNS = [
    re.compile(r"sk-or-v1-[A-Za-z0-9_\-]+"),
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.]{8,}"),
]


def redact(text: str, *secrets: str | None) -> str:
    """Return ``text`` with the given secrets and anything shaped like an API key masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(
            lambda m: (m.group(1) if m.re.groups else "") + "[redacted]", text
        )
    return text
