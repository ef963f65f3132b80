"""``%chat engine start | stop | status | models``: the local llama-server, and pointing at it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from nbchat.notebook.parsing import make_parser, no_arguments

if TYPE_CHECKING:
    from nbchat.client import ChatClient

__all__ = ["engine"]

USAGE = (
    "Usage: %chat engine start [--model NAME|GGUF] [--embeddings] [--ctx N] "
    "| stop | status | models"
)


def engine(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    action = argv[0] if argv else "status"
    if action == "start":
        _start(shell, argv[1:])
    elif action == "stop":
        no_arguments("engine stop", argv[1:])
        _stop(shell)
    elif action == "status":
        no_arguments("engine status", argv[1:])
        _status()
    elif action == "models":
        from nbchat.engine.model import format_models

        no_arguments("engine models", argv[1:])
        print(format_models())
    else:
        raise UsageError(USAGE)


def _start(shell: Any, argv: list[str]) -> None:
    from nbchat.engine import start_engine
    from nbchat.notebook.state import config_for

    parser = make_parser("%chat engine start")
    parser.add_argument("--model", metavar="NAME|GGUF")
    parser.add_argument("--embeddings", action="store_true")
    parser.add_argument("--ctx", type=int, metavar="N")
    args = parser.parse_args(argv)
    config = config_for(shell)
    extra: dict[str, Any] = {}
    ctx = args.ctx or config.context_window
    if ctx:
        extra["ctx_tokens"] = ctx
    print(
        "Starting the local engine (the first start prepares the model; "
        "this can take a while)…",
        flush=True,
    )
    handle = start_engine(args.model, quiet=False, **extra)
    config.backend = "llama"
    config.base_url = handle.url
    print(f"Chat engine ready at {handle.url}: %%chat now uses it (NbChat.base_url).")
    if args.embeddings:
        embedder = start_engine(args.model, embeddings=True, quiet=False, **extra)
        config.embedding_url = embedder.url
        print(f"Embeddings engine ready at {embedder.url} (NbChat.embedding_url).")


def _stop(shell: Any) -> None:
    from nbchat.engine import engine_url, stop_engine
    from nbchat.notebook.state import config_for

    config = config_for(shell)
    url = engine_url("chat")
    if stop_engine("chat"):
        print(f"Stopped the chat engine at {url}.")
        if url and config.base_url == url:
            config.base_url = None
    else:
        print("No local chat engine is running.")
    # The embeddings engine is stopped too when it is the one nbchat uses.
    embeddings = engine_url("embeddings")
    if embeddings and config.embedding_url == embeddings and stop_engine("embeddings"):
        print(f"Stopped the embeddings engine at {embeddings}.")
        config.embedding_url = None


def _status() -> None:
    from nbchat.engine import engine_status

    for kind in ("chat", "embeddings"):
        found = engine_status(kind)
        if not found.get("running"):
            print(f"{kind:<10}  not running")
            continue
        health = "healthy" if found.get("healthy") else "not healthy yet"
        model = os.path.basename(str(found.get("model", "")))
        print(f"{kind:<10}  {health} at {found.get('url')} (pid {found.get('pid')}, {model})")
