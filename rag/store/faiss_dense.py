"""The default dense index: FAISS, exact up to ``Settings.exact_search_limit`` vectors, IVF-SQ8 above.

Stored as ``dense.faiss`` in the generation folder. The file's header is checked against the
manifest and the file size before FAISS reads it: FAISS allocates what a header says before it
reads the bytes, so a doctored header could otherwise make it allocate gigabytes.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from rag.protocols import GenerationRows
from rag.settings import Settings

FILE = "dense.faiss"

_IVF_PROBE_FRACTION = 32
"""A query scans 1/32 of the inverted lists: recall@10 against exact search 0.98 on 100k and 1M
clustered vectors (bench/perf/scale.py), about 2 ms per query at 1M on 2 cores."""


def build_dense_index(vectors: np.ndarray, settings: Settings):  # noqa: ANN201 - (faiss.Index, str)
    """Exact inner-product search up to ``settings.exact_search_limit`` vectors, IVF-SQ8 above.

    Vectors are normalised, so inner product is cosine similarity. Above the limit an exact
    scan costs too much per query (every vector is read: 15-25 ms at 100k on 2 cores), so
    vectors go into ``4*sqrt(n)`` inverted lists, stored as 8-bit scalar codes (a quarter of
    float32), and a query scans the ``nprobe`` nearest lists. IVF rather than HNSW: measured
    on 1M vectors it builds several times faster (every commit rebuilds the index), takes less
    memory and keeps the same recall@10 against exact search (bench/perf/scale.py). ``nprobe`` is
    stored in the index file.

    Example:
        >>> index, kind = build_dense_index(np.eye(3, dtype=np.float32), Settings())
        >>> kind, index.ntotal
        ('flat', 3)
    """
    # FAISS loads with the first dense index
    import faiss

    n, dim = vectors.shape
    if n <= settings.exact_search_limit:
        flat = faiss.IndexFlatIP(dim)
        if n:
            flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return flat, "flat"
    # 4*sqrt(n) lists (faiss's own guidance), a power of two, with at least 39 training points each.
    nlist = 1 << int(math.log2(max(1.0, min(4 * math.sqrt(n), n / 39))))
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10  # 10 k-means rounds: recall measured equal to the default 25, at 40% of the time
    sample = vectors[np.random.default_rng(0).choice(n, size=min(n, 64 * nlist), replace=False)] \
        if n > 64 * nlist else vectors
    # Searches may run faiss single-threaded (one question gains nothing from threads); a build
    # is large batch work and uses every core.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(threads, os.cpu_count() or 1))
    try:
        index.train(np.ascontiguousarray(sample))
        index.add(vectors)
    finally:
        faiss.omp_set_num_threads(threads)
    index.nprobe = max(1, nlist // _IVF_PROBE_FRACTION)
    return index, "ivf-sq8"


_FLAT_HEADER = struct.Struct("<4siqqqBi")
"""fourcc, d, ntotal, two unused int64, is_trained, metric: FAISS's header of an ``IndexFlat``."""


def check_header(path: Path, kind: str, count: int, dim: int) -> None:
    """Refuse a file whose header or size disagrees with the manifest, before FAISS allocates anything.

    For a flat index the layout is fixed (header, then ``count*dim`` floats), so the check is
    exact. For IVF-SQ8 the codes take ``dim`` bytes and the ids 8 bytes per vector: the file
    must be at least that large and the header must name ``count`` vectors of ``dim``.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(_FLAT_HEADER.size + 8)
    if len(head) < _FLAT_HEADER.size:
        raise ValueError(f"{path.name} is too short to be a FAISS index ({size} bytes)")
    fourcc, d, ntotal, _, _, _, metric = _FLAT_HEADER.unpack_from(head)
    if d != dim or ntotal != count:
        raise ValueError(f"{path.name} says {ntotal} vectors of {d}, the manifest {count} of {dim}")
    if kind == "flat":
        if fourcc not in (b"IxFI", b"IxF2", b"IxFl") or metric != 0 or len(head) < _FLAT_HEADER.size + 8:
            raise ValueError(f"{path.name} is not a flat inner-product FAISS index")
        (floats,) = struct.unpack_from("<Q", head, _FLAT_HEADER.size)
        if floats != count * dim or size != _FLAT_HEADER.size + 8 + 4 * count * dim:
            raise ValueError(f"{path.name} holds {size} bytes, {count} vectors of {dim} need "
                             f"{_FLAT_HEADER.size + 8 + 4 * count * dim}")
    elif size < count * (dim + 8):
        raise ValueError(f"{path.name} holds {size} bytes, too few for {count} vectors of {dim}")


class FaissDenseIndex:
    """FAISS behind the ``DenseIndex`` protocol; ids are chunk rows.

    Example:
        >>> index = FaissDenseIndex.from_vectors(np.eye(3, dtype=np.float32), Settings())
        >>> index.search(np.eye(3, dtype=np.float32)[1], 1)
        [(1, 1.0)]
    """

    def __init__(self, index: Any, kind: str) -> None:  # noqa: ANN401 - faiss.Index
        self.index = index
        self.kind = kind

    # -- DenseBackend ----------------------------------------------------------------------

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, settings: Settings) -> FaissDenseIndex:
        return cls(*build_dense_index(vectors, settings))

    @classmethod
    def build(cls, rows: GenerationRows, settings: Settings) -> FaissDenseIndex:
        # FAISS loads with the first dense index
        import faiss

        dense = cls.from_vectors(rows.vectors, settings)
        faiss.write_index(dense.index, str(rows.folder / FILE))
        return dense

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any], count: int, dim: int, settings: Settings) -> FaissDenseIndex:
        # FAISS loads with the first dense index
        import faiss

        kind = str(entry.get("kind", "flat"))
        path = folder / FILE
        check_header(path, kind, count, dim)
        index = faiss.read_index(str(path))
        if index.ntotal != count or index.d != dim:
            raise ValueError(f"FAISS holds {index.ntotal} vectors of {index.d}, manifest says {count} of {dim}")
        return cls(index, kind)

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind}

    # -- DenseIndex ------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        # FAISS loads with the first dense index
        import faiss

        index = self.index
        if index.ntotal == 0 or n <= 0:
            return []
        query = np.ascontiguousarray(np.asarray(vector).reshape(1, -1), dtype=np.float32)
        params: faiss.SearchParameters | None = None
        if allowed is not None:
            if len(allowed) == 0:
                return []
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            # faiss's class wrappers take the fields as keywords (handle_SearchParameters); its stubs
            # declare a bare __init__(self), hence the ignores.
            if self.kind.startswith("ivf"):
                params = faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe)  # type: ignore[call-arg]
            else:
                params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        scores, rows = index.search(query, min(n, index.ntotal), params=params)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
