"""Vector recall on the team store: pgvector HNSW against exact search, at N vectors.

Synthetic, clustered data of the default embedding model's size (640): ``N / 1000``
cluster centres drawn from a standard normal, each vector a centre plus normal noise of
0.5 per dimension, normalised (so neighbours are many and close, as in real text
embeddings). Queries are fresh points drawn the same way. For each size and each
``--m``/``--ef-construction`` pair it builds the table with COPY, then the HNSW index
(cosine; by default the parameters ``nbchat db init`` uses; ``maintenance_work_mem`` as
printed), and for each ``--ef-search`` reports:

- ``build_s``: index build time;
- ``hnsw_p50_ms`` / ``hnsw_p95_ms``: top-10 query latency through the index (with
  ``hnsw.ef_search`` set; the store's own value by default), over a Unix socket, after
  five warm-up queries;
- ``recall_at_10``: overlap of those 10 with the exact top 10 (numpy brute force);
- ``numpy_p50_ms``: the SQLite store's way, a brute-force cosine over an in-memory
  float32 matrix (the matrix already loaded).

    python bench/bench_pgvector.py [--sizes 100000,1000000] [--queries 50]
    # a sweep: one build per (m, ef_construction) pair, each measured at every ef_search
    python bench/bench_pgvector.py --sizes 100000 --m 16,16,24 --ef-construction 64,128,128 --ef-search 40,100,200,400

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

from nbchat.core.postgres_migrations import HNSW_EF_CONSTRUCTION, HNSW_M
from nbchat.core.postgres_store import HNSW_EF_SEARCH

DIM = 640
MAINTENANCE_WORK_MEM = "1GB"  # --maintenance-work-mem; the graph should fit in it


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


def bench_size(db: "object", size: int, queries: int, work_mem: str, m: int,
               ef_construction: int, ef_searches: list[int]) -> list[dict[str, float]]:
    """Build one index of ``size`` vectors, then measure each ``hnsw.ef_search``."""
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
    db.execute(  # type: ignore[attr-defined]
        f"CREATE INDEX ON bench USING hnsw (v vector_cosine_ops) "
        f"WITH (m = {m}, ef_construction = {ef_construction})")
    build_s = time.perf_counter() - started
    exact_ids, numpy_ms = [], []
    for probe in probes:
        started = time.perf_counter()
        scores = data @ probe
        exact = np.argpartition(-scores, 10)[:10]
        numpy_ms.append((time.perf_counter() - started) * 1000)
        exact_ids.append({int(i) for i in exact})
    results = []
    for ef_search in ef_searches:
        db.execute(f"SET hnsw.ef_search = {ef_search}")  # type: ignore[attr-defined]
        for probe in probes[:5]:  # warm the index's pages into the buffer cache
            db.execute("SELECT id FROM bench ORDER BY v <=> %s LIMIT 10", (probe,))  # type: ignore[attr-defined]
        hnsw_ms, overlaps = [], []
        for probe, exact_set in zip(probes, exact_ids):
            started = time.perf_counter()
            found = [r[0] for r in db.execute(  # type: ignore[attr-defined]
                "SELECT id FROM bench ORDER BY v <=> %s LIMIT 10", (probe,)).fetchall()]
            hnsw_ms.append((time.perf_counter() - started) * 1000)
            overlaps.append(len(set(found) & exact_set) / 10)
        hnsw_ms.sort()
        results.append({
            "size": size, "m": m, "ef_construction": ef_construction, "ef_search": ef_search,
            "build_s": round(build_s, 1),
            "hnsw_p50_ms": round(statistics.median(hnsw_ms), 2),
            "hnsw_p95_ms": round(hnsw_ms[int(0.95 * (len(hnsw_ms) - 1))], 2),
            "recall_at_10": round(statistics.mean(overlaps), 3),
            "numpy_p50_ms": round(statistics.median(numpy_ms), 2),
        })
    db.execute("DROP TABLE bench")  # type: ignore[attr-defined]
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--maintenance-work-mem", default=MAINTENANCE_WORK_MEM)
    parser.add_argument("--m", default=str(HNSW_M), help="comma-separated: one build each")
    parser.add_argument("--ef-construction", default=str(HNSW_EF_CONSTRUCTION),
                        help="comma-separated, paired with --m's values in order")
    parser.add_argument("--ef-search", default=str(HNSW_EF_SEARCH),
                        help="comma-separated: each measured on every build")
    args = parser.parse_args()
    ms = [int(v) for v in args.m.split(",")]
    constructions = [int(v) for v in args.ef_construction.split(",")]
    if len(constructions) == 1:
        constructions *= len(ms)
    ef_searches = [int(v) for v in args.ef_search.split(",")]
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
                for m, construction in zip(ms, constructions):
                    for result in bench_size(db, size, args.queries, args.maintenance_work_mem,
                                             m, construction, ef_searches):
                        results.append(result)
                        print(
                            f"{size:>9} vectors  m {m:>2} efc {construction:>3}  "
                            f"build {result['build_s']:>7} s  ef_search {result['ef_search']:>4}  "
                            f"hnsw p50 {result['hnsw_p50_ms']:>6} ms  "
                            f"p95 {result['hnsw_p95_ms']:>6} ms  "
                            f"recall@10 {result['recall_at_10']:.3f}  "
                            f"numpy p50 {result['numpy_p50_ms']:>6} ms",
                            flush=True,
                        )
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({
        "bench": "pgvector", "dim": DIM, "maintenance_work_mem": args.maintenance_work_mem,
        "results": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
