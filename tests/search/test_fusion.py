"""rag.search.fusion.fuse on small lists with real-looking scores (cosines, BM25 scores)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from rag import Settings, SettingsError
from rag.search.fusion import DEFAULT_DENSE_WEIGHT, METHODS, fuse

# One query's candidates as the retriever hands them over: (row, cosine) and (row, BM25), best first.
DENSE = [(7, 0.82), (3, 0.80), (9, 0.41)]
SPARSE = [(3, 12.5), (5, 6.0), (7, 5.5)]


def rows(fused: list[tuple[int, float]]) -> list[int]:
    return [row for row, _ in fused]


def z(values: list[float]) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return (a - a.mean()) / a.std()


def test_blend_is_the_default_and_weights_dense_point_eight() -> None:
    params = inspect.signature(fuse).parameters
    assert params["method"].default == "blend"
    assert params["dense_weight"].default == DEFAULT_DENSE_WEIGHT == 0.8
    assert params["rrf_k"].default == 60
    assert fuse(DENSE, SPARSE) == fuse(DENSE, SPARSE, "blend", dense_weight=0.8)


def test_blend_scores_are_weighted_z_scores_with_missing_rows_at_the_list_mean() -> None:
    zd, zs = z([0.82, 0.80, 0.41]), z([12.5, 6.0, 5.5])
    expected = {
        7: 0.8 * zd[0] + 0.2 * zs[2],
        3: 0.8 * zd[1] + 0.2 * zs[0],
        9: 0.8 * zd[2],  # BM25 did not find 9: z = 0 there
        5: 0.2 * zs[1],  # dense did not propose 5: z = 0 there
    }
    fused = fuse(DENSE, SPARSE, "blend", dense_weight=0.8)
    assert rows(fused) == [3, 7, 5, 9]
    for row, score in fused:
        assert score == pytest.approx(expected[row])
    scores = [score for _, score in fused]
    assert scores == sorted(scores, reverse=True)


def test_blend_weight_moves_the_ranking_between_the_two_lists() -> None:
    assert rows(fuse(DENSE, SPARSE, dense_weight=1.0))[:1] == [7]  # dense's own favourite
    # BM25's order; 9, which BM25 did not return, sits at BM25's mean candidate (z = 0)
    assert rows(fuse(DENSE, SPARSE, dense_weight=0.0)) == [3, 9, 5, 7]
    assert rows(fuse(DENSE, SPARSE, dense_weight=0.8))[:1] == [3]  # both like 3


def test_blend_ignores_the_scale_of_either_score() -> None:
    """BM25 scores of one query may be 10x another's: per-list z-scores make that irrelevant."""
    scaled = [(row, score * 7.3 + 40.0) for row, score in SPARSE]
    shifted = [(row, score - 0.3) for row, score in DENSE]
    assert rows(fuse(shifted, scaled)) == rows(fuse(DENSE, SPARSE))


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = dict(fuse(DENSE, SPARSE, "rrf", rrf_k=60))
    assert fused[3] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[7] == pytest.approx(1 / 61 + 1 / 63)
    assert fused[5] == pytest.approx(1 / 62)
    assert fused[9] == pytest.approx(1 / 63)
    assert rows(fuse(DENSE, SPARSE, "rrf")) == [3, 7, 5, 9]
    assert dict(fuse(DENSE, SPARSE, "rrf", rrf_k=0))[3] == pytest.approx(1 / 2 + 1 / 1)


@pytest.mark.parametrize("method", ["blend", "rrf"])
def test_every_row_of_either_list_appears_exactly_once(method: str) -> None:
    dense = [(10, 0.71), (11, 0.69), (12, 0.66), (13, 0.52), (11, 0.40)]  # 11 repeated: first one counts
    sparse = [(13, 18.2), (14, 9.9), (10, 9.1), (15, 3.3)]
    fused = fuse(dense, sparse, method)
    assert sorted(rows(fused)) == [10, 11, 12, 13, 14, 15]
    assert all(isinstance(row, int) and isinstance(score, float) for row, score in fused)


def test_dense_and_bm25_methods_return_their_list_alone() -> None:
    assert fuse(DENSE, SPARSE, "dense") == DENSE
    assert fuse(DENSE, SPARSE, "bm25") == SPARSE
    assert fuse([], SPARSE, "dense") == []


@pytest.mark.parametrize("method", ["blend", "rrf"])
def test_one_empty_list_keeps_the_other_lists_order(method: str) -> None:
    assert rows(fuse(DENSE, [], method)) == [7, 3, 9]
    assert rows(fuse([], SPARSE, method)) == [3, 5, 7]


@pytest.mark.parametrize("method", METHODS)
def test_empty_inputs_give_an_empty_ranking(method: str) -> None:
    assert fuse([], [], method) == []


def test_a_single_hit_or_equal_scores_carry_no_weight_and_do_not_divide_by_zero() -> None:
    fused = fuse([(4, 0.61)], [(8, 7.0), (4, 3.5)], "blend", dense_weight=0.8)
    assert rows(fused) == [8, 4]
    assert all(np.isfinite(score) for _, score in fused)
    flat = fuse([(1, 0.5), (2, 0.5), (3, 0.5)], [], "blend")
    assert flat == [(1, 0.0), (2, 0.0), (3, 0.0)]


def test_ties_keep_dense_order_then_bm25_order() -> None:
    # Each row found by one retriever at rank 1 and 2: RRF scores tie pairwise.
    fused = fuse([(1, 0.9), (2, 0.8)], [(3, 20.0), (4, 10.0)], "rrf")
    assert rows(fused) == [1, 3, 2, 4]
    # Mirror-image z-scores at equal weight: 1 and 3 tie, 2 and 4 tie.
    fused = fuse([(1, 0.75), (2, 0.25)], [(3, 20.0), (4, 10.0)], "blend", dense_weight=0.5)
    assert rows(fused) == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(fused[1][1])


@pytest.mark.parametrize("method", ["hybrid", "RRF", "", "z"])
def test_unknown_methods_are_refused_by_the_settings(method: str) -> None:
    with pytest.raises(SettingsError, match="fusion must be one of rrf, blend, dense, bm25"):
        Settings(fusion=method)  # type: ignore[arg-type]


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan")])
def test_the_settings_refuse_a_weight_outside_zero_one(weight: float) -> None:
    with pytest.raises(SettingsError, match="dense_weight"):
        Settings(dense_weight=weight)


def test_the_settings_refuse_a_negative_rrf_k() -> None:
    with pytest.raises(SettingsError, match="rrf_k must be 0 or more"):
        Settings(rrf_k=-1)
    assert fuse(DENSE, SPARSE, "rrf", rrf_k=0)


# A query where BM25 is decisive: one passage scores 30 while its other 29 candidates score 4.6-6.
DECISIVE_SPARSE = [(100, 30.0)] + [(400 + i, 6.0 - 0.05 * i) for i in range(29)]
# Dense prefers another passage (200) clearly, and ranks BM25's standout second.
DECISIVE_DENSE = [(200, 0.90), (100, 0.60)] + [(300 + i, 0.58 - 0.005 * i) for i in range(28)]


def test_a_decisive_bm25_hit_gets_an_equal_vote() -> None:
    zs = z([s for _, s in DECISIVE_SPARSE])
    zd = z([s for _, s in DECISIVE_DENSE])
    assert zs[0] > 4.0  # the gate's threshold
    fused = dict(fuse(DECISIVE_DENSE, DECISIVE_SPARSE))
    assert fused[100] == pytest.approx(0.5 * zd[1] + 0.5 * zs[0])
    assert fused[200] == pytest.approx(0.5 * zd[0])
    assert rows(fuse(DECISIVE_DENSE, DECISIVE_SPARSE))[:2] == [100, 200]
    # A BM25 list without a standout hit keeps the 0.8 dense weight: dense's favourite stays first.
    flat = [(100, 6.5)] + DECISIVE_SPARSE[1:]
    assert z([s for _, s in flat])[0] < 4.0
    assert rows(fuse(DECISIVE_DENSE, flat))[:2] == [200, 100]
    assert dict(fuse(DECISIVE_DENSE, flat))[200] == pytest.approx(0.8 * zd[0])


def test_the_gate_never_raises_the_dense_weight() -> None:
    low = dict(fuse(DECISIVE_DENSE, DECISIVE_SPARSE, dense_weight=0.3))
    zs, zd = z([s for _, s in DECISIVE_SPARSE]), z([s for _, s in DECISIVE_DENSE])
    assert low[100] == pytest.approx(0.3 * zd[1] + 0.7 * zs[0])


def test_candidates_past_the_fiftieth_do_not_change_the_top_scores() -> None:
    """Mean and std come from the first 50 candidates, where the rule was measured."""
    dense = [(i, 0.9 - 0.01 * i) for i in range(50)]
    sparse = [(1000 + i, 25.0 if i == 0 else 8.0 - 0.1 * i) for i in range(50)]
    longer_sparse = sparse + [(2000 + i, 2.0) for i in range(150)]
    short = dict(fuse(dense, sparse))
    long = dict(fuse(dense, longer_sparse))
    for row in list(short)[:10]:
        assert long[row] == pytest.approx(short[row])
    assert len(long) == 250
