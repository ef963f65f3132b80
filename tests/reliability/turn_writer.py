"""A separate process that writes chat turns into a database through the public API.

Run as a script by the concurrency and crash tests::

    python turn_writer.py --db PATH --url URL --turns 200 --title A [--ready-dir D --peers 2]
    python turn_writer.py --db PATH --url URL --turns 0 --files DIR    (until killed)
    python turn_writer.py ... --pause-in answer --marker FILE         (stops mid-write)

Each turn is one ``nbchat.chat`` call; with ``--files`` every turn attaches a new file
of its own. One JSON line per turn goes to stdout (``{"turn": i, "status": ...}``), and
any error to stdout as ``{"turn": i, "error": message}``; the process carries on.

``--pause-in question|answer`` makes the writer stop inside the transaction that stores
the question (after its attachment records) or the answer: it creates ``--marker`` and
sleeps, so the test can kill it at exactly that point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _pause_inside_transactions(where: str, marker: Path, database: str) -> None:
    """Patch the store so the chosen transaction stops half-way, with its rows written."""
    if database.startswith("postgresql://"):
        from nbchat.core.postgres_store import PostgresStore as Store
    else:
        from nbchat.core.sqlite_store import SqliteStore as Store  # type: ignore[assignment]

    if where == "question":
        real = Store.record_attachment

        def record_then_wait(self, db, **kwargs):  # type: ignore[no-untyped-def]
            real(self, db, **kwargs)
            marker.write_text(str(os.getpid()))
            time.sleep(120)

        Store.record_attachment = record_then_wait  # type: ignore[method-assign]
    else:
        real_add = Store.add_message

        def add_then_wait(self, db, **kwargs):  # type: ignore[no-untyped-def]
            message = real_add(self, db, **kwargs)
            if kwargs.get("role") == "assistant":
                marker.write_text(str(os.getpid()))
                time.sleep(120)
            return message

        Store.add_message = add_then_wait  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--turns", type=int, default=0, help="0: until killed")
    parser.add_argument("--title", default="writer")
    parser.add_argument("--ready-dir", help="start once --peers writers are ready here")
    parser.add_argument("--peers", type=int, default=1)
    parser.add_argument("--files", help="attach a new file of this directory to every turn")
    parser.add_argument("--pause-in", choices=("question", "answer"))
    parser.add_argument("--marker")
    args = parser.parse_args()

    os.environ["NBCHAT_DB"] = args.db
    import nbchat

    if args.pause_in:
        _pause_inside_transactions(args.pause_in, Path(args.marker), args.db)
    folder = Path(args.files) if args.files else None
    # Warm the imports up, then start together with the other writer.
    from nbchat.api import default_client

    default_client().store  # noqa: B018 - opens (and migrates) the database
    if args.ready_dir:
        ready = Path(args.ready_dir)
        (ready / args.title).touch()
        deadline = time.monotonic() + 60
        while len(list(ready.iterdir())) < args.peers:
            if time.monotonic() > deadline:
                print(json.dumps({"turn": -1, "error": "the other writers never got ready"}))
                return 1
            time.sleep(0.005)
    turn = 0
    while args.turns == 0 or turn < args.turns:
        files = []
        if folder is not None:
            path = folder / f"{args.title}-{os.getpid()}-{turn}.txt"
            path.write_text(f"Notes of turn {turn} by {args.title} ({os.getpid()}).\n", encoding="utf-8")
            files.append(str(path))
        prompt = f"{args.title} turn {turn}: what is {turn} + {turn}?"
        try:
            result = nbchat.chat(prompt, files, session=args.title, base_url=args.url)
            line = {"turn": turn, "status": result.status, "session": result.session_id}
        except Exception as error:  # noqa: BLE001 - the test reads every failure
            line = {"turn": turn, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(line), flush=True)
        turn += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
