r"""Bandits: recommendation as explore/exploit (notebook 14).

A recommender that shows one film and sees only whether it was clicked learns about the film it showed, and
about nothing else. Each round it must choose between **exploiting** (the film that looks best so far) and
**exploring** (a film it knows little about, which may be better). A *multi-armed bandit* policy makes that
choice; the arms are the films of a candidate pool, the reward is the click (0 or 1).

**The policies** (one protocol; arms are positions ``0 .. n_arms-1`` in the candidate pool):

* ``select(features=None, user=None) -> int`` — the arm to show now;
* ``update(arm, reward, features=None, user=None)`` — learn the reward (a number in [0, 1]) of the arm shown;
* ``reset() -> self`` — forget everything, rewind the random generator (same seed → same choices).

``features`` (``n_arms × d``, one context vector per arm) and ``user`` are read only by :class:`LinUCB`; the
other policies ignore them, so every policy runs in the same loop. Ties go to the lowest arm index.

========================  =================================================================================
:class:`RandomPolicy`     a uniform draw (the baseline, and the logging policy of an unbiased replay)
:class:`EpsilonGreedy`    with probability ε a uniform arm, else :math:`\arg\max_a \hat\mu_a`
:class:`UCB1`             :math:`\arg\max_a \hat\mu_a + c\sqrt{2\ln t / n_a}` (Auer, Cesa-Bianchi & Fischer 2002)
:class:`ThompsonSampling` :math:`\arg\max_a \tilde\mu_a`, :math:`\tilde\mu_a \sim \mathrm{Beta}(a + S_a, b + F_a)`
:class:`LinUCB`           :math:`\arg\max_a x_a^\top\hat\theta + \alpha\sqrt{x_a^\top A^{-1}x_a}` (Li et al. 2010)
========================  =================================================================================

**The environments.** :func:`simulate` runs a policy online in the synthetic world
(:func:`recsys_course.synthetic.make_synthetic`), whose true tastes are known, so the regret is exact: a user
arrives, the policy shows one film of the pool, the user clicks with probability :math:`\sigma(s_{ui})` — the
``"click"`` response of :func:`recsys_course.stream.feedback_loop` — and the step's regret is the best expected
click for that user minus the expected click of the film shown. :func:`bernoulli_run` is the textbook bandit
(fixed click probabilities, no users). :func:`replay` evaluates a policy **offline** on a log (Li, Chu, Langford
& Wang 2011): it walks the log in order, asks the policy for its choice, and keeps only the events where the
choice equals the logged film; those rewards are the policy's estimated click rate, and only those events are
learned. If the logging policy chose uniformly at random among the ``K`` arms, the kept events are distributed
as if the policy had run online, so the estimate is unbiased — at the price of keeping about :math:`1/K` of the
log. Under any other logging policy (MovieLens: people chose what to watch) it is biased.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from .checks import check_bool, check_choice, check_int, check_number, is_int, is_number
from .config import ITEM, USER
from .progress import progress as _progress
from .synthetic import SyntheticData

__all__ = ["Policy", "RandomPolicy", "EpsilonGreedy", "UCB1", "ThompsonSampling", "LinUCB", "click_probabilities",
           "simulate", "bernoulli_run", "replay", "ReplayResult", "ARRIVALS"]

#: how users arrive in :func:`simulate`: each step a uniform user, or a user drawn ∝ their number of ratings
ARRIVALS = ("uniform", "activity")


def _check_n_arms(owner, n_arms) -> int:
    if not is_int(n_arms) or n_arms < 1:
        raise ValueError(f"{type(owner).__name__}: a bandit needs at least one arm to choose from; pass n_arms as "
                         f"an integer >= 1 (the size of the candidate pool), got {n_arms!r}")
    return int(n_arms)


def _check_probability(owner: str, name: str, value) -> float:
    if not is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{owner}: {name} must be a probability between 0 and 1 (inclusive), got {value!r}; "
                         "rescale it into [0, 1]")
    return float(value)


class Policy:
    """The shape every policy shares (see the module docstring). Subclasses implement ``_reset``, ``select`` and
    ``_learn``; ``update`` checks the arm and the reward, counts the step in ``t_`` and calls ``_learn``."""

    n_arms: int | None = None

    def __init__(self, seed: int = 0):
        self.seed = check_int(self, "seed", seed, low=0)
        self.reset()

    def reset(self) -> Policy:
        """Forget every reward seen and rewind the random generator to ``seed``."""
        self.rng_ = np.random.default_rng(self.seed)
        self.t_ = 0
        self._reset()
        return self

    def select(self, features=None, user=None) -> int:
        """The arm (an integer position in the candidate pool) to show now."""
        raise NotImplementedError

    def update(self, arm, reward, features=None, user=None) -> None:
        """Learn that ``arm`` earned ``reward`` (a click: 0 or 1; any number in [0, 1])."""
        n = self.n_arms if self.n_arms is not None else len(self._features(features))
        if not is_int(arm) or not 0 <= arm < n:
            raise ValueError(f"{type(self).__name__}.update: arm must be an integer position in the candidate pool "
                             f"(0 .. {n - 1}), got {arm!r}; pass the value select() returned")
        if isinstance(reward, (bool, np.bool_)):
            reward = float(reward)
        if not is_number(reward) or not 0 <= reward <= 1:
            raise ValueError(f"{type(self).__name__}.update: reward must be a number in [0, 1] (a click: 0 or 1), "
                             f"got {reward!r}; rescale the reward into [0, 1]")
        self.t_ += 1
        self._learn(int(arm), float(reward), features, user)

    def _reset(self) -> None:
        raise NotImplementedError

    def _learn(self, arm: int, reward: float, features, user) -> None:
        raise NotImplementedError

    def get_params(self) -> dict:
        """The constructor's arguments (``type(p)(**p.get_params())`` builds a fresh twin)."""
        import inspect

        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"


class _CountingPolicy(Policy):
    """Keeps ``counts_`` (times each arm was shown) and ``values_`` (its mean reward, 0 before any)."""

    def __init__(self, n_arms: int, seed: int = 0):
        self.n_arms = _check_n_arms(self, n_arms)
        super().__init__(seed)

    def _reset(self) -> None:
        self.counts_ = np.zeros(self.n_arms, dtype=np.int64)
        self.values_ = np.zeros(self.n_arms)

    def _learn(self, arm, reward, features, user) -> None:
        self.counts_[arm] += 1
        self.values_[arm] += (reward - self.values_[arm]) / self.counts_[arm]  # running mean


class RandomPolicy(_CountingPolicy):
    """Shows a uniformly random arm every step (it still counts what it saw, in ``counts_`` / ``values_``)."""

    def select(self, features=None, user=None) -> int:
        return int(self.rng_.integers(self.n_arms))


class EpsilonGreedy(_CountingPolicy):
    r"""ε-greedy: draw :math:`u \sim U(0, 1)`; if :math:`u < \varepsilon` show a uniformly random arm (explore),
    else the arm of highest mean reward so far, :math:`\arg\max_a \hat\mu_a` (exploit; unplayed arms count 0).

    ``epsilon`` in [0, 1]: 0 never explores (greedy), 1 always does (random). With a fixed ε the policy keeps
    exploring forever, so its regret grows linearly — by about ε × (the best mean − the average mean) per step.
    """

    def __init__(self, n_arms: int, epsilon: float = 0.1, seed: int = 0):
        self.epsilon = _check_probability("EpsilonGreedy", "epsilon", epsilon)
        super().__init__(n_arms, seed)

    def select(self, features=None, user=None) -> int:
        if self.rng_.random() < self.epsilon:
            return int(self.rng_.integers(self.n_arms))
        return int(np.argmax(self.values_))


class UCB1(_CountingPolicy):
    r"""UCB1 (Auer, Cesa-Bianchi & Fischer 2002): optimism in the face of uncertainty. Each arm not yet shown is
    shown once (lowest index first); after that, at step :math:`t` (the number of rewards seen),

    .. math:: a_t = \arg\max_a\; \hat\mu_a + c\,\sqrt{\frac{2\ln t}{n_a}},

    the mean reward plus a bonus that shrinks as the arm is tried (:math:`n_a`) and grows slowly with time, so
    no arm is abandoned for good. :math:`c = 1` is Auer's rule (its regret is :math:`O(\sum_a \ln T/\Delta_a)`);
    a smaller ``c`` explores less, which usually pays on short horizons and many arms.
    """

    def __init__(self, n_arms: int, c: float = 0.1, seed: int = 0):
        self.c = check_number("UCB1", "c", c)
        super().__init__(n_arms, seed)

    def select(self, features=None, user=None) -> int:
        untried = np.flatnonzero(self.counts_ == 0)
        if len(untried):
            return int(untried[0])
        return int(np.argmax(self.indices()))

    def indices(self) -> np.ndarray:
        """Every arm's upper confidence bound :math:`\\hat\\mu_a + c\\sqrt{2\\ln t / n_a}` (``inf`` if unplayed)."""
        with np.errstate(divide="ignore"):
            bonus = self.c * np.sqrt(2 * np.log(max(self.t_, 1)) / self.counts_)
        return np.where(self.counts_ > 0, self.values_ + bonus, np.inf)


class ThompsonSampling(Policy):
    r"""Thompson sampling for clicks (Beta–Bernoulli). Each arm's click probability gets a prior
    :math:`\mathrm{Beta}(a, b)`; after :math:`S_a` clicks and :math:`F_a` non-clicks the posterior is
    :math:`\mathrm{Beta}(a + S_a, b + F_a)`. Each step draws one sample per arm from its posterior and shows
    the arm of the largest sample — each arm is shown with the posterior probability that it is the best.

    The draw is ``rng.beta(a + successes_, b + failures_)``, one call over all arms, with
    ``rng = np.random.default_rng(seed)``: the same generator reproduces the choice by hand. A reward
    :math:`r \in [0, 1]` adds :math:`r` to the successes and :math:`1 - r` to the failures.
    """

    def __init__(self, n_arms: int, a: float = 1.0, b: float = 1.0, seed: int = 0):
        self.n_arms = _check_n_arms(self, n_arms)
        self.a = check_number("ThompsonSampling", "a (the prior's clicks)", a, positive=True)
        self.b = check_number("ThompsonSampling", "b (the prior's non-clicks)", b, positive=True)
        super().__init__(seed)

    def _reset(self) -> None:
        self.successes_ = np.zeros(self.n_arms)
        self.failures_ = np.zeros(self.n_arms)

    def select(self, features=None, user=None) -> int:
        return int(np.argmax(self.rng_.beta(self.a + self.successes_, self.b + self.failures_)))

    def _learn(self, arm, reward, features, user) -> None:
        self.successes_[arm] += reward
        self.failures_[arm] += 1 - reward


class LinUCB(Policy):
    r"""LinUCB (Li, Chu, Langford & Schapire 2010): the expected reward of arm :math:`a` is linear in its context
    vector, :math:`E[r \mid x_a] = x_a^\top\theta`. After the shown contexts :math:`x_1..x_n` and rewards
    :math:`r_1..r_n`, ridge regression gives

    .. math:: A = \lambda I + \sum_s x_s x_s^\top, \qquad b = \sum_s r_s x_s, \qquad \hat\theta = A^{-1} b,

    and :math:`\sqrt{x^\top A^{-1} x}` is the width of the confidence interval of :math:`x^\top\hat\theta` (up to
    the noise scale). The policy shows

    .. math:: a_t = \arg\max_a\; x_a^\top\hat\theta + \alpha\sqrt{x_a^\top A^{-1} x_a}.

    ``alpha`` ≥ 0 scales the exploration bonus (0: greedy ridge regression), ``reg`` > 0 is :math:`\lambda`.
    The arms' contexts are the ``features`` passed to each call (``n_arms × d``: here film vectors; they may
    change from step to step). ``per_user=True`` keeps one :math:`(A, b)` per ``user`` — a θ per user over shared
    film vectors; ``False`` keeps one θ for everyone (personal only if the features carry the user).
    :math:`A^{-1}` is updated by Sherman–Morrison, :math:`O(d^2)` per step; a choice costs :math:`O(n_{arms} d^2)`.
    Fitted state: ``A_inv_`` and ``b_`` (dicts keyed by user, or by ``None`` when shared), ``n_features_``.
    """

    def __init__(self, alpha: float = 0.5, reg: float = 1.0, per_user: bool = True, seed: int = 0):
        self.alpha = check_number("LinUCB", "alpha", alpha)
        self.reg = check_number("LinUCB", "reg", reg, positive=True)
        self.per_user = check_bool("LinUCB", "per_user", per_user)
        super().__init__(seed)

    def _reset(self) -> None:
        self.A_inv_: dict = {}
        self.b_: dict = {}
        self.n_features_: int | None = None

    def _features(self, features) -> np.ndarray:
        if features is None:
            raise ValueError("LinUCB needs the arms' context vectors: pass features, an array n_arms × d (one row "
                             "per candidate film)")
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"LinUCB: features must be a non-empty 2-D array (n_arms × d, one row per candidate "
                             f"film, at least one film), got shape {x.shape}; an empty candidate set has nothing "
                             "to show")
        if self.n_features_ is None:
            self.n_features_ = x.shape[1]
        elif x.shape[1] != self.n_features_:
            raise ValueError(f"LinUCB: features have {x.shape[1]} columns but the policy has learned with "
                             f"{self.n_features_}; pass the same kind of vectors every step, or reset()")
        return x

    def _state(self, user):
        key = user if self.per_user else None
        if key not in self.A_inv_:
            self.A_inv_[key] = np.eye(self.n_features_) / self.reg
            self.b_[key] = np.zeros(self.n_features_)
        return self.A_inv_[key], self.b_[key]

    def theta(self, user=None) -> np.ndarray:
        r""":math:`\hat\theta = A^{-1}b` of ``user`` (or the shared one); zeros for a user never updated."""
        A_inv, b = self._state(user)
        return A_inv @ b

    def indices(self, features, user=None) -> np.ndarray:
        r"""Every arm's upper confidence bound :math:`x_a^\top\hat\theta + \alpha\sqrt{x_a^\top A^{-1} x_a}`."""
        x = self._features(features)
        A_inv, b = self._state(user)
        width = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", x, A_inv, x), 0.0))
        return x @ (A_inv @ b) + self.alpha * width

    def select(self, features=None, user=None) -> int:
        return int(np.argmax(self.indices(features, user)))

    def _learn(self, arm, reward, features, user) -> None:
        x = self._features(features)[arm]
        A_inv, b = self._state(user)
        Ax = A_inv @ x
        A_inv -= np.outer(Ax, Ax) / (1.0 + x @ Ax)  # Sherman–Morrison: (A + x xᵀ)⁻¹, in place
        b += reward * x


# --------------------------------------------------------------------------------------------
# environments
# --------------------------------------------------------------------------------------------
def click_probabilities(world: SyntheticData) -> np.ndarray:
    r""":math:`\sigma(s_{ui})` for every user × film of the world: the probability that user ``u`` opens film ``i``
    when shown it — the ``"click"`` response of :func:`recsys_course.stream.feedback_loop`."""
    if not isinstance(world, SyntheticData):
        raise TypeError(f"click_probabilities needs the synthetic world make_synthetic returns (true tastes "
                        f"known), got {type(world).__name__}")
    return expit(world.true_scores())


def _pool(world: SyntheticData, candidates) -> np.ndarray:
    pool = np.asarray(candidates)
    n_items = len(world.item_factors)
    if pool.ndim != 1 or len(pool) == 0:
        raise ValueError("simulate: candidates is empty — a bandit needs at least one film to show; pass the "
                         "movieIds of the candidate pool (e.g. the 50 most-rated films)")
    if not np.issubdtype(pool.dtype, np.integer) or pool.min() < 1 or pool.max() > n_items \
            or len(np.unique(pool)) != len(pool):
        raise ValueError(f"simulate: candidates must be distinct movieIds of the world (1 .. {n_items}), got "
                         f"{pool[:5]!r}...; pick them from world.movies")
    return pool - 1  # movieIds 1..n_items → columns


def _arrivals(world: SyntheticData, n_steps: int, arrivals: str, rng) -> np.ndarray:
    n_users = len(world.user_factors)
    if arrivals == "uniform":
        return rng.integers(n_users, size=n_steps)
    activity = np.bincount(world.ratings[USER].to_numpy() - 1, minlength=n_users).astype(np.float64)
    return rng.choice(n_users, size=n_steps, p=activity / activity.sum())


def simulate(world: SyntheticData, policy: Policy, candidates, n_steps: int, *, features=None,
             arrivals: str = "uniform", seed: int = 0, progress: bool = False) -> pd.DataFrame:
    r"""Run ``policy`` online for ``n_steps`` steps in the synthetic world; the regret is exact.

    Step :math:`t`: user :math:`u_t` arrives (``arrivals``: ``"uniform"`` over users, or ``"activity"``, ∝ the
    user's number of ratings in ``world.ratings``); the policy shows arm :math:`a_t` of the pool (``candidates``,
    movieIds); the user clicks with probability :math:`p_{u a} = \sigma(s_{ua})`; the policy learns the click.

    .. math:: \text{regret}_t = \max_{a \in \text{pool}} p_{u_t a} - p_{u_t a_t}

    (the oracle knows each user's tastes and shows them their best film of the pool). The policy is
    :meth:`~Policy.reset` first; arrivals and clicks come from ``np.random.default_rng([seed, 1])``, a stream
    independent of the policy's own ``default_rng(seed)`` — with one generator seeded alike for both, a random
    policy's arms would copy the arrivals' random numbers, and a log would pair each film with the same few users.
    ``features`` (``len(candidates) × d``) are passed to every ``select`` / ``update`` (LinUCB reads them).

    Returns a frame, one row per step: ``step, userId, arm, movieId, click, expected`` (:math:`p_{u_t a_t}`),
    ``best`` (:math:`\max_a p_{u_t a}`), ``regret``.
    """
    if not isinstance(policy, Policy):
        raise TypeError(f"simulate: policy must be a bandit policy of recsys_course.bandits (EpsilonGreedy, UCB1, "
                        f"ThompsonSampling, LinUCB, RandomPolicy), got {type(policy).__name__}")
    probs = click_probabilities(world)
    pool = _pool(world, candidates)
    check_int("simulate", "n_steps", n_steps)
    check_int("simulate", "seed", seed, low=0)
    check_choice("simulate", "arrivals", arrivals, ARRIVALS)
    if policy.n_arms is not None and policy.n_arms != len(pool):
        raise ValueError(f"simulate: the policy has {policy.n_arms} arms but the pool has {len(pool)} films; build "
                         f"the policy with n_arms={len(pool)}")
    if features is not None:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or len(features) != len(pool):
            raise ValueError(f"simulate: features must have one row per candidate film ({len(pool)} × d), got shape "
                             f"{features.shape}")
    rng = np.random.default_rng([seed, 1])  # not default_rng(seed): that is the stream of a policy seeded alike
    users = _arrivals(world, n_steps, arrivals, rng)
    draws = rng.random(n_steps)
    p_pool = probs[:, pool]
    policy.reset()
    arms = np.empty(n_steps, dtype=np.int64)
    for t in _progress(range(n_steps), desc=type(policy).__name__, disable=not progress):
        u = int(users[t])
        arm = policy.select(features, u)
        arms[t] = arm
        policy.update(arm, float(draws[t] < p_pool[u, arm]), features, u)
    expected = p_pool[users, arms]
    best = p_pool[users].max(axis=1)
    return pd.DataFrame({"step": np.arange(1, n_steps + 1), USER: users + 1, "arm": arms, ITEM: pool[arms] + 1,
                         "click": (draws < expected).astype(np.int64), "expected": expected, "best": best,
                         "regret": best - expected})


def bernoulli_run(policy: Policy, means, n_steps: int, seed: int = 0) -> pd.DataFrame:
    r"""The textbook bandit: arm :math:`a` pays 1 with probability ``means[a]``, the same for everyone.

    Returns ``step, arm, reward, regret`` with :math:`\text{regret}_t = \max_a \mu_a - \mu_{a_t}`. The policy is
    reset first; step ``t`` pays 1 when ``np.random.default_rng([seed, 1]).random(n_steps)[t] < means[a_t]``
    (a stream independent of the policy's own, see :func:`simulate`).
    """
    mu = np.asarray(means, dtype=np.float64)
    if mu.ndim != 1 or len(mu) == 0:
        raise ValueError("bernoulli_run: means is empty — pass one click probability per arm (at least one arm)")
    if not np.all(np.isfinite(mu)) or mu.min() < 0 or mu.max() > 1:
        bad = mu[~((mu >= 0) & (mu <= 1))]
        raise ValueError(f"bernoulli_run: every mean is a Bernoulli probability and must lie in [0, 1], got "
                         f"{bad[:3].tolist()}; pass click probabilities, not scores")
    check_int("bernoulli_run", "n_steps", n_steps)
    if policy.n_arms is not None and policy.n_arms != len(mu):
        raise ValueError(f"bernoulli_run: the policy has {policy.n_arms} arms but means has {len(mu)}; build the "
                         f"policy with n_arms={len(mu)}")
    draws = np.random.default_rng([seed, 1]).random(n_steps)  # independent of a policy's default_rng(seed)
    policy.reset()
    arms = np.empty(n_steps, dtype=np.int64)
    for t in range(n_steps):
        arm = policy.select()
        arms[t] = arm
        policy.update(arm, float(draws[t] < mu[arm]))
    return pd.DataFrame({"step": np.arange(1, n_steps + 1), "arm": arms,
                         "reward": (draws < mu[arms]).astype(np.int64), "regret": mu.max() - mu[arms]})


@dataclass
class ReplayResult:
    """What :func:`replay` kept: ``rewards`` of the matched events (in log order), their ``positions`` in the log,
    and ``n_logged``, the log's length. ``estimate`` is the estimated click rate, ``running`` its value after
    each matched event."""

    rewards: np.ndarray
    positions: np.ndarray
    n_logged: int

    @property
    def n_matched(self) -> int:
        return len(self.rewards)

    @property
    def match_rate(self) -> float:
        return self.n_matched / self.n_logged if self.n_logged else float("nan")

    @property
    def estimate(self) -> float:
        return float(self.rewards.mean()) if self.n_matched else float("nan")

    @property
    def running(self) -> np.ndarray:
        return np.cumsum(self.rewards) / np.arange(1, self.n_matched + 1)


def replay(policy: Policy, log: pd.DataFrame, *, features=None, progress: bool = False) -> ReplayResult:
    r"""Offline evaluation by replay (Li, Chu, Langford & Wang 2011).

    ``log``: the logged events in time order, columns ``userId``, ``arm`` (the position of the logged film in the
    candidate pool) and ``reward`` (in [0, 1]). For each event the policy chooses (seeing the event's user and
    ``features``); if its choice equals the logged arm the event is *matched*: its reward is kept and the policy
    learns it; otherwise the event is skipped, as if it never happened. The estimate is the mean kept reward:

    .. math:: \hat{\text{CTR}} = \frac{\sum_t r_t\,[\pi(x_t) = a_t]}{\sum_t [\pi(x_t) = a_t]}.

    Unbiased when the log was made by a **uniformly random** policy over the same ``K`` arms; then about
    ``1/K`` of the events match. The policy is :meth:`~Policy.reset` first.
    """
    if not isinstance(policy, Policy):
        raise TypeError(f"replay: policy must be a bandit policy of recsys_course.bandits, got "
                        f"{type(policy).__name__}")
    missing = [c for c in (USER, "arm", "reward") if c not in getattr(log, "columns", [])]
    if missing:
        raise ValueError(f"replay: the log needs columns {USER!r}, 'arm' and 'reward', missing {missing}; build it "
                         "from a simulate() run (arm, click → reward) or from logged events")
    arms = log["arm"].to_numpy()
    rewards = log["reward"].to_numpy(np.float64)
    users = log[USER].to_numpy()
    n_arms = policy.n_arms if policy.n_arms is not None else (len(features) if features is not None else None)
    if len(arms) and (not np.issubdtype(arms.dtype, np.integer) or arms.min() < 0
                      or (n_arms is not None and arms.max() >= n_arms)):
        raise ValueError(f"replay: log['arm'] must hold integer positions in the candidate pool (0 .. "
                         f"{(n_arms or 1) - 1}), got values from {arms.min()} to {arms.max()}")
    if len(rewards) and (not np.all(np.isfinite(rewards)) or rewards.min() < 0 or rewards.max() > 1):
        raise ValueError("replay: log['reward'] must lie in [0, 1] (a click, or rating >= 4 as 1); rescale it")
    policy.reset()
    kept = []
    for t in _progress(range(len(arms)), desc=f"replay {type(policy).__name__}", disable=not progress):
        u = users[t]
        if policy.select(features, u) == arms[t]:
            kept.append(t)
            policy.update(int(arms[t]), float(rewards[t]), features, u)
    positions = np.asarray(kept, dtype=np.int64)
    return ReplayResult(rewards[positions], positions, len(arms))
