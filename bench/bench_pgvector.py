"""Vector recall on the team store: pgvector HNSW against exact search, at N vectors.

Synthetic, clustered data of the default embedding model's size (640): ``N / 1000``
cluster centres drawn from a standard normal, each vector a centre plus normal noise of
0.5 per dimension, normalised (so neighbours are many and close, as in real text
embeddings). Queries are fresh points drawn the same way. For each size it builds the
table with COPY, then the HNSW index (cosine, m=16, ef_construction=64, as
``nbchat db init`` makes it; ``maintenance_work_mem`` as printed), and reports:

- ``build_s``: index build time;
- ``hnsw_p50_ms`` / ``hnsw_p95_ms``: top-10 query latency through the index
  (``hnsw.ef_search`` = 400, as the store uses), over a Unix socket;
- ``recall_at_10``: overlap of those 10 with the exact top 10 (numpy brute force);
- ``numpy_p50_ms``: the SQLite store's way, a brute-force cosine over an in-memory
  float32 matrix (the matrix already loaded).

    python bench/bench_pgvector.py [--sizes 100000,1000000] [--queries 50]

Starts its own PostgreSQL from the pgserver wheel in a temporary folder (removed at the
end). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

DIM = 640
MAINTENANCE_WORK_MEM = "1GB"  # --maintenance-work-mem; the graph should fit in it
EF_SEARCH = 400


def clustered(count: int, centres: "object", rng: "object") -> "object":
    """``count`` normalised float32 points around the centres, made 50k at a time (the
    float64 intermediates of a million at once would take 10 GB)."""
    import numpy as np

    points = np.empty((count, DIM), dtype=np.float32)
    for start in range(0, count, 50_000):
        n = min(50_000, count - start)
        picks = rng.integers(0, len(centres), n)  # type: ignore[attr-defined]
        block = centres[picks] + rng.normal(0, 0.5, (n, DIM))  # type: ignore[index,attr-defined]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        points[start:start + n] = block
    return points


def bench_size(db: "object", size: int, queries: int, work_mem: str) -> dict[str, float]:
    import numpy as np

    rng = np.random.default_rng(size)
    centres = rng.normal(0, 1, (max(10, size // 1000), DIM))
    data = clustered(size, centres, rng)
    probes = clustered(queries, centres, rng)
    db.execute("DROP TABLE IF EXISTS bench")  # type: ignore[attr-defined]
    db.execute("CREATE TABLE bench (id bigint PRIMARY KEY, v vector(%d))" % DIM)  # type: ignore[attr-defined]
    with db.cursor().copy("COPY bench (id, v) FROM STDIN WITH (FORMAT BINARY)") as copy:  # type: ignore[attr-defined]
        copy.set_types(["int8", "vector"])
        for i, row in enumerate(data):
            copy.write_row((i, row))
    db.execute(f"SET maintenance_work_mem = '{work_mem}'")  # type: ignore[attr-defined]
    started = time.perf_counter()
    db.execute("CREATE INDEX ON bench USING hnsw (v vector_cosine_ops) WITH (m = 16, ef_construction = 64)")  # type: ignore[attr-defined]
    build_s = time.perf_counter() - started
    db.execute(f"SET hnsw.ef_search = {EF_SEARCH}")  # type: ignore[attr-defined]
    hnsw_ms, numpy_ms, overlaps = [], [], []
    for probe in probes:
        started = time.perf_counter()
        found = [r[0] for r in db.execute(  # type: ignore[attr-defined]
            "SELECT id FROM bench ORDER BY v <=> %s LIMIT 10", (probe,)).fetchall()]
        hnsw_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        scores = data @ probe
        exact = np.argpartition(-scores, 10)[:10]
        numpy_ms.append((time.perf_counter() - started) * 1000)
        overlaps.append(len(set(found) & set(int(i) for i in exact)) / 10)
    hnsw_ms.sort()
    return {
        "size": size,
        "build_s": round(build_s, 1),
        "hnsw_p50_ms": round(statistics.median(hnsw_ms), 2),
        "hnsw_p95_ms": round(hnsw_ms[int(0.95 * (len(hnsw_ms) - 1))], 2),
        "recall_at_10": round(statistics.mean(overlaps), 3),
        "numpy_p50_ms": round(statistics.median(numpy_ms), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--maintenance-work-mem", default=MAINTENANCE_WORK_MEM)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import psycopg
    from pgvector.psycopg import register_vector

    from pg_cluster import PgCluster

    folder = Path(tempfile.mkdtemp(prefix="nbchat-pgbench-"))
    cluster = PgCluster(folder)
    results = []
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as db:
            db.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(db)
            for size in (int(s) for s in args.sizes.split(",")):
                result = bench_size(db, size, args.queries, args.maintenance_work_mem)
                results.append(result)
                print(
                    f"{size:>9} vectors  build {result['build_s']:>7} s  "
                    f"hnsw p50 {result['hnsw_p50_ms']:>6} ms  p95 {result['hnsw_p95_ms']:>6} ms  "
                    f"recall@10 {result['recall_at_10']:.3f}  numpy p50 {result['numpy_p50_ms']:>6} ms",
                    flush=True,
                )
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({
        "bench": "pgvector", "dim": DIM, "m": 16, "ef_construction": 64,
        "ef_search": EF_SEARCH, "maintenance_work_mem": args.maintenance_work_mem,
        "results": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
