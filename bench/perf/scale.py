"""The dense index by size: exact scan against IVF-SQ8 (what rag builds above the limit) and HNSW-SQ8.

For each size, clustered synthetic unit vectors of the model's dimension (384) are indexed with
``rag.store.faiss_dense.build_dense_index`` (the real code path) and with the alternatives, and every index
is scored against exact search: recall@10 of 500 held-out query vectors, one query at a time
latency (k=50, as ``search`` asks for 50 candidates), build time and memory (the serialised
index size, which is what ``faiss.read_index`` holds in RAM). A uniform random set (the worst
case for any approximate index) is measured too. The exact-scan latency by size is what sets
``Settings.exact_search_limit``.

Usage:
    .venv/bin/python -m bench.perf.scale                       # 100k and 1M (about 15 min, 5 GiB RAM)
    .venv/bin/python -m bench.perf.scale --sizes 20000         # quick check
    .venv/bin/python -m bench.perf.scale --hnsw-max 1000000    # also HNSW-SQ8 at 1M (slow to build)

Results: ``bench/results/perf_scale.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from bench.common import Timer, clustered_vectors, header, percentile, write

from rag.settings import Settings
from rag.store.faiss_dense import build_dense_index

QUERIES = 500
DIM = 384


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact top-k rows by inner product, in blocks (no second copy of a 1M-vector matrix)."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for begin in range(0, len(vectors), 100_000):
        scores = queries @ vectors[begin:begin + 100_000].T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        merged_rows = np.concatenate([best_rows, top + begin], axis=1)
        keep = np.argsort(-merged_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(merged_scores, keep, axis=1)
        best_rows = np.take_along_axis(merged_rows, keep, axis=1)
    return best_rows


def measure(index, queries: np.ndarray, truth: np.ndarray, params=None) -> dict[str, float]:  # noqa: ANN001
    found = np.zeros(len(queries))
    times = []
    for i, query in enumerate(queries):
        start = time.perf_counter()
        _, rows = index.search(query[None, :], 50, params=params)
        times.append((time.perf_counter() - start) * 1000)
        found[i] = len(set(rows[0][:10].tolist()) & set(truth[i].tolist())) / 10
    return {"recall": float(found.mean()), "p50": percentile(times, 50), "p95": percentile(times, 95)}


def index_bytes(index) -> int:  # noqa: ANN001
    import faiss

    return int(faiss.serialize_index(index).size)


def run_size(n: int, hnsw: bool, uniform: bool) -> list[dict[str, object]]:
    import faiss

    rows: list[dict[str, object]] = []
    if uniform:
        rng = np.random.default_rng(1)
        data = rng.standard_normal((n + QUERIES, DIM), dtype=np.float32)
        data /= np.linalg.norm(data, axis=1, keepdims=True)
    else:
        data = clustered_vectors(n + QUERIES)
    vectors, queries = data[:n], data[n:]
    label = "uniform random" if uniform else "clustered"
    with Timer() as t:
        truth = exact_top(vectors, queries)
    print(f"{n} {label}: exact top-10 of {QUERIES} queries in {t.seconds:.0f} s", file=sys.stderr)

    def add(kind: str, index, build_s: float, setting: str, params=None) -> None:  # noqa: ANN001
        result = measure(index, queries, truth, params)
        rows.append({"n": n, "data": label, "kind": kind, "setting": setting, "build_s": build_s,
                     "bytes": index_bytes(index) / n, **result})
        print(f"  {kind} {setting}: recall@10 {result['recall']:.3f}, p50 {result['p50']:.2f} ms, "
              f"build {build_s:.0f} s, {rows[-1]['bytes']:.0f} B/vector", file=sys.stderr)

    if not uniform:
        with Timer() as t:
            flat, _ = build_dense_index(vectors, Settings(exact_search_limit=n))
        add("flat (exact)", flat, t.seconds, "")
        del flat
    with Timer() as t:
        ivf, kind = build_dense_index(vectors, Settings(exact_search_limit=0))
    default_probe = ivf.nprobe
    for nprobe in sorted({max(1, ivf.nlist // 64), default_probe, ivf.nlist // 16}):
        add(kind, ivf, t.seconds, f"nlist {ivf.nlist}, nprobe {nprobe}" + (" (rag)" if nprobe == default_probe else ""),
            faiss.SearchParametersIVF(nprobe=nprobe))
    del ivf
    if hnsw:
        index = faiss.IndexHNSWSQ(DIM, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        with Timer() as t:
            index.train(vectors)
            index.add(vectors)
        for ef in (64, 128):
            add("hnsw-sq8", index, t.seconds, f"M 32, efConstruction 80, efSearch {ef}",
                faiss.SearchParametersHNSW(efSearch=ef))
    return rows


def flat_latency(sizes: list[int]) -> list[tuple[float, ...]]:
    """One query at a time against an exact index, by size, with faiss's default threads and with
    one: what sets the exact-search limit."""
    import faiss

    out = []
    data = clustered_vectors(max(sizes) + QUERIES, seed=3)
    queries = data[-200:]
    threads = faiss.omp_get_max_threads()
    for n in sizes:
        index, _ = build_dense_index(data[:n], Settings(exact_search_limit=n))
        row: list[float] = []
        for count in (threads, 1):
            faiss.omp_set_num_threads(count)
            times = []
            for query in queries:
                start = time.perf_counter()
                index.search(query[None, :], 50)
                times.append((time.perf_counter() - start) * 1000)
            row += [percentile(times, 50), percentile(times, 95)]
        faiss.omp_set_num_threads(threads)
        out.append((n, *row))
        print(f"flat {n}: p50 {row[0]:.2f} ms ({threads} threads), {row[2]:.2f} ms (1 thread)", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest size at which HNSW-SQ8 is built too")
    parser.add_argument("--flat-sizes", type=int, nargs="+", default=[10_000, 25_000, 50_000, 100_000, 200_000])
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    import faiss

    flat = flat_latency(args.flat_sizes)
    rows = []
    for n in args.sizes:
        rows += run_size(n, hnsw=n <= args.hnsw_max, uniform=False)
    rows += run_size(min(args.sizes), hnsw=min(args.sizes) <= args.hnsw_max, uniform=True)

    limit = Settings().exact_search_limit
    lines = header("Dense index by size: exact, IVF-SQ8 and HNSW-SQ8", argv, __spec__.name, notes=[
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads; vectors: 384-d unit vectors, "
        "clustered (about 100 per random centre, cosine about 0.75 to it) unless marked uniform; "
        f"{QUERIES} held-out query vectors from the same distribution, searched one at a time for 50 candidates",
        "recall@10: share of the exact top 10 found in the index's top 10; memory: serialised index bytes per "
        "vector (what `faiss.read_index` holds in RAM; vectors.npy is memory-mapped and not counted)",
        f"`rag` builds exact (flat) up to `Settings.exact_search_limit` = {limit:,} chunks, IVF-SQ8 above "
        "(`rag.store.faiss_dense.build_dense_index`)",
    ])
    lines += ["## Exact search, one query, by size", "",
              f"| chunks | p50 ms ({faiss.omp_get_max_threads()} threads, faiss default) | p95 ms | p50 ms (1 thread) "
              "| p95 ms |", "| ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {n:,} | {a:.2f} | {b:.2f} | {c:.2f} | {d:.2f} |" for n, a, b, c, d in flat]
    lines += ["", "## Approximate indexes against exact search", "",
              "| chunks | vectors | index | setting | recall@10 | p50 ms | p95 ms | build s | bytes/vector | "
              "GiB per 1M chunks |", "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['data']} | {r['kind']} | {r['setting']} | {r['recall']:.3f} | "
                     f"{r['p50']:.2f} | {r['p95']:.2f} | {r['build_s']:.0f} | {r['bytes']:.0f} | "
                     f"{r['bytes'] * 1e6 / 2 ** 30:.2f} |")
    write("perf_scale", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
