"""Attachments made from the notebook's variables: ``--df`` and ``--var`` (and the panel).

Both the ``%%chat`` options and the chat panel's DataFrame picker come here, so a
DataFrame is summarized, labelled and fingerprinted the same way wherever it is attached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nbchat.core.attachments import AttachmentSpec, text_spec
from nbchat.core.errors import AttachmentError, redact

if TYPE_CHECKING:
    from nbchat.core.settings import Settings

__all__ = [
    "DATAFRAME_LABEL",
    "VARIABLE_LABEL",
    "dataframe_spec",
    "variable_specs",
    "undefined",
]

DATAFRAME_LABEL = "dataframe"
VARIABLE_LABEL = "variable"
CHARS_PER_TOKEN = 4  # a variable's repr is cut to about the attachment budget


def dataframe_spec(frame: Any, name: str, mark: str | None = None) -> AttachmentSpec:
    """A DataFrame's summary as an attachment; ``mark`` is its fingerprint when known."""
    from nbchat.core.dataframe import fingerprint, summarize_dataframe

    return text_spec(
        name,
        summarize_dataframe(frame, name),
        label=DATAFRAME_LABEL,
        fingerprint=mark if mark is not None else fingerprint(frame),
    )


def variable_specs(
    namespace: Mapping[str, Any],
    dataframes: Iterable[str],
    variables: Iterable[str],
    settings: "Settings",
) -> tuple[list[AttachmentSpec], list[AttachmentError]]:
    """Specs for ``--df`` and ``--var`` names; every missing or wrong name is a failure."""
    from nbchat.core.dataframe import is_dataframe, summarize_variable

    specs: list[AttachmentSpec] = []
    failures: list[AttachmentError] = []
    for name in dataframes:
        if name not in namespace:
            failures.append(undefined(name))
        elif not is_dataframe(namespace[name]):
            kind = type(namespace[name]).__name__
            failures.append(
                AttachmentError(
                    name,
                    f"is a {kind}, not a pandas or polars DataFrame.",
                    f"Attach it with --var {name}.",
                )
            )
        else:
            specs.append(dataframe_spec(namespace[name], name))
    for name in variables:
        if name not in namespace:
            failures.append(undefined(name))
        else:
            max_chars = max(1_000, settings.attachment_budget * CHARS_PER_TOKEN)
            text = summarize_variable(namespace[name], name, max_chars=max_chars)
            specs.append(text_spec(name, redact(text, *settings.secrets), label=VARIABLE_LABEL))
    return specs, failures


def undefined(name: str) -> AttachmentError:
    return AttachmentError(
        name,
        "is not defined in this notebook.",
        "Run the cell that creates it first, or check the spelling.",
    )
