"""``%chat share SESSION ROLE``: read-only sharing of a session on the team store."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from IPython.core.error import UsageError

from sse_server import answer


def test_sharing_lets_the_group_read_the_session_and_only_on_the_team_store(
    shell: Any, server: Any, capsys: Any, database: Any, request: Any
) -> None:
    shell.run_line_magic("chat", "new Plans")
    server.add(answer("Noted."))
    shell.run_cell_magic("chat", "", "The merger closes on Friday.")
    if not isinstance(database, str):
        with pytest.raises(UsageError, match="team store"):
            shell.run_line_magic("chat", "share Plans team")
        return
    with pytest.raises(UsageError, match="no role 'nobody'"):
        shell.run_line_magic("chat", "share Plans nobody")
    capsys.readouterr()
    shell.run_line_magic("chat", "share Plans team")
    assert "readable by the members of team" in capsys.readouterr().out
    bob = database.replace("postgresql://alice@", "postgresql://bob@")
    with psycopg.connect(bob, autocommit=True) as db:
        rows = db.execute(
            "SELECT m.content FROM nbchat.messages m JOIN nbchat.sessions s "
            "ON s.id = m.session_id WHERE s.title = 'Plans' ORDER BY m.seq"
        ).fetchall()
        assert rows == [("The merger closes on Friday.",), ("Noted.",)]
        assert db.execute("UPDATE nbchat.messages SET content = 'x'").rowcount == 0
