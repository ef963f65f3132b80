"""Preparing a later turn whose earlier files were sent in part: nbchat's own time.

Turn 1 attaches ``--files`` generated documents of ``--chars`` characters each
(``tests/needles.py``) in an 8,192-token window, so each one is sent as its head and
passages; the later turns ask about facts inside them, and their passages are brought
in. Timed: ``client.prepare`` of a later turn (the session read, the passages of every
earlier file chosen for the question, the prompt laid out; nothing sent), with estimated
token counts and the scripted server of the tests, so no model or tokenizer is in the
way. Two cases:

- **kept**: one client (one kernel) prepares every later turn, as a notebook does;
- **new client**: a new client prepares each one, as after a kernel restart (the
  extractions are still in the process's memory; the store is opened again).

Every turn's work before its request counts against the time to first token (goal:
nbchat ≤ 1.05 × a bare request, docs/performance.md).

    python bench/bench_passage_prepare.py [--chars 250000] [--files 2] [--runs 20]
                                          [--new-client-runs 5]
"""

from __future__ import annotations

import argparse
import time

from common import emit, load_test_helper, percentile, print_table, scratch_dir

WINDOW_TOKENS = 8192


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=250_000, help="characters per file")
    parser.add_argument("--files", type=int, default=2, help="large files attached on turn 1")
    parser.add_argument("--runs", type=int, default=20, help="timed prepares, same client")
    parser.add_argument("--new-client-runs", type=int, default=5,
                        help="timed prepares, each by a new client")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    from nbchat.client import ChatClient
    from nbchat.core.chunks import chunk_text
    from nbchat.core.settings import Settings

    sse_server = load_test_helper("sse_server")
    needles = load_test_helper("needles")
    folder = scratch_dir("passage-prepare")
    documents = [needles.needle_document(args.chars, seed=17 + n) for n in range(args.files)]
    paths = []
    for number, document in enumerate(documents, start=1):
        path = folder / f"report{number}.txt"
        path.write_text(document.text, encoding="utf-8")
        paths.append(path)
    questions = [fact.question for fact in needles.FACTS[1:]]

    with sse_server.ScriptedServer(default=sse_server.answer("A short answer.")) as server:
        settings = Settings(backend="llama", base_url=server.url, db_path=folder / "chat.sqlite",
                            context_window=WINDOW_TOKENS, max_tokens=512)
        client = ChatClient(settings)
        list(client.run(client.prepare(needles.FACTS[0].question, paths, exact_tokens=False)))
        session = client.session_id

        def prepare(by: ChatClient, number: int) -> tuple[float, int]:
            started = time.perf_counter()
            prepared = by.prepare(questions[number % len(questions)], session=session,
                                  exact_tokens=False)
            elapsed_ms = (time.perf_counter() - started) * 1000
            return elapsed_ms, len(prepared.report.brought_in)

        for number in range(args.warmup):
            prepare(client, number)
        kept = [prepare(client, number) for number in range(args.runs)]
        client.close()
        new_client = []
        for number in range(args.new_client_runs):
            fresh = ChatClient(settings)
            new_client.append(prepare(fresh, number))
            fresh.close()

    kept_ms = [ms for ms, _ in kept]
    new_ms = [ms for ms, _ in new_client]
    chunks = [len(chunk_text(d.text)) for d in documents]
    print_table(
        f"client.prepare of a later turn: {args.files} earlier files of "
        f"{args.chars:,} characters ({', '.join(map(str, chunks))} chunks), sent in part",
        ["client", "runs", "p50 ms", "p95 ms", "files brought in (mean)"],
        [["kept (one kernel)", len(kept_ms), percentile(kept_ms, 50), percentile(kept_ms, 95),
          sum(b for _, b in kept) / max(1, len(kept))],
         ["new client each time", len(new_ms), percentile(new_ms, 50), percentile(new_ms, 95),
          sum(b for _, b in new_client) / max(1, len(new_client))]],
    )
    emit("passage_prepare", {
        "chars": args.chars, "files": args.files, "chunks": chunks, "window": WINDOW_TOKENS,
        "runs": len(kept_ms), "kept_p50_ms": round(percentile(kept_ms, 50), 2),
        "kept_p95_ms": round(percentile(kept_ms, 95), 2),
        "new_client_runs": len(new_ms), "new_client_p50_ms": round(percentile(new_ms, 50), 2),
        "brought_in_turns": sum(1 for _, b in kept if b),
    })


if __name__ == "__main__":
    main()
