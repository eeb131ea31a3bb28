"""recsys_course.scaling: ALS's memory formulas against hand computations, the growth fit, the measurement."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course.scaling import (
    CATALOGUES,
    GIB,
    Growth,
    als_memory,
    fit_growth,
    human_bytes,
    measure_als,
    synthetic_ratings,
)


def test_als_memory_matches_the_hand_computation():
    # 2 users, 3 films, 4 ratings, k = 2, int32 indices (notebook 15, section 1)
    m = als_memory(2, 3, 4, 2)
    assert m["factors"] == 8 * 2 * (2 + 3) + 8 * 2 * 3 == 128
    assert m["ratings (sparse)"] == 2 * (8 + 4) * 4 + 4 * (2 + 3 + 2) == 124
    assert m["bookkeeping"] == 2 * (16 + 4 + 4 + 8) * 4 == 256
    assert m["Gram solves"] == 8 * 3 * (4 + 2) + 8 * (2 + 4) * 4 == 336
    assert m["training-RMSE pass"] == 2 * 8 * 2 * 4 == 128
    assert m["peak"] == 128 + 124 + 256 + 336 == 844
    assert list(m.index) == ["factors", "ratings (sparse)", "bookkeeping", "Gram solves", "training-RMSE pass",
                             "peak"]


def test_als_memory_peak_takes_the_larger_transient_and_switches_to_int64_indices():
    m = als_memory(*CATALOGUES["ml-25m"], 32)
    persistent = m["factors"] + m["ratings (sparse)"] + m["bookkeeping"]
    assert m["peak"] == persistent + max(m["Gram solves"], m["training-RMSE pass"])
    assert m["training-RMSE pass"] > m["Gram solves"]            # 512 bytes per rating at k = 32
    n_u, n_i, n = CATALOGUES["100M users × 10M items × 10B"]
    big = als_memory(n_u, n_i, n, 32)
    assert big["ratings (sparse)"] == 2 * (8 + 8) * n + 8 * (n_u + n_i + 2)   # 10B ratings: int64 indices
    assert big["factors"] == 8 * 32 * (n_u + n_i) + 8 * 32 * n_u


def test_als_memory_is_linear_in_the_ratings_and_checks_its_arguments():
    a, b = als_memory(1000, 500, 10**6, 32), als_memory(1000, 500, 2 * 10**6, 32)
    assert b["training-RMSE pass"] == 2 * a["training-RMSE pass"]
    with pytest.raises(ValueError, match="n_factors must be an integer >= 1"):
        als_memory(10, 10, 10, 0)


@pytest.mark.parametrize("n, text", [(0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (3 * GIB, "3 GiB"),
                                     (5 * 2**40, "5 TiB"), (2000 * 2**40, "2,000 TiB")])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_fit_growth_recovers_a_power_law_and_inverts_it():
    n = np.array([1e3, 1e4, 1e5, 1e6])
    curve = fit_growth(n, 3.0 * n ** 1.5)
    assert curve.a == pytest.approx(3.0, rel=1e-9) and curve.b == pytest.approx(1.5, rel=1e-12)
    assert curve.predict(100.0) == pytest.approx(3000.0)
    assert curve.solve(curve.predict(12345.0)) == pytest.approx(12345.0)
    assert np.allclose(curve.predict(n), 3.0 * n ** 1.5)
    assert str(Growth(2.0, 1.0)) == "2 · n^1.000"


@pytest.mark.parametrize("sizes, values, match", [([1, 2], [1, 0], "> 0"), ([5, 5], [1, 2], "two distinct"),
                                                  ([1, 2, 3], [1, 2], "same length")])
def test_fit_growth_refuses_what_it_cannot_fit(sizes, values, match):
    with pytest.raises(ValueError, match=match):
        fit_growth(sizes, values)


def test_synthetic_ratings_has_the_asked_size_and_is_seeded():
    a = synthetic_ratings(5_000)
    assert len(a) == 5_000 and a["userId"].nunique() == 50 and a["movieId"].max() <= 200
    pd.testing.assert_frame_equal(a, synthetic_ratings(5_000))
    assert not a.duplicated(["userId", "movieId"]).any()


def test_measure_als_agrees_with_the_formula():
    train = synthetic_ratings(20_000)
    m = measure_als(train, n_factors=16, n_iters=1)
    assert (m["n_users"], m["n_items"], m["n_ratings"]) == (200, 200, 20_000)
    formula = als_memory(m["n_users"], m["n_items"], m["n_ratings"], 16)["peak"]
    assert 0.85 < m["peak_bytes"] / formula < 1.1
    assert m["seconds_per_iter"] > 0 and m["cpu_seconds_per_iter"] > 0
