"""Recall quality per embedding model: recall@3 and the cosine floor, on a labelled set.

The set, ``tests/files/recall_pairs.json``, holds past messages and queries a notebook
user might ask, each labelled with the messages related to it (every other message is
unrelated; some share words with the query on purpose). For each model the script
embeds every message and query through a real llama.cpp embeddings server (mean
pooling, as ``%chat engine start --embeddings`` runs it) and prints:

- the cosine between a query and its related messages, its unrelated ones, and the
  distractors among those: min / quartiles / max;
- ``recall@3``: for each query with related messages, the share of them (at most 3)
  among the 3 messages nearest by cosine, averaged over those queries;
- ``floor``: the cosine just above every unrelated pair's (rounded up to 0.01), and the
  share of related pairs at or above it. Recall admits a message found by meaning
  alone only at or above the floor (see ``nbchat/memory/floors.py``, whose table this
  script's last lines are meant for).

    python bench/bench_recall_floor.py                        # nbchat's default model
    python bench/bench_recall_floor.py --model a.gguf --model b.gguf
    python bench/bench_recall_floor.py --url http://127.0.0.1:8081   # a running server

Prints a table, the floor table's lines, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import REPO, emit, percentile, print_table  # noqa: E402

PAIRS = REPO / "tests" / "files" / "recall_pairs.json"
TOP_K = 3


def load_pairs(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    ids = {m["id"] for m in data["messages"]}
    for query in data["queries"]:
        unknown = set(query["related"]) | set(query["distractors"])
        if not unknown <= ids:
            raise SystemExit(f"{path}: unknown message ids {sorted(unknown - ids)}")
    return data


@contextmanager
def embeddings_server(model: str | None, url: str | None) -> Iterator[str]:
    """``url`` when given, else a fresh embeddings engine on ``model`` (default model)."""
    if url:
        yield url
        return
    from nbchat.engine import start_engine

    with tempfile.TemporaryDirectory(prefix="nbchat-bench-floor-") as logs:
        handle = start_engine(
            model, embeddings=True, reuse=False, log_path=Path(logs) / "engine.log"
        )
        try:
            yield handle.url
        finally:
            handle.stop()


def embed_all(url: str, texts: Sequence[str]) -> tuple[str, Any]:
    """The served model's name and one unit-length row per text."""
    import numpy as np

    from nbchat.memory.embed import EmbeddingClient

    client = EmbeddingClient(url, request_timeout_s=600.0)  # shared machines are slow
    try:
        rows: list[list[float]] = []
        for start in range(0, len(texts), 16):
            rows.extend(client.embed(list(texts[start : start + 16])))
        name = client.model_name()
    finally:
        client.close()
    matrix = np.asarray(rows, dtype=np.float64)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return name, matrix


def spread(values: Sequence[float]) -> list[float]:
    """min, first quartile, median, third quartile, max."""
    return [percentile(values, q) for q in (0, 25, 50, 75, 100)]


def measure(data: dict[str, Any], url: str) -> dict[str, Any]:
    messages = data["messages"]
    queries = data["queries"]
    name, matrix = embed_all(url, [m["text"] for m in messages] + [q["query"] for q in queries])
    message_vectors, query_vectors = matrix[: len(messages)], matrix[len(messages) :]
    cosines = query_vectors @ message_vectors.T
    ids = [m["id"] for m in messages]
    related: list[float] = []
    unrelated: list[float] = []
    distractors: list[float] = []
    recalls: list[float] = []
    for row, query in zip(cosines, queries):
        wanted = set(query["related"])
        for message_id, cosine in zip(ids, row):
            if message_id in wanted:
                related.append(float(cosine))
            else:
                unrelated.append(float(cosine))
                if message_id in query["distractors"]:
                    distractors.append(float(cosine))
        if wanted:
            top = {ids[i] for i in row.argsort()[::-1][:TOP_K]}
            recalls.append(len(top & wanted) / min(TOP_K, len(wanted)))
    floor = math.ceil(max(unrelated) * 100 + 1e-9) / 100
    return {
        "model": name,
        "dim": int(matrix.shape[1]),
        "recall_at_3": sum(recalls) / len(recalls),
        "related": spread(related),
        "unrelated": spread(unrelated),
        "distractors": spread(distractors),
        "floor": floor,
        "related_above_floor": sum(c >= floor for c in related) / len(related),
        "overlap": min(related) <= max(unrelated),
        "pairs": {"related": len(related), "unrelated": len(unrelated)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=[],
                        help="a GGUF file (repeatable; default: nbchat's default model)")
    parser.add_argument("--url", help="a running embeddings server instead of --model")
    parser.add_argument("--pairs", type=Path, default=PAIRS, help="the labelled set")
    args = parser.parse_args(argv)

    data = load_pairs(args.pairs)
    targets: list[tuple[str | None, str | None]] = (
        [(None, args.url)] if args.url else [(m, None) for m in args.model or [None]]
    )
    results = []
    for model, url in targets:
        with embeddings_server(model, url) as served:
            results.append(measure(data, served))

    rows = []
    for result in results:
        for kind in ("related", "unrelated", "distractors"):
            rows.append([result["model"], kind, *result[kind]])
    print_table(
        f"Cosine of (query, message) pairs, {args.pairs.name}: "
        f"{len(data['queries'])} queries x {len(data['messages'])} messages",
        ["model", "pairs", "min", "q1", "median", "q3", "max"],
        rows,
    )
    print_table(
        "Recall by meaning alone",
        ["model", "dim", "recall@3", "floor", "related >= floor", "overlap"],
        [[r["model"], r["dim"], r["recall_at_3"], r["floor"], r["related_above_floor"],
          "yes" if r["overlap"] else "no"] for r in results],
    )
    print("For nbchat/memory/floors.py:")
    for result in results:
        print(f'    "{result["model"].lower()}": {result["floor"]:.2f},')
    print()
    emit("recall_floor", {"pairs": args.pairs.name, "models": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
