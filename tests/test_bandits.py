"""Bandit policies, the synthetic click environment and replay evaluation (notebook 14, section 1)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from recsys_course.bandits import (
    UCB1,
    EpsilonGreedy,
    LinUCB,
    RandomPolicy,
    ThompsonSampling,
    bernoulli_run,
    click_probabilities,
    replay,
    simulate,
)
from recsys_course.config import ITEM, USER
from recsys_course.synthetic import make_synthetic


def _feed(policy, history, features=None, user=None):
    for arm, reward in history:
        policy.update(arm, reward, features, user)
    return policy


# ---- one step by hand --------------------------------------------------------------------------
HISTORY = [(0, 1), (0, 1), (0, 0), (1, 1), (1, 0), (2, 1), (2, 0), (2, 1), (2, 0), (2, 1)]
# arm 0: 2/3 clicks, arm 1: 1/2, arm 2: 3/5; t = 10


def test_ucb1_one_step_by_hand():
    p = _feed(UCB1(3, c=1.0), HISTORY)
    assert p.counts_.tolist() == [3, 2, 5]
    np.testing.assert_allclose(p.values_, [2 / 3, 1 / 2, 3 / 5])
    by_hand = np.array([2 / 3, 1 / 2, 3 / 5]) + np.sqrt(2 * np.log(10) / np.array([3, 2, 5]))
    np.testing.assert_allclose(p.indices(), by_hand)
    assert p.select() == int(np.argmax(by_hand)) == 1        # the least-tried arm wins the bonus
    p.c = 0.0
    assert p.select() == 0                                    # no bonus: the best mean


def test_ucb1_plays_every_arm_once_first():
    p = UCB1(4)
    seen = []
    for _ in range(4):
        a = p.select()
        seen.append(a)
        p.update(a, 0)
    assert seen == [0, 1, 2, 3]


def test_epsilon_greedy_one_step_by_hand():
    p = _feed(EpsilonGreedy(3, epsilon=0.1, seed=0), HISTORY)
    u = np.random.default_rng(0).random()                     # the policy's first draw
    assert u >= 0.1 and p.select() == 0                       # exploit: arm 0 has the best mean, 2/3
    always = EpsilonGreedy(3, epsilon=1.0, seed=0)
    rng = np.random.default_rng(0)
    rng.random()
    assert always.select() == int(rng.integers(3))            # explore: a uniform arm from the same generator
    assert EpsilonGreedy(3, epsilon=0.0).select() == 0        # greedy on all-zero means: the lowest index


def test_thompson_one_step_by_hand():
    p = _feed(ThompsonSampling(3, a=1.0, b=1.0, seed=3), HISTORY)
    assert p.successes_.tolist() == [2, 1, 3] and p.failures_.tolist() == [1, 1, 2]
    draws = np.random.default_rng(3).beta([3, 2, 4], [2, 2, 3])  # posterior Beta(1 + S, 1 + F)
    assert p.select() == int(np.argmax(draws))


def test_linucb_one_step_by_hand():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    p = _feed(LinUCB(alpha=1.0, reg=1.0), [(0, 1), (0, 0), (0, 0), (1, 1)], X, user=7)
    A = np.eye(2) + 3 * np.outer(X[0], X[0]) + np.outer(X[1], X[1])   # diag(4, 2)
    b = X[0] + X[1]
    theta = np.linalg.solve(A, b)                                       # (0.25, 0.5)
    np.testing.assert_allclose(p.theta(7), theta)
    np.testing.assert_allclose(p.A_inv_[7], np.linalg.inv(A))           # Sherman–Morrison is exact
    by_hand = X @ theta + np.sqrt(np.einsum("ij,jk,ik->i", X, np.linalg.inv(A), X))
    np.testing.assert_allclose(p.indices(X, 7), by_hand)
    assert p.select(X, 7) == int(np.argmax(by_hand)) == 1
    np.testing.assert_allclose(p.theta(8), 0)                           # another user: nothing learned


def test_linucb_shared_theta_pools_users():
    X = np.eye(2)
    p = _feed(LinUCB(alpha=0.0, per_user=False), [(1, 1)], X, user=1)
    assert p.select(X, user=2) == 1                           # one θ for everyone
    q = _feed(LinUCB(alpha=0.0, per_user=True), [(1, 1)], X, user=1)
    assert q.select(X, user=2) == 0                           # a θ per user: user 2 knows nothing yet


# ---- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: EpsilonGreedy(0), lambda: UCB1(0), lambda: ThompsonSampling(0),
                                  lambda: RandomPolicy(0)])
def test_no_arms(make):
    with pytest.raises(ValueError, match="at least one arm.*n_arms"):
        make()


def test_empty_candidate_sets():
    with pytest.raises(ValueError, match="empty candidate set"):
        LinUCB().select(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="needs the arms' context vectors"):
        LinUCB().select()
    world = make_synthetic(n_users=5, n_items=10, ratings_per_user=3, seed=0)
    with pytest.raises(ValueError, match="candidates is empty"):
        simulate(world, UCB1(1), [], 10)
    with pytest.raises(ValueError, match="at least one arm"):
        bernoulli_run(UCB1(1), [], 10)


@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan"), "0.1"])
def test_epsilon_must_be_a_probability(eps):
    with pytest.raises(ValueError, match="epsilon must be a probability between 0 and 1"):
        EpsilonGreedy(3, epsilon=eps)


def test_bernoulli_means_and_rewards_must_be_probabilities():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*\[1.2\]"):
        bernoulli_run(UCB1(2), [0.5, 1.2], 10)
    with pytest.raises(ValueError, match=r"reward must be a number in \[0, 1\]"):
        UCB1(2).update(0, 2.0)
    with pytest.raises(ValueError, match="arm must be an integer position"):
        UCB1(2).update(2, 1)


@pytest.mark.parametrize("a, b", [(0.0, 1.0), (1.0, -1.0)])
def test_prior_must_be_positive(a, b):
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        ThompsonSampling(2, a=a, b=b)


def test_alpha_must_not_be_negative():
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        LinUCB(alpha=-0.5)
    LinUCB(alpha=0.0)


def test_pool_size_must_match_the_policy():
    world = make_synthetic(n_users=5, n_items=10, ratings_per_user=3, seed=0)
    with pytest.raises(ValueError, match="build the policy with n_arms=3"):
        simulate(world, UCB1(4), [1, 2, 3], 5)


# ---- environments ------------------------------------------------------------------------------
def test_click_model_is_the_sigmoid_of_true_affinity():
    world = make_synthetic(n_users=6, n_items=8, ratings_per_user=3, seed=2)
    np.testing.assert_allclose(click_probabilities(world), expit(world.true_scores()))


def test_simulate_regret_is_exact_and_deterministic():
    world = make_synthetic(n_users=20, n_items=30, ratings_per_user=5, seed=4)
    pool = np.arange(1, 11)
    a = simulate(world, ThompsonSampling(10, seed=1), pool, 300, seed=5)
    b = simulate(world, ThompsonSampling(10, seed=1), pool, 300, seed=5)
    pd.testing.assert_frame_equal(a, b)
    probs = click_probabilities(world)
    np.testing.assert_allclose(a["expected"], probs[a[USER] - 1, a[ITEM] - 1])
    np.testing.assert_allclose(a["best"], probs[a[USER] - 1][:, pool - 1].max(1))
    assert (a["regret"] >= 0).all() and a[ITEM].isin(pool).all()
    c = simulate(world, ThompsonSampling(10, seed=2), pool, 300, seed=5)
    assert not a["arm"].equals(c["arm"])                        # the policy's own seed matters


def test_simulate_activity_arrivals_follow_the_ratings():
    world = make_synthetic(n_users=3, n_items=20, ratings_per_user=np.array([1, 1, 18]), seed=0)
    log = simulate(world, RandomPolicy(5), np.arange(1, 6), 2000, arrivals="activity", seed=0)
    assert 0.85 < (log[USER] == 3).mean() < 0.95              # 18 of 20 ratings


def test_ucb_and_thompson_find_the_best_arm():
    means = [0.2, 0.5, 0.8]
    for policy in (UCB1(3, c=1.0), ThompsonSampling(3, seed=0), EpsilonGreedy(3, 0.1, seed=0)):
        run = bernoulli_run(policy, means, 2000, seed=0)
        assert (run["arm"].tail(500) == 2).mean() > 0.85, policy
    rnd = bernoulli_run(RandomPolicy(3), means, 2000, seed=0)["regret"].sum()
    ucb = bernoulli_run(UCB1(3, c=1.0), means, 2000, seed=0)["regret"].sum()
    assert ucb < rnd / 5


def test_linucb_learns_per_user_tastes_better_than_one_mean():
    """Two kinds of users who like opposite films: a θ per user beats any one-mean-per-film policy."""
    world = make_synthetic(n_users=40, n_items=60, n_factors=2, ratings_per_user=10, seed=3)
    pool = np.arange(1, 21)
    features = np.c_[world.item_factors[pool - 1], np.ones(20)]
    lin = simulate(world, LinUCB(alpha=0.5), pool, 3000, features=features, seed=0)["regret"].sum()
    ucb = simulate(world, UCB1(20), pool, 3000, seed=0)["regret"].sum()
    assert lin < 0.7 * ucb


# ---- replay ------------------------------------------------------------------------------------
def test_replay_keeps_only_matches_and_learns_only_them():
    log = pd.DataFrame({USER: [1, 1, 1, 1], "arm": [1, 0, 0, 1], "reward": [1.0, 0.0, 1.0, 0.0]})
    # UCB1 on 2 arms: first arm 0 (untried), so event 0 (arm 1) is skipped; event 1 matches (arm 0, reward 0);
    # then arm 1 is untried: event 2 (arm 0) skipped, event 3 matches (arm 1, reward 0).
    out = replay(UCB1(2), log)
    assert out.positions.tolist() == [1, 3] and out.rewards.tolist() == [0.0, 0.0]
    assert out.n_matched == 2 and out.match_rate == 0.5 and out.estimate == 0.0
    np.testing.assert_allclose(out.running, [0.0, 0.0])


def test_replay_of_a_uniform_log_is_unbiased_for_a_fixed_policy():
    """A policy that always shows arm 2 has true click rate means[2]; replay on a uniform log finds it."""
    means = np.array([0.1, 0.3, 0.9, 0.5])

    class Always2(RandomPolicy):
        def select(self, features=None, user=None):
            return 2

    run = bernoulli_run(RandomPolicy(4, seed=1), means, 8000, seed=1)
    log = pd.DataFrame({USER: 0, "arm": run["arm"], "reward": run["reward"]})
    out = replay(Always2(4), log)
    assert abs(out.match_rate - 0.25) < 0.02
    assert abs(out.estimate - 0.9) < 3 * np.sqrt(0.9 * 0.1 / out.n_matched)


def test_replay_bad_logs():
    with pytest.raises(ValueError, match="needs columns"):
        replay(UCB1(2), pd.DataFrame({"arm": [0]}))
    with pytest.raises(ValueError, match="integer positions"):
        replay(UCB1(2), pd.DataFrame({USER: [1], "arm": [2], "reward": [1.0]}))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        replay(UCB1(2), pd.DataFrame({USER: [1], "arm": [0], "reward": [4.0]}))


def test_reset_rewinds_everything():
    p = ThompsonSampling(3, seed=9)
    first = [p.select() for _ in range(5)]
    p.update(0, 1)
    p.reset()
    assert p.t_ == 0 and p.successes_.sum() == 0
    assert [p.select() for _ in range(5)] == first


def test_environment_randomness_is_independent_of_a_policy_seeded_alike():
    """A random policy and the environment both seeded 3: the logged film must not depend on the user."""
    world = make_synthetic(n_users=50, n_items=60, ratings_per_user=5, seed=0)
    log = simulate(world, RandomPolicy(25, seed=3), np.arange(1, 26), 5000, seed=3)
    assert abs(np.corrcoef(log[USER], log["arm"])[0, 1]) < 0.05
    assert log.groupby("arm")[USER].nunique().min() > 30     # every film is logged for many users
    run = bernoulli_run(RandomPolicy(2, seed=0), [0.5, 0.5], 4000, seed=0)
    assert abs(np.corrcoef(run["arm"], run["reward"])[0, 1]) < 0.05
