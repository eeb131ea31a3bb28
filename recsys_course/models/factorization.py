r"""Matrix factorisation and its relatives (notebook 04).

Rating models (``predicts_ratings = True``, rating track):

* :class:`BiasedMF` — :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`, mini-batch Adam in PyTorch, L2
  regularisation, early stopping on a validation slice of train, then a refit on all of train.
* :class:`ALS` — the same model with the biases of :class:`~recsys_course.models.BiasBaseline` and the factors
  fitted by alternating closed-form ridge regressions (NumPy).

Ranking models (scores are not ratings, ranking track):

* :class:`PureSVD` — truncated SVD of the user × item rating matrix with missing entries as 0
  (Cremonesi, Koren & Turrin 2010).
* :class:`ImplicitALS` — weighted ALS for implicit feedback (Hu, Koren & Volinsky 2008).
* :class:`BPR` — Bayesian personalised ranking with sampled negatives, PyTorch (Rendle et al. 2009).
* :class:`EASE` — the closed-form item-item linear autoencoder of Steck (2019).

Helpers (not re-exported by :mod:`recsys_course.models`; import them from this module):
:func:`als_half_step`, :func:`implicit_als_half_step`, :func:`implicit_als_half_step_cg`, :func:`ease_weights`,
:func:`similar_items`.

BiasedMF and BPR are :class:`~recsys_course.models.torch_train.TorchRecommender` models: their networks
(:class:`~recsys_course.networks.factorization.MFNet`, :class:`~recsys_course.networks.factorization.BPRNet`)
train through the course's one early-stopping protocol (``val_size``, ``val_split``, ``patience``, ``refit``).

Default hyper-parameters are the values tuned in notebook 04 on validation slices of the canonical train splits
(each user's most recent training ratings held out), never on the test sets. Every fitted model stores
``fit_seconds_``.

Every model here refuses to ``recommend`` for users it has never seen (:class:`UnknownIdError`); what
``predict`` does with unknown users and items is stated in each class.
"""
from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import check_bool, check_choice, check_int, check_number, require_known_users
from ..config import ITEM, RATING, USER
from .base import Recommender, UnknownIdError
from .baselines import BiasBaseline
from .torch_train import TorchRecommender, TrainingSetup

__all__ = ["BiasedMF", "ALS", "PureSVD", "ImplicitALS", "BPR", "EASE"]


def _gather(values: np.ndarray, pos: np.ndarray, fill=0.0) -> np.ndarray:
    """``values[pos]`` with ``fill`` where ``pos == -1`` (rows for arrays of any trailing shape)."""
    out = values[np.maximum(pos, 0)]
    mask = pos < 0
    if mask.any():
        out = out.copy()
        out[mask] = fill
    return out


# --------------------------------------------------------------------------------------------
# closed-form building blocks
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, built once: building it reads the process' memory map,
    which costs milliseconds once torch is loaded — more than a one-user fold-in itself (a service folds in one
    user per event)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _one_blas_thread():
    """A context in which BLAS runs on one thread (many small products: threads only add overhead)."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _solve_rows(indptr, indices, gram_w, rhs_w, Y, reg: float, base=None, block: int = 2048):
    r"""For every row r of a CSR structure solve
    :math:`(B + \sum_{j \in r} w_j\, y_j y_j^\top + \lambda I)\, x_r = \sum_{j \in r} v_j\, y_j`.

    ``gram_w`` are the :math:`w_j`, ``rhs_w`` the :math:`v_j` (one per stored entry), ``base`` the matrix
    :math:`B` shared by all rows (``None`` = 0). Rows without entries get :math:`x_r = 0`. Vectorised: within a
    block of rows, rows with the same number of entries are stacked and their Gram matrices built by one
    batched matrix product; then the block's systems are solved as one batch (memory ``block`` × k² floats).
    """
    Y = np.asarray(Y, dtype=np.float64)
    indptr = np.asarray(indptr, dtype=np.int64)
    n_rows, k = len(indptr) - 1, Y.shape[1]
    counts = np.diff(indptr)
    X = np.zeros((n_rows, k))
    shared = reg * np.eye(k) + (0.0 if base is None else base)
    rows_all = np.flatnonzero(counts > 0)
    with _one_blas_thread():  # many small products: threads only add overhead
        for start in range(0, len(rows_all), block):
            rows = rows_all[start:start + block]
            A = np.empty((len(rows), k, k))
            b = np.empty((len(rows), k))
            c_rows = counts[rows]
            for c in np.unique(c_rows):
                sel = np.flatnonzero(c_rows == c)
                entries = indptr[rows[sel]][:, None] + np.arange(c)      # (n_c, c) positions of the entries
                Yr = Y[indices[entries]]                                  # (n_c, c, k)
                A[sel] = np.matmul(Yr.transpose(0, 2, 1), gram_w[entries][..., None] * Yr)
                b[sel] = np.einsum("nc,nck->nk", rhs_w[entries], Yr)
            A += shared
            X[rows] = np.linalg.solve(A, b[..., None])[..., 0]
    return X


def als_half_step(R, Y, reg: float) -> np.ndarray:
    r"""One half-step of explicit ALS: for every row :math:`u` of the sparse matrix ``R``

    .. math:: p_u = (Q_u^\top Q_u + \lambda I)^{-1} Q_u^\top r_u,

    where :math:`Q_u` holds the rows of ``Y`` (shape ``(n_cols, k)``) of the columns ``u`` has an entry in and
    :math:`r_u` those entries (stored zeros count as observed zeros). Rows without entries get 0. Call it
    with ``R.T`` and the user factors to update the items. Cost: :math:`O(\mathrm{nnz}\,k^2 + n_{\text{rows}} k^3)`.
    """
    check_number("als_half_step", "reg", reg, positive=True)  # > 0 keeps every solve well-posed
    R = sp.csr_matrix(R)
    R.sort_indices()
    return _solve_rows(R.indptr, R.indices, np.ones(R.nnz), R.data.astype(np.float64), Y, reg)


def implicit_als_half_step(R, Y, reg: float, alpha: float) -> np.ndarray:
    r"""One half-step of weighted ALS for implicit feedback (Hu, Koren & Volinsky 2008).

    ``R`` holds the observed interaction strengths :math:`r_{ui} > 0` (sparse; everything else is 0). With
    preference :math:`p_{ui} = \mathbb 1[r_{ui} > 0]` and confidence :math:`c_{ui} = 1 + \alpha r_{ui}`, every
    row is solved in closed form

    .. math:: x_u = (Y^\top C_u Y + \lambda I)^{-1} Y^\top C_u\, p_u
              = \big(Y^\top Y + Y^\top (C_u - I) Y + \lambda I\big)^{-1} \sum_{i \in R(u)} c_{ui}\, y_i,

    with :math:`Y^\top Y` computed once for all rows and :math:`C_u - I` non-zero only on the items ``u``
    interacted with — the trick that makes the dense weighted problem cost :math:`O(\mathrm{nnz}\,k^2 + n k^3)`.
    """
    check_number("implicit_als_half_step", "reg", reg, positive=True)
    check_number("implicit_als_half_step", "alpha", alpha)
    R = sp.csr_matrix(R)
    R.sort_indices()
    Y = np.asarray(Y, dtype=np.float64)
    strength = R.data.astype(np.float64)
    return _solve_rows(R.indptr, R.indices, alpha * strength, 1.0 + alpha * strength, Y, reg, base=Y.T @ Y)


def implicit_als_half_step_cg(R, Y, X0, reg: float, alpha: float, steps: int = 3) -> np.ndarray:
    r"""The half-step of :func:`implicit_als_half_step` solved approximately by ``steps`` conjugate-gradient
    iterations started from the current factors ``X0`` (Takács, Pilászy & Tikk 2011).

    CG only needs products :math:`A_u v = (Y^\top Y + \lambda I) v + \sum_{i \in R(u)} \alpha r_{ui}\,
    (y_i^\top v)\, y_i`, which cost :math:`O(\mathrm{nnz}\,k)` for all rows at once — no :math:`k \times k`
    system per row. Warm-started, 2–3 steps per half-step are enough in practice; after :math:`k` steps CG
    is exact up to rounding. Cost :math:`O(\mathrm{steps} \cdot \mathrm{nnz}\, k + n k^2)`.
    """
    check_number("implicit_als_half_step_cg", "reg", reg, positive=True)
    check_number("implicit_als_half_step_cg", "alpha", alpha)
    check_int("implicit_als_half_step_cg", "steps", steps)
    R = sp.csr_matrix(R)
    Y = np.asarray(Y, dtype=np.float64)
    X = np.array(X0, dtype=np.float64, copy=True)
    k = Y.shape[1]
    rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
    Yj = Y[R.indices]                                   # (nnz, k)
    w = alpha * R.data.astype(np.float64)               # c_ui - 1
    M = Y.T @ Y + reg * np.eye(k)
    sel = sp.csr_matrix((np.ones(R.nnz), np.arange(R.nnz), R.indptr), shape=(R.shape[0], R.nnz))
    b = np.asarray(sel @ ((1.0 + w)[:, None] * Yj))

    def matvec(V):
        return V @ M + np.asarray(sel @ ((w * np.einsum("ij,ij->i", Yj, V[rows]))[:, None] * Yj))

    with _one_blas_thread():
        return _cg(matvec, b, X, steps)


def _cg(matvec, b, X, steps):
    """``steps`` conjugate-gradient iterations for all rows at once, from ``X`` (modified in place)."""
    resid = b - matvec(X)
    direction = resid.copy()
    rs_old = np.einsum("ij,ij->i", resid, resid)
    for _ in range(steps):
        Ap = matvec(direction)
        denom = np.einsum("ij,ij->i", direction, Ap)
        step = np.divide(rs_old, denom, out=np.zeros_like(rs_old), where=denom > 0)
        X += step[:, None] * direction
        resid -= step[:, None] * Ap
        rs_new = np.einsum("ij,ij->i", resid, resid)
        beta = np.divide(rs_new, rs_old, out=np.zeros_like(rs_new), where=rs_old > 0)
        direction = resid + beta[:, None] * direction
        rs_old = rs_new
    return X


def ease_weights(X, reg: float, dtype=np.float64) -> np.ndarray:
    r"""EASE's closed form (Steck 2019): the item × item weights :math:`B` minimising
    :math:`\lVert X - XB\rVert_F^2 + \lambda \lVert B\rVert_F^2` subject to :math:`\mathrm{diag}(B) = 0`:

    .. math:: P = (X^\top X + \lambda I)^{-1}, \qquad B = I - P\,\mathrm{diagMat}(1 / \mathrm{diag}(P)),

    i.e. :math:`B_{ij} = -P_{ij} / P_{jj}` off the diagonal and 0 on it. ``X`` is users × items (sparse or
    dense). The inverse of the symmetric positive-definite Gram matrix comes from a Cholesky factorisation
    (LAPACK ``potrf``/``potri``): :math:`O(n_{\text{items}}^3)` time and :math:`n_{\text{items}}^2` memory.
    """
    from scipy.linalg import lapack

    check_number("ease_weights", "reg", reg, positive=True)
    dtype = np.dtype(check_choice("ease_weights", "dtype", str(np.dtype(dtype)), ("float32", "float64")))
    X = sp.csr_matrix(X, dtype=np.float64)
    if X.shape[0] * X.shape[1] <= 50_000_000:  # small enough to densify: one BLAS product
        dense = X.toarray().astype(dtype)
        G = dense.T @ dense
    else:
        G = np.asarray((X.T @ X).toarray(), dtype=dtype)
    G[np.diag_indices_from(G)] += reg
    potrf, potri = (lapack.spotrf, lapack.spotri) if dtype == np.float32 else (lapack.dpotrf, lapack.dpotri)
    chol, info = potrf(G, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"the Gram matrix is not positive definite (LAPACK info={info}); increase reg")
    P, info = potri(chol, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverting the Gram matrix failed (LAPACK info={info})")
    P = np.triu(P) + np.triu(P, 1).T  # potri fills one triangle
    B = P / (-np.diag(P))[None, :]
    B[np.diag_indices_from(B)] = 0.0
    return B


def similar_items(item_factors: np.ndarray, item_ids, query, n: int = 5) -> pd.DataFrame:
    r"""The ``n`` items closest to each ``query`` item in factor space, by cosine similarity
    :math:`\cos(q_i, q_j) = q_i^\top q_j / (\lVert q_i\rVert\,\lVert q_j\rVert)`.

    ``item_factors`` is ``(n_items, k)`` with rows in the order of ``item_ids``. Returns a frame
    ``query, movieId, similarity, rank`` (the query itself excluded). Unknown query ids raise
    :class:`UnknownIdError`.
    """
    item_ids = np.asarray(item_ids)
    index = pd.Index(item_ids)
    query = np.atleast_1d(np.asarray(query))
    pos = index.get_indexer(query)
    if (pos < 0).any():
        raise UnknownIdError(f"item(s) {list(query[pos < 0])} have no factors (not in the training data)")
    F = np.asarray(item_factors, dtype=np.float64)
    norms = np.linalg.norm(F, axis=1)
    unit = F / np.where(norms > 0, norms, 1.0)[:, None]
    sims = unit[pos] @ unit.T
    sims[np.arange(len(pos)), pos] = -np.inf
    frames = [pd.DataFrame({"query": query[:0], ITEM: item_ids[:0], "similarity": np.zeros(0),
                            "rank": np.zeros(0, dtype=int)})]
    for q, row in zip(query, sims):
        top = np.argsort(-row, kind="stable")[:n]
        frames.append(pd.DataFrame({"query": q, ITEM: item_ids[top], "similarity": row[top],
                                    "rank": np.arange(1, len(top) + 1)}))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------
# rating models
# --------------------------------------------------------------------------------------------
class BiasedFactorScores:
    r"""Scoring shared by the biased factor models (:class:`BiasedMF`, :class:`recsys_course.federated.FederatedMF`):
    :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i` from the fitted ``mu_``, ``user_bias_``, ``item_bias_``,
    ``user_factors_`` and ``item_factors_``; an unknown user or film (position -1) contributes no bias and no
    factors, and ``predict`` clips to ``rating_range_``."""

    def _raw(self, users, items):
        dot = (_gather(self.user_factors_, users) * _gather(self.item_factors_, items)).sum(1)
        return self.mu_ + _gather(self.user_bias_, users) + _gather(self.item_bias_, items) + dot

    def _predict(self, users, items):
        return np.clip(self._raw(users, items), *self.rating_range_)

    def _pair_values(self, users, items):
        return self._raw(users, items)

    def _score_users(self, users):
        return (self.mu_ + self.user_bias_[users][:, None] + self.item_bias_[None, :]
                + self.user_factors_[users] @ self.item_factors_.T)


class BiasedMF(BiasedFactorScores, TorchRecommender):
    r"""Biased matrix factorisation, :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`, trained in PyTorch.

    The network is :class:`recsys_course.networks.factorization.MFNet`. Minimises, by mini-batch Adam over the
    training ratings :math:`\mathcal R`,

    .. math:: \frac{1}{|\mathcal B|}\sum_{(u,i) \in \mathcal B} \Big[(r_{ui} - \hat r_{ui})^2
              + \lambda\,(\lVert p_u\rVert^2 + \lVert q_i\rVert^2) + \lambda_b\,(b_u^2 + b_i^2)\Big]

    for each mini-batch :math:`\mathcal B` (the per-rating L2 penalty of Koren, Bell & Volinsky 2009):
    ``reg`` is :math:`\lambda` and ``reg_bias`` :math:`\lambda_b` (read only with ``train_biases=True``), both
    penalties *inside* the loss, on the rows a batch touches; ``weight_decay`` is Adam's own L2 term on every
    trainable parameter instead (default 0, see the glossary in CONTRIBUTING.md).

    * **Biases.** With ``bias_init="baseline"`` :math:`\mu, b_u, b_i` start from
      :class:`~recsys_course.models.BiasBaseline` (closed-form ridge biases); ``"zero"`` starts them at 0.
      With ``train_biases=False`` (the default) they stay fixed and only the factors learn the residual —
      a stagewise fit that, on the small MovieLens set, generalises better than learning everything at once.
    * **Early stopping** (the protocol of :class:`~recsys_course.models.torch_train.TorchRecommender`). With
      ``val_size`` set (default 0.2 with ``val_split="last"``: each user's most recent 20 % of training
      ratings), the model trains on the rest for at most ``n_epochs`` epochs and stops when the validation
      RMSE has not improved for ``patience`` epochs. With ``refit=True`` it is then trained again, from the
      same initialisation, on *all* of train for the best number of epochs (the held-out ratings are each
      user's most recent — the most useful ones for predicting the future). ``val_size=None`` trains
      ``n_epochs`` epochs on everything.
    * **Unknown ids.** ``predict`` for an unknown user returns :math:`\mu + b_i`, for an unknown item
      :math:`\mu + b_u`, for both :math:`\mu`; ``recommend`` raises :class:`UnknownIdError` for unknown users.
      Predictions are clipped to the training rating range; ``recommend`` ranks by the unclipped score.
    * **Cost.** :math:`O(|\mathcal R|\,k)` per epoch; a few seconds on ml-latest-small on a laptop CPU.
    * **Transfer (notebook 09).** ``init_from`` — a fitted ``BiasedMF`` with the same ``n_factors`` — starts the
      factors of every user and film it knows from its values instead of at random, and takes its
      :math:`\mu` and film biases (the user biases are then refitted in closed form on this train) —
      fine-tuning a pretrained model; ``freeze_items=True`` (needs ``init_from``) then trains the user factors
      only: the films keep the pretrained vectors, and films the pretrained model never saw keep zero factors
      (their biases still come from this train). ``n_trainable_params_`` counts what was trained.

    Defaults were tuned on a validation slice of the rating-track train split (notebook 04). After ``fit``:
    ``mu_``, ``user_bias_``, ``item_bias_``, ``user_factors_``, ``item_factors_``, and from the protocol
    ``history_`` (the early-stopping run's :class:`~recsys_course.models.torch_train.History`), ``best_epoch_``
    (the chosen number of epochs), ``loss_``, ``fit_seconds_``.
    """

    predicts_ratings = True

    def __init__(self, n_factors: int = 32, lr: float = 0.003, reg: float = 0.1, reg_bias: float = 0.0,
                 weight_decay: float = 0.0, n_epochs: int = 30, batch_size: int = 1024, patience: int | None = 3,
                 val_size: int | float | None = 0.2, val_split: str = "last", refit: bool = True,
                 init_std: float = 0.01, bias_init: str = "baseline", train_biases: bool = False,
                 init_from: BiasedMF | None = None, freeze_items: bool = False, device=None, seed: int = 0,
                 verbose: bool = True):
        self.n_factors = n_factors
        self.lr = lr
        self.reg = reg
        self.reg_bias = reg_bias
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.init_std = init_std
        self.bias_init = bias_init
        self.train_biases = train_biases
        self.init_from = init_from
        self.freeze_items = freeze_items
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "reg", self.reg)
        check_number(self, "reg_bias", self.reg_bias)
        check_number(self, "init_std", self.init_std)
        check_choice(self, "bias_init", self.bias_init, ("baseline", "zero"))
        check_bool(self, "train_biases", self.train_biases)
        check_bool(self, "freeze_items", self.freeze_items)
        src = self.init_from
        if src is not None and (not isinstance(src, BiasedMF) or not hasattr(src, "item_factors_")):
            raise ValueError("BiasedMF: init_from must be a fitted BiasedMF (the pretrained model), got "
                             f"{type(src).__name__}")
        if src is not None and src.item_factors_.shape[1] != self.n_factors:
            raise ValueError(f"BiasedMF: init_from has {src.item_factors_.shape[1]} factors, this model "
                             f"{self.n_factors}; use the same n_factors to start from it")
        if self.freeze_items and src is None:
            raise ValueError("BiasedMF: freeze_items=True keeps the film factors fixed, so they must come from a "
                             "pretrained model: pass init_from=<a fitted BiasedMF>")

    def _biases(self, frame: pd.DataFrame):
        """(mu, b_u, b_i) on this model's full index, fitted on ``frame`` (ids absent from it get 0)."""
        if self.bias_init == "zero":
            return float(frame[RATING].mean()), np.zeros(self.n_users), np.zeros(self.n_items)
        base = BiasBaseline().fit(frame)
        bu = np.zeros(self.n_users)
        bi = np.zeros(self.n_items)
        bu[self._user_index.get_indexer(base.user_ids_)] = base.user_bias_
        bi[self._item_index.get_indexer(base.item_ids_)] = base.item_bias_
        return base.mu_, bu, bi

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        import torch

        from ..networks.factorization import MFNet

        u = self._user_index.get_indexer(frame[USER])
        i = self._item_index.get_indexer(frame[ITEM])
        r = frame[RATING].to_numpy(np.float32)
        mu, bu, bi = self._biases(frame)
        if self.init_from is not None:
            mu, bu, bi = self._transferred_biases(frame, u, i, bi)
        network = MFNet(self.n_users, self.n_items, self.n_factors, mu, bu, bi, self.init_std, self.train_biases,
                        generator)
        with torch.no_grad():  # ids absent from this frame keep zero factors (they never get a gradient)
            network.P[torch.as_tensor(np.setdiff1d(np.arange(self.n_users), u))] = 0.0
            network.Q[torch.as_tensor(np.setdiff1d(np.arange(self.n_items), i))] = 0.0
            if self.init_from is not None:
                self._start_from(network, self.init_from)
        if self.freeze_items:
            network.Q.requires_grad_(False)
        self.n_trainable_params_ = int(sum(p.numel() for p in network.parameters() if p.requires_grad))
        reg, reg_bias = float(self.reg), float(self.reg_bias) if self.train_biases else 0.0

        def loss(m, uu, ii, rr):
            p, q = m.P[uu], m.Q[ii]
            err = m.mu + m.bu[uu] + m.bi[ii] + (p * q).sum(1) - rr
            out = (err ** 2).mean() + reg * ((p ** 2).sum(1) + (q ** 2).sum(1)).mean()
            if reg_bias:
                out = out + reg_bias * (m.bu[uu] ** 2 + m.bi[ii] ** 2).mean()
            return out

        return TrainingSetup(network, loss, (u, i, r))

    def _validation_predictions(self, setup: TrainingSetup, network, users, items):
        import torch

        if "val_pairs" not in setup.state:
            setup.state["val_pairs"] = (torch.as_tensor(users, device=self.device_),
                                        torch.as_tensor(items, device=self.device_))
        return network(*setup.state["val_pairs"])

    def _transferred_biases(self, frame: pd.DataFrame, u: np.ndarray, i: np.ndarray, bi_here: np.ndarray):
        r"""(mu, b_u, b_i) when starting from ``init_from``: its mu and the item biases of the films it knows
        (films it never saw keep this frame's baseline bias), then the user biases in closed form on this
        frame given those, :math:`b_u = \sum_{i \in R(u)} (r_{ui} - \mu - b_i) / (\lambda_u + |R(u)|)` with
        BiasBaseline's :math:`\lambda_u`."""
        src = self.init_from
        bi = bi_here.copy()
        pos = self._item_index.get_indexer(src.item_ids_)
        bi[pos[pos >= 0]] = src.item_bias_[pos >= 0]
        resid = frame[RATING].to_numpy(np.float64) - src.mu_ - bi[i]
        n_u = np.bincount(u, minlength=self.n_users)
        bu = np.bincount(u, resid, minlength=self.n_users) / (BiasBaseline().reg_user + n_u)
        return src.mu_, bu, bi

    def _start_from(self, network, src: BiasedMF) -> None:
        """Copy the pretrained factors of every user and film ``src`` knows into ``network`` (in place)."""
        import torch

        for table, ids, index, values in [(network.P, src.user_ids_, self._user_index, src.user_factors_),
                                          (network.Q, src.item_ids_, self._item_index, src.item_factors_)]:
            pos = index.get_indexer(ids)
            known = pos >= 0
            table[torch.as_tensor(pos[known])] = torch.as_tensor(values[known], dtype=table.dtype)
        if self.freeze_items:  # films the pretrained model never saw: no vector to keep, so none at all
            unseen = np.setdiff1d(np.arange(self.n_items), self._item_index.get_indexer(src.item_ids_))
            network.Q[torch.as_tensor(unseen)] = 0.0

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        network = setup.network
        self.mu_ = float(network.mu.cpu())
        self.user_bias_ = network.bu.detach().cpu().numpy().astype(np.float64)
        self.item_bias_ = network.bi.detach().cpu().numpy().astype(np.float64)
        self.user_factors_ = network.P.detach().cpu().numpy().astype(np.float64)
        self.item_factors_ = network.Q.detach().cpu().numpy().astype(np.float64)


class ALS(Recommender):
    r"""Biased matrix factorisation fitted by alternating least squares in closed form (NumPy).

    The biases :math:`\mu, b_u, b_i` come from :class:`~recsys_course.models.BiasBaseline` (its defaults);
    the factors are fitted to the residuals :math:`e_{ui} = r_{ui} - \mu - b_u - b_i` by minimising
    :math:`\sum_{(u,i) \in \mathcal R} (e_{ui} - p_u^\top q_i)^2 + \lambda(\sum_u \lVert p_u\rVert^2 + \sum_i
    \lVert q_i\rVert^2)`. With :math:`Q` fixed the problem splits into one ridge regression per user,

    .. math:: p_u = (Q_u^\top Q_u + \lambda I)^{-1} Q_u^\top e_u,

    (:math:`Q_u` = the factors of the items :math:`u` rated), and symmetrically for the items; each half-step
    is exact, so the loss never increases. Prediction :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`,
    clipped to the rating range; unknown users/items fall back like :class:`BiasedMF` (factor 0).
    Cost per iteration :math:`O(|\mathcal R| k^2 + (n_u + n_i) k^3)`. ``train_rmse_`` holds the training RMSE
    after each iteration.
    """

    predicts_ratings = True

    def __init__(self, n_factors: int = 32, reg: float = 15.0, n_iters: int = 5, init_std: float = 0.1,
                 seed: int = 0):
        self.n_factors = n_factors
        self.reg = reg
        self.n_iters = n_iters
        self.init_std = init_std
        self.seed = seed

    def _fit(self, train, users, items):
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "reg", self.reg, positive=True)
        check_int(self, "n_iters", self.n_iters)
        check_number(self, "init_std", self.init_std, positive=True)
        check_int(self, "seed", self.seed, low=0)
        start = time.perf_counter()
        base = BiasBaseline().fit(train)  # same ids and order as this model
        self.mu_, self.user_bias_, self.item_bias_ = base.mu_, base.user_bias_, base.item_bias_
        resid = train[RATING].to_numpy(np.float64) - self.mu_ - self.user_bias_[users] - self.item_bias_[items]
        E = sp.csr_matrix((resid, (users, items)), shape=(self.n_users, self.n_items))
        Et = E.T.tocsr()
        rng = np.random.default_rng(self.seed)
        Q = rng.normal(0.0, self.init_std, (self.n_items, self.n_factors))
        P = np.zeros((self.n_users, self.n_factors))
        self.train_rmse_ = []
        for _ in range(self.n_iters):
            P = als_half_step(E, Q, self.reg)
            Q = als_half_step(Et, P, self.reg)
            fitted = (P[users] * Q[items]).sum(1)
            self.train_rmse_.append(float(np.sqrt(np.mean((resid - fitted) ** 2))))
        self.user_factors_, self.item_factors_ = P, Q
        self.fit_seconds_ = time.perf_counter() - start

    _raw = BiasedMF._raw
    _predict = BiasedMF._predict
    _pair_values = BiasedMF._pair_values
    _score_users = BiasedMF._score_users


# --------------------------------------------------------------------------------------------
# ranking models
# --------------------------------------------------------------------------------------------
class _RankingFactors(Recommender):
    """Shared ``predict`` of the ranking models: score of known pairs; unknown items score ``-inf`` (the model
    cannot rank them); unknown users raise :class:`UnknownIdError`."""

    def _predict(self, users, items):
        require_known_users(self, users)
        known = items >= 0
        out = np.full(len(users), -np.inf)
        if known.any():
            out[known] = self._pair_scores(users[known], items[known])
        return out

    def _pair_scores(self, users, items):
        return (self.user_factors_[users] * self.item_factors_[items]).sum(1)

    def _score_users(self, users):
        require_known_users(self, users)
        return self.user_factors_[users] @ self.item_factors_.T


class PureSVD(_RankingFactors):
    r"""PureSVD (Cremonesi, Koren & Turrin 2010): a truncated SVD of the user × item rating matrix with every
    missing entry read as 0, :math:`R \approx U_k \Sigma_k V_k^\top`, and the score

    .. math:: s_u = r_u V_k V_k^\top,

    the user's rating row projected on the top-:math:`k` item space. Treating missing as 0 is exactly what makes
    it a good *ranker* (an item nobody rated scores low) and a bad *rating predictor* (the reconstruction
    of an unrated cell is pulled towards 0). Not a rating model. ``binary=True`` factorises the 0/1
    interaction matrix instead. Uses ``scipy.sparse.linalg.svds`` (ARPACK, seeded); cost roughly
    :math:`O(\mathrm{nnz}\,k)` per Lanczos step. Unknown items score ``-inf``; unknown users raise.
    """

    def __init__(self, n_factors: int = 32, binary: bool = False, seed: int = 0):
        self.n_factors = n_factors
        self.binary = binary
        self.seed = seed

    def _fit(self, train, users, items):
        from scipy.sparse.linalg import svds

        check_int(self, "n_factors", self.n_factors)
        check_bool(self, "binary", self.binary)
        check_int(self, "seed", self.seed, low=0)
        if self.n_factors >= min(self.n_users, self.n_items):
            raise ValueError(f"PureSVD: n_factors must be smaller than min(n_users, n_items) = "
                             f"{min(self.n_users, self.n_items)}, got {self.n_factors}")
        start = time.perf_counter()
        values = np.ones(len(train)) if self.binary else train[RATING].to_numpy(np.float64)
        R = sp.csr_matrix((values, (users, items)), shape=(self.n_users, self.n_items))
        v0 = np.random.default_rng(self.seed).uniform(-1, 1, min(R.shape))
        U, s, Vt = svds(R, k=self.n_factors, v0=v0)
        order = np.argsort(-s, kind="stable")
        U, s, Vt = U[:, order], s[order], Vt[order]
        sign = np.sign(Vt[np.arange(len(s)), np.abs(Vt).argmax(1)])  # a deterministic sign per component
        U, Vt = U * sign, Vt * sign[:, None]
        self.singular_values_ = s
        self.item_factors_ = Vt.T                      # V_k
        self.user_factors_ = np.asarray(R @ Vt.T)      # r_u V_k  (= U_k Σ_k)
        self.fit_seconds_ = time.perf_counter() - start


class ImplicitALS(_RankingFactors):
    r"""Weighted ALS for implicit feedback (Hu, Koren & Volinsky 2008).

    Every (user, item) cell counts: preference :math:`p_{ui} = 1` if the user rated the item, else 0, with
    confidence :math:`c_{ui} = 1 + \alpha\, r_{ui}` (``r_ui`` = the rating if ``use_ratings`` else 1; 1 for
    unobserved cells). Minimises

    .. math:: \sum_{u,i} c_{ui}\,(p_{ui} - x_u^\top y_i)^2 + \lambda\Big(\sum_u \lVert x_u\rVert^2
              + \sum_i \lVert y_i\rVert^2\Big)

    by alternating the closed forms of :func:`implicit_als_half_step`
    (:math:`x_u = (Y^\top Y + Y^\top (C_u - I) Y + \lambda I)^{-1} Y^\top C_u p_u`): ``solver="exact"``
    solves every :math:`k \times k` system, ``solver="cg"`` (default) takes ``cg_steps`` warm-started
    conjugate-gradient steps instead (:func:`implicit_als_half_step_cg`; Takács, Pilászy & Tikk 2011), which is
    several times faster for the same accuracy. User factors start at 0 and item factors at
    :math:`\mathcal N(0, \text{init\_std}^2)`. Score
    :math:`x_u^\top y_i` (a predicted preference, not a rating). Unknown items score ``-inf``; unknown users
    raise. Cost per iteration :math:`O(\mathrm{nnz}\,k^2 + (n_u + n_i) k^3)`.
    """

    def __init__(self, n_factors: int = 32, reg: float = 10.0, alpha: float = 0.3, n_iters: int = 10,
                 use_ratings: bool = True, solver: str = "cg", cg_steps: int = 3, init_std: float = 0.01,
                 seed: int = 0):
        self.n_factors = n_factors
        self.reg = reg
        self.alpha = alpha
        self.n_iters = n_iters
        self.use_ratings = use_ratings
        self.solver = solver
        self.cg_steps = cg_steps
        self.init_std = init_std
        self.seed = seed

    def _fit(self, train, users, items):
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "reg", self.reg, positive=True)
        check_number(self, "alpha", self.alpha)
        check_int(self, "n_iters", self.n_iters)
        check_bool(self, "use_ratings", self.use_ratings)
        check_choice(self, "solver", self.solver, ("cg", "exact"))
        check_int(self, "cg_steps", self.cg_steps)
        check_number(self, "init_std", self.init_std, positive=True)
        check_int(self, "seed", self.seed, low=0)
        start = time.perf_counter()
        strength = train[RATING].to_numpy(np.float64) if self.use_ratings else np.ones(len(train))
        if (strength <= 0).any():
            raise ValueError("ImplicitALS with use_ratings=True needs positive ratings (they set the confidence)")
        R = sp.csr_matrix((strength, (users, items)), shape=(self.n_users, self.n_items))
        Rt = R.T.tocsr()
        rng = np.random.default_rng(self.seed)
        Y = rng.normal(0.0, self.init_std, (self.n_items, self.n_factors))
        X = np.zeros((self.n_users, self.n_factors))
        for _ in range(self.n_iters):
            if self.solver == "exact":
                X = implicit_als_half_step(R, Y, self.reg, self.alpha)
                Y = implicit_als_half_step(Rt, X, self.reg, self.alpha)
            else:
                X = implicit_als_half_step_cg(R, Y, X, self.reg, self.alpha, self.cg_steps)
                Y = implicit_als_half_step_cg(Rt, X, Y, self.reg, self.alpha, self.cg_steps)
        self.user_factors_, self.item_factors_ = X, Y
        self.fit_seconds_ = time.perf_counter() - start


class BPR(_RankingFactors, TorchRecommender):
    r"""Bayesian personalised ranking (Rendle, Freudenthaler, Gantner & Schmidt-Thieme 2009), in PyTorch.

    Score :math:`x_{ui} = p_u^\top q_i + b_i` (the network is
    :class:`recsys_course.networks.factorization.BPRNet`). Every training pair :math:`(u, i)` with a rating of
    at least ``min_rating`` (``None``: every rating) is a positive; each epoch draws ``n_negatives`` items per
    positive uniformly from the items :math:`u` has not rated and keeps the one the model currently scores
    highest, :math:`j` (``n_negatives=1`` is the original uniform sampler; more candidates give the "adaptive",
    hard-negative sampling of Rendle & Freudenthaler 2014, which learns faster). Mini-batch Adam minimises

    .. math:: \frac{1}{|\mathcal B|}\sum_{(u,i,j) \in \mathcal B} \Big[-\ln \sigma(x_{ui} - x_{uj})
              + \lambda\,(\lVert p_u\rVert^2 + \lVert q_i\rVert^2 + \lVert q_j\rVert^2)
              + \lambda_b\,(b_i^2 + b_j^2)\Big],

    a smooth surrogate of the AUC: it only asks that a positive outscores a negative. ``reg`` (:math:`\lambda`)
    and ``reg_bias`` (:math:`\lambda_b`) are penalties inside the loss, on the rows a batch touches;
    ``weight_decay`` is Adam's own L2 term on every parameter instead (default 0).

    Early stopping (the protocol of :class:`~recsys_course.models.torch_train.TorchRecommender`): with
    ``val_size`` set (default 10 with ``val_split="last"``: each user's 10 most recent training ratings; users
    with fewer than 11 keep everything), the model trains on the rest and stops when NDCG@10 on the held-out
    items rated ≥ 4 has not improved for ``patience`` epochs; with ``refit=True`` it is then retrained from the
    same initialisation on all of train for the best number of epochs. ``history_`` holds the validation run,
    ``best_epoch_`` the chosen epochs, ``loss_`` the training loss per epoch of the final fit. After ``fit``:
    ``user_factors_``, ``item_factors_``, ``item_bias_``. Unknown items score ``-inf``; unknown users raise.
    Cost :math:`O(|\mathcal R|\,k \cdot n_{\text{negatives}})` per epoch.
    """

    def __init__(self, n_factors: int = 64, lr: float = 0.005, reg: float = 0.0, reg_bias: float = 0.0,
                 weight_decay: float = 0.0, n_negatives: int = 5, min_rating: float | None = 4.0,
                 n_epochs: int = 40, batch_size: int = 2048, patience: int | None = 4,
                 val_size: int | float | None = 10, val_split: str = "last", refit: bool = True,
                 init_std: float = 0.01, device=None, seed: int = 0, verbose: bool = True):
        self.n_factors = n_factors
        self.lr = lr
        self.reg = reg
        self.reg_bias = reg_bias
        self.weight_decay = weight_decay
        self.n_negatives = n_negatives
        self.min_rating = min_rating
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.init_std = init_std
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "reg", self.reg)
        check_number(self, "reg_bias", self.reg_bias)
        check_int(self, "n_negatives", self.n_negatives)
        check_number(self, "min_rating", self.min_rating, allow_none=True)
        check_number(self, "init_std", self.init_std)

    def _sampler(self, u: np.ndarray, i: np.ndarray, seen_u: np.ndarray, seen_i: np.ndarray):
        """``data(epoch, generator)`` for the training loop: positives (u, i) and, each epoch, fresh negative
        candidates j of shape (n, n_negatives), none of them an item the user rated (``seen_u, seen_i``)."""
        import torch

        n_items, n_neg = self.n_items, self.n_negatives
        keys = np.unique(seen_u.astype(np.int64) * n_items + seen_i)
        if len(keys) >= len(np.unique(seen_u)) * n_items:
            raise ValueError("BPR: some user has rated every item, so there is no negative to sample")
        ut = torch.as_tensor(u, dtype=torch.int64)
        it = torch.as_tensor(i, dtype=torch.int64)
        owner = np.repeat(u.astype(np.int64), n_neg)

        def data(epoch, generator):
            j = torch.randint(n_items, (len(u) * n_neg,), generator=generator)
            todo = np.arange(len(owner))
            for _ in range(50):  # resample the candidates that hit a rated item
                query = owner[todo] * n_items + j.numpy()[todo]
                pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
                todo = todo[keys[pos] == query]
                if len(todo) == 0:
                    break
                j[torch.as_tensor(todo)] = torch.randint(n_items, (len(todo),), generator=generator)
            return ut, it, j.reshape(len(u), n_neg)

        return data

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        import torch

        from ..networks.factorization import BPRNet

        u = self._user_index.get_indexer(frame[USER])
        i = self._item_index.get_indexer(frame[ITEM])
        positive = np.ones(len(frame), dtype=bool) if self.min_rating is None else \
            frame[RATING].to_numpy() >= self.min_rating
        if not positive.any():
            raise ValueError(f"BPR: no training rating is >= min_rating={self.min_rating}; lower it or use None")
        network = BPRNet(self.n_users, self.n_items, self.n_factors, self.init_std, generator)
        reg, reg_bias = float(self.reg), float(self.reg_bias)

        def loss(m, uu, ii, jj):
            p, qi = m.P[uu], m.Q[ii]
            if jj.shape[1] > 1:  # keep the candidate the model ranks highest: the hardest negative
                with torch.no_grad():
                    pick = ((p[:, None, :] * m.Q[jj]).sum(2) + m.b[jj]).argmax(1)
                jj = jj.gather(1, pick[:, None])
            jj = jj[:, 0]
            qj = m.Q[jj]
            diff = (p * (qi - qj)).sum(1) + m.b[ii] - m.b[jj]
            out = -torch.nn.functional.logsigmoid(diff).mean()
            out = out + reg * ((p ** 2).sum(1) + (qi ** 2).sum(1) + (qj ** 2).sum(1)).mean()
            if reg_bias:
                out = out + reg_bias * (m.b[ii] ** 2 + m.b[jj] ** 2).mean()
            return out

        return TrainingSetup(network, loss, self._sampler(u[positive], i[positive], u, i))

    def _validation_scores(self, setup: TrainingSetup, network, users: np.ndarray):
        import torch

        return network.score_all(torch.as_tensor(users, device=self.device_))

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        network = setup.network
        self.user_factors_ = network.P.detach().cpu().numpy().astype(np.float64)
        self.item_factors_ = network.Q.detach().cpu().numpy().astype(np.float64)
        self.item_bias_ = network.b.detach().cpu().numpy().astype(np.float64)

    def _pair_scores(self, users, items):
        return super()._pair_scores(users, items) + self.item_bias_[items]

    def _score_users(self, users):
        return super()._score_users(users) + self.item_bias_[None, :]


class EASE(Recommender):
    r"""EASE, "embarrassingly shallow autoencoder" (Steck 2019): score :math:`s_u = x_u B` with the item × item
    weights of :func:`ease_weights`,

    .. math:: B = I - P\,\mathrm{diagMat}(1/\mathrm{diag}(P)), \qquad P = (X^\top X + \lambda I)^{-1},

    where :math:`X` is the user × item matrix of training ratings (0 where there is none; ``binary=True``
    uses 1 for every rating, as in the paper — on MovieLens the rating values rank better). The constraint
    :math:`\mathrm{diag}(B) = 0` stops an item from explaining itself.

    **Cost and the item cut.** The inverse is :math:`O(n^3)` in the number of items modelled and needs
    :math:`n^2` floats: all ~9.7 k items of ml-latest-small take tens of seconds on a laptop, so by default only
    items with at least ``min_item_count`` training interactions are modelled (``1`` = all). The others are
    never recommended: their score is ``-inf`` in ``recommend`` and ``predict``. Weights are computed in
    ``dtype`` (float32 by default: half the memory, about twice the speed, and scores only need their order).
    Unknown items score ``-inf``; unknown users raise :class:`UnknownIdError`.
    """

    def __init__(self, reg: float = 3000.0, min_item_count: int = 5, binary: bool = False, dtype: str = "float32"):
        self.reg = reg
        self.min_item_count = min_item_count
        self.binary = binary
        self.dtype = dtype

    def _fit(self, train, users, items):
        check_number(self, "reg", self.reg, positive=True)
        check_int(self, "min_item_count", self.min_item_count)
        check_bool(self, "binary", self.binary)
        check_choice(self, "dtype", str(self.dtype), ("float32", "float64"))
        start = time.perf_counter()
        counts = np.bincount(items, minlength=self.n_items)
        self.modelled_ = np.flatnonzero(counts >= self.min_item_count)
        if len(self.modelled_) == 0:
            raise ValueError(f"EASE: no item has min_item_count={self.min_item_count} interactions; lower it")
        values = np.ones(len(train)) if self.binary else train[RATING].to_numpy(np.float64)
        X = sp.csr_matrix((values, (users, items)), shape=(self.n_users, self.n_items))
        self.X_ = X[:, self.modelled_].tocsr().astype(self.dtype)
        self.B_ = ease_weights(self.X_, self.reg, dtype=self.dtype)
        self.fit_seconds_ = time.perf_counter() - start

    def _score_users(self, users):
        require_known_users(self, users)
        out = np.full((len(users), self.n_items), -np.inf)
        out[:, self.modelled_] = np.asarray(self.X_[users] @ self.B_, dtype=np.float64)
        return out

    def _predict(self, users, items):
        require_known_users(self, users)
        col = pd.Index(self.modelled_).get_indexer(items)  # -1 for unknown or unmodelled items
        out = np.full(len(users), -np.inf)
        ok = np.flatnonzero(col >= 0)
        for start in range(0, len(ok), 1024):  # chunks keep the dense (pairs × items) blocks small
            part = ok[start:start + 1024]
            xb = self.X_[users[part]].toarray()
            out[part] = (xb * self.B_[:, col[part]].T).sum(1)
        return out
