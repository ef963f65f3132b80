"""Helpers of the notebook tests: a recording display publisher and database counts."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from IPython.core.displaypub import DisplayPublisher
from sse_server import ScriptedServer


@dataclass(frozen=True)
class Published:
    """One call of the display publisher, as a front end would receive it."""

    data: dict[str, Any]
    display_id: str | None
    update: bool
    at_s: float


class RecordingPublisher(DisplayPublisher):
    """A display publisher that keeps every publish (displays and updates) in order."""

    def __init__(self) -> None:
        super().__init__(shell=None)
        self.records: list[Published] = []

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):  # type: ignore[no-untyped-def, override]
        self.records.append(
            Published(dict(data), (transient or {}).get("display_id"), bool(update), time.monotonic())
        )

    def clear_output(self, wait=False):  # type: ignore[no-untyped-def]
        pass

    # -- views the tests read -------------------------------------------------------

    def displays(self) -> list[Published]:
        return [r for r in self.records if not r.update]

    def updates(self) -> list[Published]:
        return [r for r in self.records if r.update]

    def footers(self) -> list[Published]:
        return [r for r in self.records if "text/html" in r.data]

    def answer_text(self) -> str:
        answer = [r for r in self.records if "text/markdown" in r.data]
        return answer[-1].data["text/plain"] if answer else ""

    def final_states(self) -> list[dict[str, Any]]:
        """What each display shows at the end (after its updates), in display order."""
        states: dict[str | None, dict[str, Any]] = {}
        order: list[str | None] = []
        for index, record in enumerate(self.records):
            key = record.display_id if record.display_id is not None else f"#{index}"
            if key not in states:
                order.append(key)
            states[key] = record.data
        return [states[key] for key in order]

    def footer_text(self) -> str:
        footers = self.footers()
        return footers[-1].data["text/plain"] if footers else ""


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table of the nbchat database at ``path`` (read with its own connection)."""
    with sqlite3.connect(path) as db:
        tables = [
            r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


def last_user_content(server: ScriptedServer) -> str:
    return server.chat_requests[-1].json["messages"][-1]["content"]
