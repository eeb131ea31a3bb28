r"""Federated matrix factorisation: FedAvg (McMahan et al. 2017) and its private variant DP-FedAvg (McMahan et al. 2018).

Every user is a **client** that keeps its ratings, its user vector :math:`p_u` and its user bias :math:`b_u` on
its own device. The server holds only the **item table** :math:`\theta_i = (q_i, c_i)` (factors and item bias);
the global mean :math:`\mu` is one public number (a secure sum of the clients' :math:`(\sum r, n)` would give
it; it is not counted in the privacy budget). The model is biased MF,

.. math:: \hat r_{ui} = \mu + b_u + c_i + p_u^\top q_i ,

and client :math:`u` minimises its own mean loss with the per-rating L2 penalty of ``BiasedMF``:

.. math:: L_u = \frac{1}{n_u} \sum_{i \in R(u)} \Big[(r_{ui} - \hat r_{ui})^2
          + \lambda\,(\lVert p_u\rVert^2 + \lVert q_i\rVert^2)\Big], \qquad
          L = \sum_u \frac{n_u}{N} L_u = \frac1N \sum_{(u,i)} [\dots]

(:math:`N` ratings in all; biases are not penalised). **One round** of FedAvg:

1. the server samples ``participation`` × (number of users) clients :math:`S` (without replacement) and sends
   them the item table :math:`\theta`;
2. each client runs ``local_epochs`` full-batch gradient steps (step ``lr``) on :math:`L_u` over its own
   :math:`p_u, b_u` and its own copy of :math:`\theta`, keeps :math:`p_u, b_u`, and sends back only its
   update :math:`\Delta_u = \theta_u - \theta` — non-zero only on the rows of the films it rated;
3. the server averages, weighted by the number of ratings (FedAvg), and moves the table by ``server_lr``:
   :math:`\theta \leftarrow \theta + \eta_s \sum_{u \in S} \frac{n_u}{\sum_{v \in S} n_v} \Delta_u`.

**Equal to central training in the limit.** With every client, one local step and no clipping or noise,
:math:`\sum_u \frac{n_u}{N}\Delta_u = -\eta \sum_u \frac{n_u}{N} \nabla_\theta L_u = -\eta \nabla_\theta L`,
so a round is one full-batch gradient step on :math:`L`: step :math:`\eta\,\eta_s` on the item table and
:math:`\eta N / n_u` on user :math:`u`'s :math:`(p_u, b_u)` (since :math:`\nabla_{p_u} L = \frac{n_u}{N}
\nabla_{p_u} L_u`: each user's gradient rescaled by its share of the data). :func:`central_step` computes that
step from the full gradient (:func:`mf_gradients`); ``FederatedMF(central=True)`` trains with it. The two agree
to floating-point rounding (``tests/test_federated.py`` checks 1e-10).

**Why a server learning rate.** A row :math:`q_i` moves, in the weighted average, by about
:math:`\eta\, n_i / N` times its mean gradient (:math:`n_i` ratings of film :math:`i`): with 80,000 ratings even
a popular film barely moves. ``server_lr`` :math:`\eta_s > 1` (FedAvg with a server step, Reddi et al. 2021)
makes up for it; ``server_lr=1`` is plain FedAvg.

**Privacy** (``clip``, ``noise_multiplier``). A raw update reveals exactly which films the client rated (its
non-zero rows). DP-FedAvg clips each client's whole update to L2 norm :math:`S` (``clip``),
:math:`\tilde\Delta_u = \Delta_u \min(1, S/\lVert\Delta_u\rVert_2)`, counts every client once (uniform
weights: weighting by :math:`n_u` would let a heavy rater count more, and raise the sensitivity), and adds
Gaussian noise of standard deviation :math:`zS` (:math:`z` = ``noise_multiplier``) to the sum of the clipped
updates before dividing by :math:`|S|`:

* ``noise="central"``: the server (trusted, or behind secure aggregation) adds one draw to the sum. Adding or
  removing one user moves the sum by at most :math:`S`, so each round is the Gaussian mechanism, which is
  :math:`\rho = 1/(2z^2)`-zero-concentrated DP (Bun & Steinke 2016); :math:`T` rounds compose to
  :math:`\rho = T/(2z^2)` and give user-level :math:`(\varepsilon, \delta)`-DP with
  :math:`\varepsilon = \rho + 2\sqrt{\rho \ln(1/\delta)}` (:func:`zcdp_epsilon`; conservative: no credit for
  sampling only a share of the clients). It protects what the *released item table* says about any one user;
  it does **not** hide the raw updates (and so the rated films) from a server that sees them.
* ``noise="local"``: every client adds its own draw to its clipped update before sending it, so the server
  never sees a raw update (every row is noisy). The sum then carries :math:`|S|` draws, i.e. standard deviation
  :math:`zS\sqrt{|S|}` — far more noise for the same :math:`z`. The fit draws that sum's noise directly (the
  same distribution as adding the clients' draws one by one).

What the guarantee does not cover: :math:`\mu`; who took part in which round; the hyper-parameters (chosen
here on non-private runs); the user vectors, which never leave the device (predictions for user :math:`u` are
made on the device).

Unknown ids: an unknown item gets :math:`\mu + b_u` (no factors, item bias 0); an unknown user gets
:math:`\mu + c_i` in ``predict`` and :class:`~recsys_course.models.base.UnknownIdError` in ``recommend`` (the
user vector lives on that user's device). Predictions are clipped to the training rating range.

Cost of a round: :math:`O(E\,|R_S|\,k)` for the clients' local steps (vectorised over all clients at once with
sparse matrices) plus :math:`O(n_\text{items} k)` for the server; a few milliseconds on ml-latest-small.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import check_bool, check_choice, check_int, check_number, is_number
from .config import RATING
from .models.base import Recommender
from .models.factorization import BiasedFactorScores

__all__ = ["FederatedMF", "ClientRatings", "init_tables", "local_training", "server_aggregate", "clip_updates",
           "client_update", "mf_gradients", "central_step", "zcdp_epsilon"]

NOISE_PLACES = ("central", "local")


# --------------------------------------------------------------------------------------------
# the pieces of a round, on integer positions
# --------------------------------------------------------------------------------------------
@dataclass
class ClientRatings:
    """The ratings of some clients, one row per rating, grouped by client (positions, not ids).

    ``client`` (user position of each rating), ``item`` (item position), ``rating``; ``n_per_client`` is
    :math:`n_u` of every user position (length ``n_users``).
    """

    client: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    n_per_client: np.ndarray

    @classmethod
    def build(cls, users, items, ratings, n_users: int) -> ClientRatings:
        users = np.asarray(users, dtype=np.int64)
        order = np.argsort(users, kind="stable")
        return cls(users[order], np.asarray(items, dtype=np.int64)[order],
                   np.asarray(ratings, dtype=np.float64)[order], np.bincount(users, minlength=n_users))

    def of(self, clients: np.ndarray) -> ClientRatings:
        """Only the ratings of ``clients`` (user positions)."""
        keep = np.isin(self.client, clients)
        return ClientRatings(self.client[keep], self.item[keep], self.rating[keep], self.n_per_client)

    def per_client(self, values: np.ndarray) -> sp.csr_matrix:
        """Sparse (n_users × ratings) matrix ``A`` with ``values`` at (client, rating): ``A @ X`` sums rows by client."""
        n = len(self.client)
        return sp.csr_matrix((values, (self.client, np.arange(n))), shape=(len(self.n_per_client), n))

    def per_item(self, n_items: int, values: np.ndarray) -> sp.csr_matrix:
        """Sparse (n_items × ratings) matrix with ``values`` at (item, rating): ``B @ X`` sums rows by item."""
        n = len(self.item)
        return sp.csr_matrix((values, (self.item, np.arange(n))), shape=(n_items, n))


def init_tables(n_users: int, n_items: int, n_factors: int, init_std: float = 0.1, seed: int = 0):
    """The starting point of every run: ``(P, b_u, theta)``.

    ``P`` (n_users × k) and the factor columns of ``theta`` (n_items × (k + 1)) are drawn from
    :math:`\\mathcal N(0, \\sigma^2)` (``init_std``), users first, with ``np.random.default_rng(seed)``; the
    biases (``b_u`` and the last column of ``theta``) start at 0.
    """
    rng = np.random.default_rng(seed)
    P = rng.normal(0.0, init_std, (n_users, n_factors))
    theta = np.zeros((n_items, n_factors + 1))
    theta[:, :n_factors] = rng.normal(0.0, init_std, (n_items, n_factors))
    return P, np.zeros(n_users), theta


def local_training(P, bu, theta, mu: float, batch: ClientRatings, lr: float, reg: float, local_epochs: int):
    r"""Every client of ``batch`` trains on its own ratings at once; returns ``(P, b_u, D)``.

    Client :math:`u` starts from the server's rows :math:`\theta_i = (q_i, c_i)` of the films it rated and takes
    ``local_epochs`` full-batch gradient steps of size ``lr`` on :math:`L_u` (module docstring), updating
    :math:`p_u, b_u` and its copies of those rows together (both gradients taken at the same point):

    .. math:: e_{ui} = r_{ui} - \mu - b_u - c_i - p_u^\top q_i ,\quad
              \nabla_{p_u} L_u = \tfrac{2}{n_u}\textstyle\sum_i (-e_{ui} q_i) + 2\lambda p_u ,\quad
              \nabla_{b_u} L_u = \tfrac{2}{n_u}\textstyle\sum_i (-e_{ui}),\\
              \nabla_{q_i} L_u = \tfrac{2}{n_u}(-e_{ui} p_u + \lambda q_i),\quad
              \nabla_{c_i} L_u = \tfrac{2}{n_u}(-e_{ui}).

    Returns new copies of ``P`` and ``b_u`` (rows of clients outside ``batch`` unchanged) and ``D``, one row per
    rating of ``batch``: client :math:`u`'s update of row :math:`i`, :math:`\theta_{u,i} - \theta_i` — the
    non-zero rows of :math:`\Delta_u`. Vectorised: the sums over a client's ratings are sparse products.
    """
    k = P.shape[1]
    P, bu = P.copy(), bu.copy()
    u, i = batch.client, batch.item
    w = 2.0 / batch.n_per_client[u]
    A = batch.per_client(w)                        # (n_users × ratings): sums w·x over each client's ratings
    active = np.zeros(len(P), dtype=bool)
    active[u] = True
    rows = theta[i].copy()                         # each client's own copy of the rows it touches
    for _ in range(local_epochs):
        q, c = rows[:, :k], rows[:, k]
        err = batch.rating - mu - bu[u] - c - np.einsum("ij,ij->i", P[u], q)
        grad_p = A @ (-err[:, None] * q) + 2.0 * reg * P * active[:, None]
        grad_b = A @ (-err)
        grad_rows = np.empty_like(rows)
        grad_rows[:, :k] = w[:, None] * (-err[:, None] * P[u] + reg * q)
        grad_rows[:, k] = w * (-err)
        P -= lr * grad_p
        bu -= lr * grad_b
        rows -= lr * grad_rows
    return P, bu, rows - theta[i]


def clip_updates(D, batch: ClientRatings, clip: float):
    r"""Scale each client's update to L2 norm at most ``clip``: :math:`\Delta_u \min(1, S / \lVert\Delta_u\rVert_2)`.

    The norm is over the client's whole update (every row it touched, factors and bias). Returns the clipped
    ``D`` and each user position's norm before clipping (0 for clients outside ``batch``).
    """
    norms = np.sqrt(batch.per_client(np.ones(len(D))) @ np.einsum("ij,ij->i", D, D))
    scale = np.minimum(1.0, clip / np.maximum(norms, 1e-300))
    return D * scale[batch.client][:, None], norms


def server_aggregate(D, batch: ClientRatings, n_items: int, weights: np.ndarray) -> np.ndarray:
    r"""The server's average of the clients' updates: :math:`\sum_u w_u \Delta_u / \sum_u w_u` (n_items × (k+1)).

    ``weights`` has one entry per user position (only the clients of ``batch`` are read): :math:`n_u` for
    FedAvg, 1 for the uniform average of DP-FedAvg. Equal to Flower's
    ``flwr.server.strategy.aggregate.aggregate`` on the clients' dense updates (the notebook shows it), but it
    never builds them: rows are summed straight into the table with one sparse product.
    """
    clients = np.unique(batch.client)
    total = float(weights[clients].sum())
    return batch.per_item(n_items, weights[batch.client] / total) @ D


def client_update(D, batch: ClientRatings, client: int, n_items: int) -> np.ndarray:
    """One client's update as the server receives it: a dense (n_items × (k+1)) table, zero where it rated nothing."""
    out = np.zeros((n_items, D.shape[1]))
    mine = batch.client == client
    out[batch.item[mine]] = D[mine]
    return out


def mf_gradients(P, bu, theta, mu: float, batch: ClientRatings, reg: float):
    r"""The loss :math:`L` (mean over all ratings of ``batch``, module docstring) and its full gradient.

    Returns ``(loss, grad_P, grad_bu, grad_theta)`` of :math:`L = \frac1N \sum_{(u,i)} [e_{ui}^2 +
    \lambda(\lVert p_u\rVert^2 + \lVert q_i\rVert^2)]` — the central, non-federated computation.
    """
    k = P.shape[1]
    u, i, n = batch.client, batch.item, len(batch.client)
    q, c = theta[i, :k], theta[i, k]
    err = batch.rating - mu - bu[u] - c - np.einsum("ij,ij->i", P[u], q)
    loss = float(np.mean(err ** 2 + reg * (np.einsum("ij,ij->i", P[u], P[u]) + np.einsum("ij,ij->i", q, q))))
    A = batch.per_client(np.full(n, 2.0 / n))
    grad_P = A @ (-err[:, None] * q) + (2.0 * reg / n) * batch.n_per_client[:, None] * P
    grad_bu = A @ (-err)
    per_rating = np.empty((n, k + 1))
    per_rating[:, :k] = -err[:, None] * P[u] + reg * q
    per_rating[:, k] = -err
    grad_theta = batch.per_item(len(theta), np.full(n, 2.0 / n)) @ per_rating
    return loss, grad_P, grad_bu, grad_theta


def central_step(P, bu, theta, mu: float, batch: ClientRatings, lr: float, server_lr: float, reg: float):
    r"""One full-batch gradient step of central training on :math:`L`, the step one FedAvg round equals in the limit.

    Step :math:`\eta\,\eta_s` (``lr × server_lr``) on the item table and :math:`\eta N / n_u` on user
    :math:`u`'s :math:`p_u, b_u`. Returns ``(P, b_u, theta)``.
    """
    _, grad_P, grad_bu, grad_theta = mf_gradients(P, bu, theta, mu, batch, reg)
    step_u = lr * len(batch.client) / np.maximum(batch.n_per_client, 1)
    return P - step_u[:, None] * grad_P, bu - step_u * grad_bu, theta - lr * server_lr * grad_theta


def zcdp_epsilon(noise_multiplier: float, n_rounds: int, delta: float = 1e-5) -> float:
    r"""User-level :math:`\varepsilon` of ``n_rounds`` Gaussian-mechanism rounds at :math:`\delta`, via zCDP.

    :math:`\rho = T / (2z^2)` (sensitivity :math:`S`, noise :math:`zS`, Bun & Steinke 2016, composed over
    :math:`T` rounds), :math:`\varepsilon = \rho + 2\sqrt{\rho \ln(1/\delta)}`. ``inf`` for :math:`z = 0`.
    Conservative: no amplification from sampling a share of the clients.
    """
    _hint(lambda: check_number("zcdp_epsilon", "noise_multiplier", noise_multiplier),
          "z is the noise's standard deviation in units of the clip S; 0 means no noise (epsilon = inf)")
    check_int("zcdp_epsilon", "n_rounds", n_rounds)
    if not (is_number(delta) and 0 < delta < 1):
        raise ValueError(f"zcdp_epsilon: delta must be a number strictly between 0 and 1 (e.g. 1e-5), got {delta!r}")
    if noise_multiplier == 0:
        return math.inf
    rho = n_rounds / (2.0 * noise_multiplier ** 2)
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def _hint(check: Callable[[], object], hint: str) -> None:
    """Run an argument check from :mod:`recsys_course.checks` and add what to do to its message."""
    try:
        check()
    except ValueError as exc:
        raise ValueError(f"{exc}; {hint}") from None


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------
class FederatedMF(BiasedFactorScores, Recommender):
    r"""Biased MF trained by FedAvg over clients = users, optionally with DP-FedAvg (see the module docstring).

    Parameters
    ----------
    n_factors, reg, init_std, seed
        As in ``BiasedMF`` (``reg`` = :math:`\lambda`, per rating, inside each client's loss).
    lr : float
        The clients' step size :math:`\eta` (full-batch gradient steps on their own mean loss).
    server_lr : float
        :math:`\eta_s`, the server's step on the averaged update (1 = plain FedAvg).
    n_rounds : int
        Communication rounds :math:`T`.
    local_epochs : int
        Gradient steps :math:`E` each sampled client takes on its own ratings per round.
    participation : float in (0, 1]
        Share of the clients sampled (without replacement, at least one) each round.
    clip : float or None
        L2 bound :math:`S` on each client's update; with it, every client counts once (uniform weights).
    noise_multiplier : float
        :math:`z`: Gaussian noise of standard deviation :math:`zS` on the sum of the clipped updates (needs ``clip``).
    noise : "central" or "local"
        Who adds the noise: the server, once per round, or every client on its own update.
    delta : float
        The :math:`\delta` of the reported :math:`\varepsilon` (``epsilon_``).
    central : bool
        Train centrally instead: one full-batch gradient step (:func:`central_step`) per round, the limit a
        FedAvg round reaches with every client, one local step, no clipping, no noise (those settings are
        required).
    monitor : callable or None
        ``monitor(model) -> float`` evaluated every ``monitor_every`` rounds and after the last (the model is
        usable inside: e.g. ``lambda m: evaluate(m, train, test)["rmse"]``), stored in ``history_["monitor"]``.

    After ``fit``: ``mu_``, ``user_factors_``, ``user_bias_`` (on the devices), ``item_factors_``,
    ``item_bias_`` (on the server), ``history_`` (a frame per round: ``round``, ``clients``, ``train_rmse`` —
    RMSE of all training ratings, a monitoring quantity a real deployment would gather from the clients —,
    ``update_norm`` — the mean norm of the clients' raw updates —, and ``monitor``), ``rho_`` and ``epsilon_``
    (the zCDP budget and :math:`\varepsilon` at ``delta``; ``inf`` without noise), ``fit_seconds_``.
    """

    predicts_ratings = True

    def __init__(self, n_factors: int = 16, lr: float = 0.2, server_lr: float = 100.0, reg: float = 0.1,
                 n_rounds: int = 100, local_epochs: int = 5, participation: float = 0.5,
                 clip: float | None = None, noise_multiplier: float = 0.0, noise: str = "central",
                 delta: float = 1e-5, init_std: float = 0.1, central: bool = False,
                 monitor: Callable | None = None, monitor_every: int = 10, seed: int = 0, verbose: bool = False):
        self.n_factors = n_factors
        self.lr = lr
        self.server_lr = server_lr
        self.reg = reg
        self.n_rounds = n_rounds
        self.local_epochs = local_epochs
        self.participation = participation
        self.clip = clip
        self.noise_multiplier = noise_multiplier
        self.noise = noise
        self.delta = delta
        self.init_std = init_std
        self.central = central
        self.monitor = monitor
        self.monitor_every = monitor_every
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        name = type(self).__name__
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "lr", self.lr, positive=True)
        check_number(self, "server_lr", self.server_lr, positive=True)
        check_number(self, "reg", self.reg)
        check_int(self, "n_rounds", self.n_rounds)
        _hint(lambda: check_int(self, "local_epochs", self.local_epochs),
              "each sampled client takes at least one gradient step per round (local_epochs=1 is the one-step limit)")
        if not (is_number(self.participation) and 0 < self.participation <= 1):
            raise ValueError(f"{name}: participation must be a share in (0, 1] (1 = every client every round), got "
                             f"{self.participation!r}; e.g. participation=0.5 samples half of the clients per round")
        _hint(lambda: check_number(self, "clip", self.clip, positive=True, allow_none=True),
              "clip is the L2 bound S on a client's update, e.g. clip=0.1; None turns clipping off")
        _hint(lambda: check_number(self, "noise_multiplier", self.noise_multiplier),
              "the noise's standard deviation is noise_multiplier × clip; use 0 for no noise")
        if self.noise_multiplier > 0 and self.clip is None:
            raise ValueError(f"{name}: noise_multiplier={self.noise_multiplier} needs a clip: the noise is scaled "
                             "to the bound S of the clipped updates; pass clip=<S>, e.g. clip=0.1")
        check_choice(self, "noise", self.noise, NOISE_PLACES)
        if not (is_number(self.delta) and 0 < self.delta < 1):
            raise ValueError(f"{name}: delta must be a number strictly between 0 and 1 (e.g. 1e-5), got "
                             f"{self.delta!r}")
        check_number(self, "init_std", self.init_std)
        check_bool(self, "central", self.central)
        if self.central and (self.participation != 1 or self.local_epochs != 1 or self.clip is not None
                             or self.noise_multiplier > 0):
            raise ValueError(f"{name}: central=True is the limit of FedAvg with every client, one local step and no "
                             "privacy; set participation=1, local_epochs=1, clip=None, noise_multiplier=0")
        if self.monitor is not None and not callable(self.monitor):
            raise ValueError(f"{name}: monitor must be a function model -> float or None, got {self.monitor!r}")
        check_int(self, "monitor_every", self.monitor_every)
        check_int(self, "seed", self.seed, low=0)
        check_bool(self, "verbose", self.verbose)

    # ---- training --------------------------------------------------------------------------------
    def _fit(self, train, users, items):
        import time

        from .progress import progress

        self._check_params()
        start = time.perf_counter()
        k = self.n_factors
        self.mu_ = float(train[RATING].mean())
        batch = ClientRatings.build(users, items, train[RATING].to_numpy(), self.n_users)
        P, bu, theta = init_tables(self.n_users, self.n_items, k, self.init_std, self.seed)
        rng = np.random.default_rng([self.seed, 1])     # client sampling and noise: a stream of its own
        n_clients = max(1, int(round(self.participation * self.n_users)))
        weights = batch.n_per_client.astype(np.float64) if self.clip is None else np.ones(self.n_users)
        rows = []
        rounds = progress(range(1, self.n_rounds + 1), desc=type(self).__name__, disable=not self.verbose)
        for t in rounds:
            if self.central:
                P, bu, theta = central_step(P, bu, theta, self.mu_, batch, self.lr, self.server_lr, self.reg)
                chosen, norm = self.n_users, math.nan
            else:
                clients = np.sort(rng.choice(self.n_users, n_clients, replace=False))
                part = batch if n_clients == self.n_users else batch.of(clients)
                P, bu, D = local_training(P, bu, theta, self.mu_, part, self.lr, self.reg, self.local_epochs)
                if self.clip is not None:
                    D, norms = clip_updates(D, part, self.clip)
                    norm = float(norms[clients].mean())
                else:
                    norm = float(np.sqrt(part.per_client(np.ones(len(D))) @ np.einsum("ij,ij->i", D, D))[clients]
                                 .mean())
                step = server_aggregate(D, part, self.n_items, weights)
                if self.noise_multiplier > 0:
                    draws = 1 if self.noise == "central" else n_clients
                    sd = self.noise_multiplier * self.clip * math.sqrt(draws) / n_clients
                    step = step + rng.normal(0.0, sd, step.shape)
                theta = theta + self.server_lr * step
                chosen = n_clients
            self._set_tables(P, bu, theta)
            row = {"round": t, "clients": chosen, "train_rmse": self._train_rmse(batch), "update_norm": norm}
            if self.monitor is not None and (t % self.monitor_every == 0 or t == self.n_rounds):
                row["monitor"] = float(self.monitor(self))
            rows.append(row)
        self.history_ = pd.DataFrame(rows)
        if "monitor" not in self.history_:
            self.history_["monitor"] = np.nan
        self.rho_ = math.inf if self.noise_multiplier == 0 else self.n_rounds / (2.0 * self.noise_multiplier ** 2)
        self.epsilon_ = zcdp_epsilon(self.noise_multiplier, self.n_rounds, self.delta)
        self.fit_seconds_ = time.perf_counter() - start

    def _set_tables(self, P, bu, theta) -> None:
        k = self.n_factors
        self.user_factors_, self.user_bias_ = P, bu
        self.item_factors_, self.item_bias_ = theta[:, :k].copy(), theta[:, k].copy()
        if not np.isfinite(theta).all() or not np.isfinite(P).all():
            raise FloatingPointError(f"{type(self).__name__} diverged (non-finite factors); lower lr or server_lr")

    def _train_rmse(self, batch: ClientRatings) -> float:
        pred = self._raw(batch.client, batch.item)
        return float(np.sqrt(np.mean((np.clip(pred, *self.rating_range_) - batch.rating) ** 2)))
