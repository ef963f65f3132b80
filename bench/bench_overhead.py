"""Overhead per turn: nbchat's own time, with a server that answers instantly.

A grid of sessions of 10, 100 and 1,000 turns with 0, 5 and 20 earlier files (with
files, one of them a 2 MB PDF). For each cell: a fresh database; a first real turn
attaches the files (their first extraction, timed apart); the rest of the history is
written straight into the store (``Store.add_message`` inside one transaction, like
stored turns); then ``--runs`` real turns are timed per cell, each one followed by a bare
httpx request of the same messages to the same server. The cells of one session length
take their timed turns in rotation, so the machine's noise falls on every file count
alike.

A timed turn is what a ``%%chat`` cell does around the model: ``client.prepare``
(session, history, earlier files, token counts, memory planner), ``client.run``
(health check, store the question, stream, store the answer) and the rendering
bookkeeping (an :class:`~nbchat.notebook.render.AnswerView` in live mode publishing to a
null display publisher, and the footer). The server is the scripted OpenAI-compatible
server of the tests (``tests/sse_server.py``), a llama-server look-alike whose context
window is large enough that nothing is compacted: every turn carries the whole history.

nbchat's overhead for a turn = its turn time − the bare request's time (same body, same
server, same keep-alive client). Target: p50 < 5 ms at 1,000 turns / 20 files, and flat
in the number of earlier files.

    python bench/bench_overhead.py [--turns 10,100,1000] [--files 0,5,20] [--runs 20]
    python bench/bench_overhead.py --profile    # cProfile of the largest cell's turns
    python bench/bench_overhead.py --store postgres   # the team store (a pgserver server)

With ``--store postgres`` each cell gets a new PostgreSQL database (the nbchat tables
made by ``nbchat db init``), reached as a user role over a Unix socket, on a server from
the pgserver wheel that the benchmark starts and removes.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import emit, load_test_helper, percentile, print_table, prose, scratch_dir

TARGET_P50_MS = 5.0
PDF_BYTES = 2 * 1024 * 1024
WINDOW_TOKENS = 50_000_000
ANSWER_WORDS = 60


@dataclass(frozen=True)
class Cell:
    turns: int
    files: int
    first_turn_ms: float
    seed_s: float
    turn_ms: list[float]
    bare_ms: list[float]
    prepare_ms: list[float]
    body_bytes: int

    @property
    def overhead_ms(self) -> list[float]:
        return [t - b for t, b in zip(self.turn_ms, self.bare_ms)]

    def summary(self) -> dict[str, Any]:
        overhead = self.overhead_ms
        return {
            "turns": self.turns,
            "files": self.files,
            "overhead_p50_ms": percentile(overhead, 50),
            "overhead_p95_ms": percentile(overhead, 95),
            "turn_p50_ms": percentile(self.turn_ms, 50),
            "turn_p95_ms": percentile(self.turn_ms, 95),
            "bare_p50_ms": percentile(self.bare_ms, 50),
            "prepare_p50_ms": percentile(self.prepare_ms, 50),
            "first_turn_ms": self.first_turn_ms,
            "seed_s": self.seed_s,
            "request_body_bytes": self.body_bytes,
            "runs": len(self.turn_ms),
        }


# -- files ------------------------------------------------------------------------------------


def make_pdf(folder: Path, size_bytes: int = PDF_BYTES) -> Path:
    """A report-like PDF of ``size_bytes`` or a little more: 100 pages of text and a photo."""
    from PIL import Image

    text_bytes = len(_report_pdf(None))
    photo = None
    missing = max(0, size_bytes - text_bytes)
    if missing:
        side = max(16, int((missing / 3) ** 0.5) + 8)  # random RGB does not compress
        noise = random.Random(5).randbytes(side * side * 3)
        buffer = io.BytesIO()
        Image.frombytes("RGB", (side, side), noise).save(buffer, format="PNG")
        photo = buffer.getvalue()
    path = folder / "annual_report.pdf"
    path.write_bytes(_report_pdf(photo))
    return path


def _report_pdf(photo: bytes | None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_compression(False)
    pdf.set_font("Helvetica", size=10)
    for page in range(100):
        pdf.add_page()
        pdf.multi_cell(0, 5, prose(1000 + page, 40, topic=f"section {page + 1}"))
    if photo is not None:
        pdf.add_page()
        pdf.image(io.BytesIO(photo), w=150)
    return bytes(pdf.output())


def make_files(folder: Path, count: int, pdf: Path | None) -> list[Path]:
    """``count`` files: the PDF, then small text, Markdown, CSV, DOCX and Python files."""
    if count == 0:
        return []
    filegen = load_test_helper("filegen")
    files = [pdf] if pdf is not None else []
    for index in range(count - len(files)):
        kind = index % 5
        name = f"file_{index:02d}"
        text = prose(index, 25, topic=f"note {index}")
        if kind == 0:
            files.append(filegen.make_text(folder, f"{name}.txt", text))
        elif kind == 1:
            files.append(filegen.make_text(folder, f"{name}.md", f"# Notes {index}\n\n{text}"))
        elif kind == 2:
            rows = [["site", "item", "value"]] + [
                [f"site {r % 7}", r, round(r * 1.7, 2)] for r in range(60)
            ]
            files.append(filegen.make_csv(folder, f"{name}.csv", rows))
        elif kind == 3:
            files.append(filegen.make_docx(folder, f"{name}.docx", paragraphs=text.split("\n\n")))
        else:
            code = "\n".join(f"def step_{i}(x):\n    return x * {i} + {index}\n" for i in range(40))
            files.append(filegen.make_text(folder, f"{name}.py", code))
    return files[:count]


# -- a turn ---------------------------------------------------------------------------------


class _NullPublisher:
    """Accepts displays like Jupyter's publisher would and drops them."""

    def __init__(self) -> None:
        self.calls = 0

    def publish(self, data: Any, metadata: Any = None, **kwargs: Any) -> None:
        self.calls += 1


class _NullShell:
    def __init__(self) -> None:
        self.display_pub = _NullPublisher()


def timed_turn(
    client: Any, question: str, files: list[str], shell: Any
) -> tuple[float, float, Any]:
    """One turn as the magic runs it: (turn ms, prepare ms, prepared turn)."""
    from nbchat.core.events import TextDelta
    from nbchat.core.turn import TurnResult
    from nbchat.notebook.footer import footer_text
    from nbchat.notebook.render import LIVE, AnswerView

    started = time.perf_counter()
    prepared = client.prepare(question, files)
    prepared_at = time.perf_counter()
    view = AnswerView(shell, prepared.settings.stream_update_interval, mode=LIVE)
    view.start()
    result = None
    for event in client.run(prepared):
        if isinstance(event, TextDelta):
            view.add(event.text)
        elif isinstance(event, TurnResult):
            result = event
    view.finish()
    assert result is not None and result.status == "complete", result
    view.footer(footer_text(result, prepared.settings.model))
    ended = time.perf_counter()
    return (ended - started) * 1000, (prepared_at - started) * 1000, prepared


def bare_request(http: Any, url: str, messages: list[dict[str, str]], max_tokens: int) -> float:
    """The same chat request with plain httpx: ms until the stream's last line."""
    body = {
        "messages": messages, "stream": True, "stream_options": {"include_usage": True},
        "max_tokens": max_tokens, "cache_prompt": True,
    }
    started = time.perf_counter()
    with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                json.loads(line[6:])
    return (time.perf_counter() - started) * 1000


def seed_history(store: Any, session_id: str, turns: int, rng: random.Random) -> None:
    """``turns`` stored question/answer pairs, as earlier turns would have left them."""
    from nbchat.core.tokens import estimate_tokens

    with store.transaction() as db:
        for index in range(turns):
            question = f"Follow-up {index}: " + prose(rng.randrange(10**6), 2)
            answer = prose(rng.randrange(10**6), 6)
            store.add_message(db, session_id=session_id, role="user", content=question,
                              rendered=question, tokens=estimate_tokens(question))
            store.add_message(db, session_id=session_id, role="assistant", content=answer,
                              rendered=answer, tokens=estimate_tokens(answer),
                              usage={"prompt_tokens": 10, "completion_tokens": 90},
                              timings={"prompt_n": 12, "cache_n": 1000, "predicted_n": 90})


class CellRun:
    """One cell of the grid: its own scripted server, database, client and session.

    Opening it runs the first turn (the files' first extraction) and seeds the history;
    :meth:`turn` then times one more turn and the bare request that follows it.
    """

    def __init__(self, turns: int, files: list[Path], folder: Path, cluster: Any = None) -> None:
        import httpx

        from nbchat.api import ChatClient
        from nbchat.core.settings import Settings

        sse = load_test_helper("sse_server")
        words = prose(7, 3).split()[:ANSWER_WORDS]
        self.turns = turns
        self.files = len(files)
        self.server = sse.ScriptedServer(
            default=sse.answer(" ".join(words), piece_chars=8), n_ctx=WINDOW_TOKENS
        ).start()
        self.http = httpx.Client(timeout=60)
        db_path: Path | str = folder / f"overhead-{turns}-{len(files)}.sqlite"
        if cluster is not None:
            from pg_cluster import TEMPLATE

            db_path = cluster.url("alice", cluster.create_database(template=TEMPLATE))
        self.settings = Settings(
            backend="llama", base_url=self.server.url, db_path=db_path, max_tokens=256
        )
        self.client = ChatClient(self.settings)
        self.shell = _NullShell()
        self.turn_ms: list[float] = []
        self.bare_ms: list[float] = []
        self.prepare_ms: list[float] = []
        self.body_bytes = 0
        self.first_turn_ms, _, _ = timed_turn(
            self.client, "Here are the files for this project; read them.",
            [str(p) for p in files], self.shell,
        )
        session = self.client.current_session()
        assert session is not None
        started = time.perf_counter()
        seed_history(self.client.store, session.id, max(0, turns - 1), random.Random(turns))
        self.seed_s = time.perf_counter() - started

    def turn(self, index: int, *, record: bool, profile: Any = None) -> None:
        question = f"Question {index}: what changed for item {index * 7 + 3}?"
        if profile is not None:
            profile.enable()
        total, preparing, prepared = timed_turn(self.client, question, [], self.shell)
        if profile is not None:
            profile.disable()
        bare = bare_request(self.http, self.server.url, prepared.messages, self.settings.max_tokens)
        self.server.requests.clear()  # keep the recorder's memory flat
        if record:
            self.turn_ms.append(total)
            self.prepare_ms.append(preparing)
            self.bare_ms.append(bare)
            self.body_bytes = len(json.dumps(prepared.messages).encode())

    def close(self) -> Cell:
        self.client.close()
        self.http.close()
        self.server.stop()
        return Cell(self.turns, self.files, self.first_turn_ms, self.seed_s, self.turn_ms,
                    self.bare_ms, self.prepare_ms, self.body_bytes)


def run_row(
    turns: int, file_sets: list[list[Path]], runs: int, warmup: int, folder: Path,
    profile: Any = None, cluster: Any = None,
) -> list[Cell]:
    """The cells of one session length, their timed turns interleaved so that the
    machine's noise falls on every file count alike. ``profile`` covers the last cell."""
    cells = [CellRun(turns, files, folder, cluster) for files in file_sets]
    try:
        for index in range(warmup + runs):
            for position, cell in enumerate(cells):
                last = position == len(cells) - 1
                cell.turn(index, record=index >= warmup,
                          profile=profile if last and index >= warmup else None)
    finally:
        done = [cell.close() for cell in cells]
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", default="10,100,1000", help="session lengths, comma-separated")
    parser.add_argument("--files", default="0,5,20", help="earlier file counts, comma-separated")
    parser.add_argument("--runs", type=int, default=20, help="timed turns per cell")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pdf-bytes", type=int, default=PDF_BYTES)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--profile", action="store_true",
                        help="profile the timed turns of the largest cell and print the top")
    args = parser.parse_args(argv)
    turn_counts = [int(x) for x in args.turns.split(",") if x]
    file_counts = [int(x) for x in args.files.split(",") if x]

    folder = scratch_dir("overhead")
    pdf = make_pdf(folder, args.pdf_bytes) if any(file_counts) else None
    all_files = make_files(folder, max(file_counts), pdf)
    cells: list[Cell] = []
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
    cluster = None
    if args.store == "postgres":
        load_test_helper("pg_cluster")
        from pg_cluster import start_cluster

        cluster = start_cluster(folder)
    try:
        for turns in turn_counts:
            file_sets = [all_files[:count] for count in file_counts]
            largest_row = turns == max(turn_counts)
            cells += run_row(turns, file_sets, args.runs, args.warmup, folder,
                             profile if largest_row else None, cluster)
    finally:
        if cluster is not None:
            cluster.stop()

    summaries = [cell.summary() for cell in cells]
    print_table(
        f"nbchat overhead per turn on {args.store}, ms (turn − bare request of the same "
        f"body; {args.runs} turns per cell)",
        ["turns", "files", "p50", "p95", "turn p50", "bare p50", "prepare p50", "body KB",
         "1st turn ms"],
        [[s["turns"], s["files"], s["overhead_p50_ms"], s["overhead_p95_ms"], s["turn_p50_ms"],
          s["bare_p50_ms"], s["prepare_p50_ms"], s["request_body_bytes"] / 1024,
          s["first_turn_ms"]] for s in summaries],
    )
    largest = max(summaries, key=lambda s: (s["turns"], s["files"]))
    flatness = {}
    for turns in turn_counts:
        row = {s["files"]: s["overhead_p50_ms"] for s in summaries if s["turns"] == turns}
        if len(row) > 1:
            flatness[str(turns)] = max(row.values()) - min(row.values())
    met = largest["overhead_p50_ms"] < TARGET_P50_MS
    print(f"target: p50 < {TARGET_P50_MS} ms at {largest['turns']} turns / {largest['files']} "
          f"files: {largest['overhead_p50_ms']:.2f} ms ({'met' if met else 'MISSED'})")
    print("spread of p50 over file counts, per session length (ms): "
          + ", ".join(f"{k} turns: {v:.2f}" for k, v in flatness.items()))
    print()
    if profile is not None:
        import pstats

        stream = io.StringIO()
        pstats.Stats(profile, stream=stream).sort_stats("cumulative").print_stats(30)
        print("profile of the largest cell's timed turns (cumulative):")
        print(stream.getvalue())
    emit(
        "overhead",
        {
            "runs": args.runs,
            "store": args.store,
            "target_p50_ms": TARGET_P50_MS,
            "largest": {"turns": largest["turns"], "files": largest["files"],
                        "overhead_p50_ms": largest["overhead_p50_ms"]},
            "met": met,
            "spread_over_files_ms": flatness,
            "cells": summaries,
            "pdf_bytes": pdf.stat().st_size if pdf is not None else 0,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
