"""Recall query latency at 1k, 10k and 100k stored vectors (synthetic, 640-d).

Builds a real nbchat database per size (messages of random words, so the FTS5 index is
real too, and one random 640-d float32 vector per message), then times, as the median of
several runs:

- ``load_ms``: the first load of the vectors into the numpy matrix (once per kernel);
- ``vector_ms``: cosine top-k alone;
- ``words_ms``: FTS5 BM25 alone (no vectors: what recall does without embeddings);
- ``hybrid_ms``: words + vectors fused by reciprocal rank (what the planner runs);
- ``filtered_ms``: hybrid with a time window and one session left out;
- ``refresh_ms``: a query right after 10 new vectors were stored (incremental load).

Embedding the query itself (one HTTP call to the embeddings server) is not included.

    python bench/bench_recall.py [--sizes 1000,10000,100000] [--runs 15]

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DIM = 640
MODEL = "bench-model"
MESSAGES_PER_SESSION = 40


def build_database(path: Path, count: int, rng: random.Random) -> None:
    """``count`` messages with vectors, spread over sessions and the last 60 days."""
    import numpy as np

    from nbchat.core.sqlite_store import SqliteStore as Store
    from nbchat.core.sqlite_search import vector_to_blob

    vocabulary = [f"w{i}" for i in range(3000)] + ["heron", "launch", "code", "vault"]
    vectors = np.random.default_rng(rng.randrange(1 << 30)).standard_normal(
        (count, DIM), dtype=np.float32
    )
    now = time.time()
    with Store(path) as store, store.transaction() as db:
        session_count = max(1, count // MESSAGES_PER_SESSION)
        sessions = [f"s{i:06d}" for i in range(session_count)]
        db.executemany(
            "INSERT INTO sessions (id, title, created, updated) VALUES (?, ?, ?, ?)",
            [(s, f"session {s}", now, now) for s in sessions],
        )
        messages = []
        for i in range(count):
            words = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(15, 45)))
            created = now - rng.uniform(0, 60 * 86400)
            role = "user" if i % 2 == 0 else "assistant"
            session = sessions[i // MESSAGES_PER_SESSION % session_count]
            messages.append(
                (i + 1, session, i % MESSAGES_PER_SESSION, role, words, words, created)
            )
        db.executemany(
            "INSERT INTO messages (id, session_id, seq, role, content, rendered, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            messages,
        )
        db.executemany(
            "INSERT INTO embeddings (message_id, model, chunk, dim, vector, created) "
            "VALUES (?, ?, 0, ?, ?, ?)",
            ((i + 1, MODEL, DIM, vector_to_blob(vectors[i]), now) for i in range(count)),
        )


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm caches (SQLite pages, numpy)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def bench_size(count: int, runs: int, workdir: Path, rng: random.Random) -> dict[str, float]:
    import numpy as np

    from nbchat.core.sqlite_store import SqliteStore as Store
    from nbchat.core.sqlite_search import vector_to_blob
    from nbchat.core.sqlite_search import VectorIndex, search_messages
    from nbchat.core.store import SearchFilter

    path = workdir / f"recall-{count}.sqlite"
    started = time.perf_counter()
    build_database(path, count, rng)
    build_s = time.perf_counter() - started
    query = "what was the heron launch code"
    query_vector = np.random.default_rng(7).standard_normal(DIM).astype(np.float32)
    with Store(path) as store:
        connection, lock = store.connection, store.lock
        index = VectorIndex(MODEL)
        started = time.perf_counter()
        index.refresh(connection, lock)
        load_ms = (time.perf_counter() - started) * 1000
        now = time.time()
        window = SearchFilter(
            since=now - 30 * 86400, until=now, exclude_session_id="s000000"
        )
        result = {
            "vectors": count,
            "build_s": round(build_s, 2),
            "load_ms": load_ms,
            "vector_ms": median_ms(lambda: index.nearest(query_vector, 40), runs),
            "words_ms": median_ms(
                lambda: search_messages(connection, query, limit=10, lock=lock), runs
            ),
            "hybrid_ms": median_ms(
                lambda: search_messages(
                    connection, query, limit=10, index=index, query_vector=query_vector,
                    lock=lock,
                ),
                runs,
            ),
            "filtered_ms": median_ms(
                lambda: search_messages(
                    connection, query, limit=10, index=index, query_vector=query_vector,
                    search_filter=window, lock=lock,
                ),
                runs,
            ),
        }
        next_id = [count + 1]

        def add_and_query() -> None:
            with store.transaction() as db:
                for _ in range(10):
                    db.execute(
                        "INSERT INTO embeddings (message_id, model, chunk, dim, vector, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (1, MODEL, next_id[0], DIM, vector_to_blob(query_vector), now),
                    )
                    next_id[0] += 1
            search_messages(
                connection, query, limit=10, index=index, query_vector=query_vector, lock=lock
            )

        result["refresh_ms"] = median_ms(add_and_query, max(3, runs // 3))
        assert index.count >= count
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rng = random.Random(1234)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nbchat-bench-recall-") as tmp:
        for size in sizes:
            rows.append(bench_size(size, args.runs, Path(tmp), rng))
    columns = ["vectors", "load_ms", "vector_ms", "words_ms", "hybrid_ms", "filtered_ms",
               "refresh_ms", "build_s"]
    print(f"recall latency, {DIM}-d float32 vectors, median of {args.runs} runs")
    print("  ".join(f"{c:>11}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]:>11,}" for c in columns))
    print(json.dumps({"bench": "recall", "dim": DIM, "runs": args.runs, "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
