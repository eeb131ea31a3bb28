"""recsys_course.spark: the session's settings, the frames, SparkALS behind the course's protocol, ALS-WR.

Tests that start Spark share one session (a module fixture; the JVM starts in a few seconds) and fit on a tiny
synthetic set. Where no usable Java is found they are SKIPPED with the reason (how to install Java 17); the tests
that need no JVM run everywhere.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_course.config import ITEM, RATING, USER
from recsys_course.data import DataError
from recsys_course.models.base import UnknownIdError
from recsys_course.models.factorization import als_half_step
from recsys_course.spark import (
    INT32_MAX,
    JavaMissingError,
    SparkALS,
    als_wr_half_step,
    block_of,
    block_traffic,
    check_spark_ids,
    java_missing_reason,
    session_settings,
    spark_session,
)
from recsys_course.synthetic import make_synthetic

JAVA_REASON = java_missing_reason()
needs_java = pytest.mark.skipif(JAVA_REASON is not None, reason=f"Spark needs Java: {JAVA_REASON}")


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic(n_users=30, n_items=20, ratings_per_user=8, seed=0).ratings


@pytest.fixture(scope="module")
def spark():
    session = spark_session(cores=2, driver_memory="1g")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fitted(spark, tiny):
    return SparkALS(n_factors=4, reg=0.1, n_iters=5, n_blocks=2, spark=spark).fit(tiny)


# --------------------------------------------------------------------------------------------- without a JVM
def test_importing_the_course_does_not_load_pyspark():
    code = "import sys, recsys_course, recsys_course.models, recsys_course.spark; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_java_the_session_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    reason = java_missing_reason()
    assert reason is not None and "Java 17" in reason and "openjdk=17" in reason and "apt-get" in reason
    with pytest.raises(JavaMissingError, match="install Java 17"):
        spark_session()


def test_session_settings_are_local_quiet_and_under_the_folder(tmp_path):
    s = session_settings(cores=3, driver_memory="512m", folder=tmp_path)
    assert s["spark.master"] == "local[3]" and s["spark.driver.memory"] == "512m"
    assert s["spark.ui.enabled"] == "false" and s["spark.ui.showConsoleProgress"] == "false"
    assert s["spark.local.dir"] == str(tmp_path / "tmp") and s["spark.sql.warehouse.dir"] == str(tmp_path / "warehouse")
    with pytest.raises(ValueError, match="driver_memory"):
        session_settings(driver_memory="2 GB")
    with pytest.raises(ValueError, match="cores must be an integer"):
        session_settings(cores=0)


def test_ids_must_be_integers_that_fit_32_bits(tiny):
    check_spark_ids(tiny)
    big = tiny.assign(**{ITEM: tiny[ITEM] + INT32_MAX})
    with pytest.raises(DataError, match="32-bit integers.*pd.factorize"):
        check_spark_ids(big)
    with pytest.raises(DataError, match="integer ids"):
        check_spark_ids(tiny.assign(**{USER: tiny[USER].astype(str)}))


def test_als_wr_half_step_scales_the_penalty_by_the_row_count():
    R = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 4.0], [0.0, 0.0, 0.0]]))
    Y = np.array([[1.0, 0.0], [1.0, 1.0], [0.5, -1.0]])
    P = als_wr_half_step(R, Y, 1.0)
    assert np.allclose(P[0], [7 / 11, 5 / 11])                   # notebook 15's worked example, λ·n_u = 2
    assert np.allclose(P[1], als_half_step(R[1], Y, 1.0)[0])    # one rating: λ·1 = λ
    assert np.allclose(P[2], 0.0)                                # no ratings: zero


def test_block_traffic_counts_what_each_block_needs():
    train = pd.DataFrame({USER: [0, 0, 1, 2, 3], ITEM: [0, 1, 1, 3, 3], RATING: [4.0, 3.0, 5.0, 2.0, 1.0]})
    assert list(block_of([0, 1, 2, 3, 7], 2)) == [0, 1, 0, 1, 1]
    t = block_traffic(train, 2, 2).set_index(["user_block", "item_block"])
    # user block 0 = users 0 and 2: films 0 (block 0), 1 and 3 (block 1); user block 1 = users 1 and 3: 1 and 3
    assert t.loc[(0, 0), "factors_sent"] == 1 and t.loc[(0, 1), "factors_sent"] == 2
    assert t.loc[(1, 0), "factors_sent"] == 0 and t.loc[(1, 1), "factors_sent"] == 2
    assert t["ratings"].sum() == 5 and list(t["items_in_block"]) == [1, 2, 1, 2]


# --------------------------------------------------------------------------------------------- with Spark
@needs_java
def test_session_is_shared_and_configured(spark):
    assert spark_session() is spark
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.master") == "local[2]" and conf.get("spark.ui.enabled") == "false"
    assert "build" in conf.get("spark.local.dir") or "recsys-course-spark" in conf.get("spark.local.dir")


@needs_java
def test_spark_als_follows_the_protocol_and_matches_sparks_predictions(spark, tiny, fitted):
    from recsys_course.spark import to_spark

    assert fitted.user_factors_.shape == (30, 4) and fitted.item_factors_.shape == (fitted.n_items, 4)
    pairs = tiny.head(20)
    rows = fitted.spark_model_.transform(to_spark(spark, pairs, "pairs")).collect()
    spark_pred = pd.DataFrame([r.asDict() for r in rows]).sort_values([USER, ITEM]).reset_index(drop=True)
    ours = fitted.predict(spark_pred[USER], spark_pred[ITEM])
    assert np.allclose(ours, spark_pred["prediction"], atol=1e-5)
    unknown = fitted.predict([tiny[USER].iloc[0]], [10_000])
    assert unknown[0] == pytest.approx(tiny[RATING].mean())       # the training mean for an unseen film
    recs = fitted.recommend(np.sort(tiny[USER].unique())[:3], k=5)
    assert len(recs) == 15 and set(recs.columns) == {USER, ITEM, "score", "rank"}
    with pytest.raises(UnknownIdError, match="absent from its training data"):
        fitted.recommend([99_999])


@needs_java
def test_numpy_als_wr_reproduces_sparks_user_factors(tiny, fitted):
    u, i = fitted.user_positions(tiny[USER]), fitted.item_positions(tiny[ITEM])
    R = sp.csr_matrix((tiny[RATING].to_numpy(), (u, i)), shape=(fitted.n_users, fitted.n_items))
    assert np.abs(als_wr_half_step(R, fitted.item_factors_, 0.1) - fitted.user_factors_).max() < 1e-5
    assert np.abs(als_half_step(R, fitted.item_factors_, 0.1) - fitted.user_factors_).max() > 1e-2


@needs_java
def test_from_model_and_a_user_spark_never_saw(tiny, fitted):
    extra = pd.DataFrame({USER: [500], ITEM: [tiny[ITEM].iloc[0]], RATING: [3.0], "timestamp": [0]})
    wider = pd.concat([tiny, extra], ignore_index=True)
    wrapped = SparkALS.from_model(fitted.spark_model_, wider)
    assert np.allclose(wrapped.user_factors_[:30], fitted.user_factors_)
    with pytest.raises(UnknownIdError, match="Spark's ALS returned none"):
        wrapped.recommend([500])


@needs_java
def test_implicit_spark_als_is_a_ranking_model(spark, tiny):
    from recsys_course.evaluate import evaluate
    from recsys_course.split import ranking_split

    train, test = ranking_split(make_synthetic(n_users=40, n_items=30, ratings_per_user=15, seed=1).ratings)
    model = SparkALS(n_factors=4, reg=0.1, alpha=0.3, n_iters=3, implicit=True, n_blocks=2, spark=spark).fit(train)
    assert model.predicts_ratings is False
    assert model.predict([train[USER].iloc[0]], [10_000])[0] == -np.inf
    row = evaluate(model, train, test)
    assert "rmse" not in row and 0 <= row["ndcg@10"] <= 1
