"""``%chat code``: an answer's code block into the notebook's next cell.

The answer is the current session's last one, whether the magic or the chat panel
asked for it (they share one client). The code goes in with IPython's
``set_next_input``: in JupyterLab and Notebook 7 a new cell appears below the running
one; in terminal IPython the next prompt is pre-filled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbchat.core.codeblocks import extract_code_blocks, select_code
from nbchat.core.errors import NbChatError

if TYPE_CHECKING:
    from nbchat.client import ChatClient

__all__ = ["last_answer", "insert_code"]


def last_answer(client: "ChatClient") -> str:
    """The text of the current session's last answer that has any."""
    session = client.current_session()
    if session is not None:
        for message in reversed(client.store.messages(session.id)):
            if message.role == "assistant" and message.content.strip():
                return message.content
    raise NbChatError(
        "There is no answer in this notebook's session yet: ask something with %%chat "
        "(or in the chat panel) first."
    )


def insert_code(
    shell: Any, client: "ChatClient", number: int | None = None, *, join_all: bool = False
) -> str:
    """Put the chosen code of the last answer into the next cell; say what was put."""
    if join_all and number is not None:
        raise NbChatError("Give a block number or --all, not both.")
    answer = last_answer(client)
    code = select_code(answer, number, join_all=join_all)
    shell.set_next_input(code, replace=False)
    count = len(extract_code_blocks(answer))
    if count == 1:
        return "The code block of the last answer is in a new cell below."
    if join_all:
        return f"The {count} code blocks of the last answer are in a new cell below."
    which = number if number is not None else count
    return f"Code block {which} of {count} of the last answer is in a new cell below."
