r"""Autoencoders for collaborative filtering (notebook 05).

An autoencoder learns a code :math:`z = g(x)` of an input vector :math:`x` and a decoder :math:`x' = f(z)` that
reconstructs it, by minimising a reconstruction loss such as :math:`L = \frac1n\sum \lVert x - x'\rVert^2`. In
a recommender the vectors are rows or columns of the user × item matrix, so the codes are user or item
representations, and the reconstruction *of the cells the user has not filled in* is the recommendation.

* :class:`AutoRec` — I-AutoRec (Sedhain, Menon, Sanner & Xie 2015): one item's column of star ratings in,
  the same column out, the loss **masked** to the observed ratings. A rating model (rating track).
* :class:`DAE` — a denoising autoencoder over users' binarised rows with input-dropout corruption and an
  optional user node, in the spirit of CDAE (Wu, DuBois, Zheng & Ester 2016). A ranking model.
* :class:`MultVAE` — the variational autoencoder with a multinomial likelihood and KL annealing of Liang,
  Krishnan, Hoffman & Jebara (2018). A ranking model.

Helpers (not re-exported by :mod:`recsys_course.models`; import them from this module):
:func:`masked_mse`, :func:`kl_beta`, :func:`gaussian_kl`, :func:`multinomial_nll`.

All three train with :func:`recsys_course.models.torch_train.train` (a text progress bar per epoch with the
loss, early stopping on a validation slice of train, the best weights restored), take ``device=None`` (CUDA,
then MPS, then CPU) and ``seed`` and are deterministic on the CPU for a fixed seed. Their first layers read
the input through ``torch.nn.functional.embedding_bag`` over the non-zero entries only, so the cost of the
encoder is proportional to the number of ratings, not to the size of the matrix.

Unknown users and items: :class:`AutoRec` predicts with a :class:`~recsys_course.models.BiasBaseline`
fitted on the same data; :class:`DAE` and :class:`MultVAE` score unknown items ``-inf`` and raise
:class:`~recsys_course.models.UnknownIdError` for unknown users. None of them can ``recommend`` for a user
absent from training.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..config import ITEM, RATING, RELEVANCE_THRESHOLD, USER
from .base import Recommender, UnknownIdError, top_k
from .baselines import BiasBaseline
from .torch_train import fit_early_stopped

__all__ = ["AutoRec", "DAE", "MultVAE"]

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")


# --------------------------------------------------------------------------------------------
# the losses and the annealing schedule (public helpers, tested on their own)
# --------------------------------------------------------------------------------------------
def masked_mse(pred, target, mask):
    r"""Mean squared reconstruction error over the **observed** cells only,

    .. math:: L_{\text{masked}} = \frac{\sum_{u,i} m_{ui}\,(r_{ui} - \hat r_{ui})^2}{\sum_{u,i} m_{ui}},

    with :math:`m_{ui} = 1` where a rating exists and 0 elsewhere. A prediction at an unobserved cell has no
    effect on the value and receives no gradient. With ``mask`` all ones this is the plain
    :math:`\frac1n\sum\lVert U - U'\rVert^2` that treats every missing rating as a 0. Works on NumPy arrays
    and on torch tensors (the result keeps the type; an all-zero mask gives 0).
    """
    err = (pred - target) ** 2 * mask
    n = mask.sum()
    if hasattr(n, "clamp_min"):  # torch
        return err.sum() / n.clamp_min(1)
    return float(err.sum() / max(float(n), 1.0))


def kl_beta(step, beta_max: float, anneal_steps: int):
    r"""The KL weight after ``step`` gradient steps: linear from 0 to ``beta_max`` over ``anneal_steps``,

    .. math:: \beta_t = \beta_{\max}\cdot\min\!\Big(1, \frac{t}{T}\Big), \qquad t = 0, 1, 2, \dots

    so :math:`\beta_0 = 0`, :math:`\beta_{T/2} = \beta_{\max}/2` and :math:`\beta_t = \beta_{\max}` for every
    :math:`t \ge T`. ``anneal_steps = 0`` means no annealing (:math:`\beta_t = \beta_{\max}` from the start).
    ``step`` may be an int or a NumPy array of ints.
    """
    if isinstance(anneal_steps, bool) or not isinstance(anneal_steps, (int, np.integer)) or anneal_steps < 0:
        raise ValueError(f"anneal_steps must be an integer >= 0, got {anneal_steps!r}")
    if not (isinstance(beta_max, (int, float, np.integer, np.floating)) and math.isfinite(beta_max)
            and beta_max >= 0):
        raise ValueError(f"beta_max must be a finite number >= 0, got {beta_max!r}")
    t = np.asarray(step, dtype=float)
    if (t < 0).any():
        raise ValueError(f"step counts gradient steps from 0, got {step!r}")
    frac = np.ones_like(t) if anneal_steps == 0 else np.minimum(1.0, t / anneal_steps)
    out = float(beta_max) * frac
    return float(out) if out.ndim == 0 else out


def gaussian_kl(mu, logvar):
    r"""KL divergence of :math:`q(z) = \mathcal N(\mu, \mathrm{diag}\,\sigma^2)` from :math:`\mathcal N(0, I)`,
    one value per row:

    .. math:: \mathrm{KL} = \tfrac12 \sum_k \big(\mu_k^2 + \sigma_k^2 - \log\sigma_k^2 - 1\big).

    ``mu`` and ``logvar`` (:math:`\log\sigma^2`) are torch tensors of shape ``(batch, k)``.
    """
    return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1.0).sum(-1)


def multinomial_nll(logits, x):
    r"""Negative multinomial log-likelihood of the counts ``x`` under :math:`\pi = \mathrm{softmax}(\text{logits})`,
    one value per row (the constant multinomial coefficient dropped):

    .. math:: -\log p(x_u \mid \pi_u) = -\sum_i x_{ui} \log \pi_{ui}.

    The items of a user compete for one unit of probability mass, which is what top-N ranking asks for.
    """
    import torch

    return -(torch.log_softmax(logits, dim=-1) * x).sum(-1)


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def _is_int(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def _need_int(model, name: str, value, low: int = 1) -> None:
    if not _is_int(value) or value < low:
        raise ValueError(f"{type(model).__name__}: {name} must be an integer >= {low}, got {value!r}")


def _need_num(model, name: str, value, *, positive: bool = False, upper: float | None = None) -> None:
    ok = (not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value) and value >= 0 and not (positive and value == 0)
          and (upper is None or value < upper))
    if not ok:
        kind = "positive" if positive else "non-negative"
        bound = f" below {upper}" if upper is not None else ""
        raise ValueError(f"{type(model).__name__}: {name} must be a {kind} finite number{bound}, got {value!r}")


def _need_choice(model, name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{type(model).__name__}: {name} must be one of {list(choices)}, got {value!r}")


def _check_training(model, val_name: str) -> None:
    _need_num(model, "lr", model.lr, positive=True)
    _need_num(model, "reg", model.reg)
    _need_int(model, "n_epochs", model.n_epochs)
    _need_int(model, "batch_size", model.batch_size)
    if model.patience is not None:
        _need_int(model, "patience", model.patience)
    _need_int(model, "seed", model.seed, low=0)
    val = getattr(model, val_name)
    if val is not None:
        if val_name == "val_share":
            if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, float, np.floating)) \
                    or not 0 < val < 1:
                raise ValueError(f"{type(model).__name__}: val_share must be a share strictly between 0 and 1 or "
                                 f"None, got {val!r}")
        else:
            _need_int(model, val_name, val)


# --------------------------------------------------------------------------------------------
# small torch building blocks (built lazily, so importing the package does not import torch)
# --------------------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def _activation(name: str):
    torch = _torch()
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda t: t}[name]


class _SparseRows:
    """A CSR matrix kept as torch tensors on a device; ``batch(rows)`` returns what ``embedding_bag`` needs.

    For rows :math:`r_1..r_B` it returns ``cols`` (column of every stored entry, row by row), ``vals`` (their
    values), ``offsets`` (where each row starts in ``cols``) and ``owner`` (the batch position 0..B-1 of each
    entry).
    """

    def __init__(self, matrix: sp.csr_matrix, device):
        torch = _torch()
        m = sp.csr_matrix(matrix, dtype=np.float32)
        m.sort_indices()
        self.shape = m.shape
        self.indptr = torch.as_tensor(m.indptr.astype(np.int64), device=device)
        self.indices = torch.as_tensor(m.indices.astype(np.int64), device=device)
        self.data = torch.as_tensor(m.data, device=device)

    def batch(self, rows):
        torch = _torch()
        rows = rows.to(self.indptr.device).long()
        starts = self.indptr[rows]
        counts = self.indptr[rows + 1] - starts
        offsets = torch.cumsum(counts, 0) - counts
        total = int(counts.sum())
        owner = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), counts)
        entries = starts[owner] + torch.arange(total, device=rows.device) - offsets[owner]
        return self.indices[entries], self.data[entries], offsets, owner

    def dense(self, rows):
        """The rows as a dense ``(B, n_cols)`` float tensor."""
        torch = _torch()
        cols, vals, _, owner = self.batch(rows)
        out = torch.zeros(len(rows), self.shape[1], device=self.indptr.device)
        out[owner, cols] = vals
        return out


def _adam(net, lr: float, device):
    """Adam over ``net`` (moved to ``device``), with the fused kernel where torch has one for the device: on a
    CPU it updates a few million parameters several times faster than the default loop (same update rule)."""
    torch = _torch()
    net.to(device)
    try:
        return torch.optim.Adam(net.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device / torch version
        return torch.optim.Adam(net.parameters(), lr=lr)


def _uniform(shape, fan_in: int, generator):
    """``nn.Linear``'s default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from a seeded generator."""
    torch = _torch()
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return (torch.rand(*shape, generator=generator) * 2.0 - 1.0) * bound


def _ndcg_at_k(scores: np.ndarray, seen: sp.csr_matrix, relevant: sp.csr_matrix, n_rel: np.ndarray,
               k: int = 10) -> float:
    r"""NDCG@k of dense ``scores`` (users × columns) against the sparse 0/1 ``relevant`` matrix, ``seen``
    cells excluded. ``n_rel[u]`` is user u's number of relevant items *including* those outside the scored
    columns (they can only be misses, as in :func:`recsys_course.evaluate.evaluate`); users with
    ``n_rel = 0`` are skipped (NaN if every user is)."""
    from ..metrics import ndcg_from_hits

    rows = np.flatnonzero(n_rel)
    if len(rows) == 0:
        return math.nan
    s = np.array(scores[rows], dtype=np.float64)
    s[seen[rows].toarray() > 0] = -np.inf
    top = top_k(s, k)
    hits = np.take_along_axis(relevant[rows].toarray() > 0, top, 1) & np.isfinite(np.take_along_axis(s, top, 1))
    if hits.shape[1] < k:
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))
    return ndcg_from_hits(hits, n_rel[rows])


# --------------------------------------------------------------------------------------------
# AutoRec
# --------------------------------------------------------------------------------------------
def _autorec_net(n_users: int, n_hidden: int, activation: str, mu: float, generator):
    torch = _torch()
    act = _activation(activation)

    class AutoRecNet(torch.nn.Module):
        r"""Item-based AutoRec: :math:`\hat r_i = W\,g(V r_i + b) + c`, one input and one output unit per user."""

        def __init__(self):
            super().__init__()
            self.V = torch.nn.Parameter(_uniform((n_users, n_hidden), n_users, generator))   # encoder
            self.b = torch.nn.Parameter(torch.zeros(n_hidden))
            self.W = torch.nn.Parameter(_uniform((n_users, n_hidden), n_hidden, generator))  # decoder
            self.c = torch.nn.Parameter(torch.full((n_users,), float(mu)))

        def encode(self, cols, vals, offsets):
            """Codes of a batch of item columns given as sparse entries (user, rating)."""
            pre = torch.nn.functional.embedding_bag(cols, self.V, offsets, mode="sum", per_sample_weights=vals)
            return act(pre + self.b)

        def decode(self, h):
            """Every user's reconstructed rating of each coded item: ``(B, n_users)``."""
            return h @ self.W.T + self.c

        def decode_pairs(self, h, owner, users):
            """Only the cells (owner item, user) asked for."""
            return (h[owner] * self.W[users]).sum(1) + self.c[users]

    return AutoRecNet()


class AutoRec(Recommender):
    r"""I-AutoRec (Sedhain, Menon, Sanner & Xie 2015): an autoencoder over each **item's** vector of ratings.

    The input of item :math:`i` is its column :math:`r_i \in \mathbb R^{n_{\text{users}}}` of training ratings
    (0 where a user has not rated it). With :math:`g` = ``activation`` (sigmoid in the paper; tanh validated
    better on ml-latest-small) and an identity output,

    .. math:: h_i = g(V r_i + b) \in \mathbb R^{d}, \qquad \hat r_i = W h_i + c \in \mathbb R^{n_{\text{users}}},

    and :math:`\hat r_{ui}` (entry :math:`u` of :math:`\hat r_i`) is the predicted rating. Training minimises
    the **masked** reconstruction error plus L2 on the two weight matrices,

    .. math:: \mathcal L = \frac{\sum_{i}\lVert m_i \odot (r_i - \hat r_i)\rVert^2}{\sum_i \lVert m_i\rVert_1}
              + \frac{\lambda}{2}\big(\lVert W\rVert_F^2 + \lVert V\rVert_F^2\big),

    :math:`m_{ui} = 1` for observed ratings only (:func:`masked_mse`), estimated on mini-batches of items by
    Adam (the paper used L-BFGS/Rprop; the objective is the same up to the scale of :math:`\lambda`).
    ``masked=False`` replaces the mask by all ones — every missing rating becomes a target of 0 — which is
    the mistake notebook 05 demonstrates. Only the observed cells are decoded in the masked loss, so an epoch
    costs :math:`O(|\mathcal R|\,d)`; ``masked=False`` decodes the whole matrix, :math:`O(n_u n_i d)`.

    The item code :math:`h_i` is the item's learned representation (``item_embeddings_``), the decoder row
    :math:`W_u` the user's (``user_embeddings_``). The output bias :math:`c` starts at the best constant for
    the loss: the mean training rating :math:`\mu` (masked), or the mean over every cell of the trained columns,
    :math:`\rho\mu` with :math:`\rho` the share of filled cells (unmasked).

    * **Early stopping.** With ``val_share`` set, each user's most recent ``val_share`` of training ratings is
      held out; the network is trained on the rest and stops when the validation RMSE has not improved for
      ``patience`` epochs (the best epoch's weights are restored). With ``refit=True`` it is then retrained,
      from the same initialisation, on all of train for the best number of epochs. ``val_share=None`` trains
      ``n_epochs`` epochs on everything. With ``refit=False`` the validation run's network is kept, and its
      item codes are computed from the ratings it was trained on (the fit part), so the predictions for the
      held-out slice are exactly the ones validated.
    * **Unknown ids.** ``predict`` for a user or item absent from training returns the prediction of a
      :class:`~recsys_course.models.BiasBaseline` fitted on the same data (:math:`\mu + b_i`,
      :math:`\mu + b_u` or :math:`\mu`); ``recommend`` raises :class:`UnknownIdError` for unknown users.
      Predictions are clipped to the training rating range; ``recommend`` ranks by the unclipped score.

    Defaults were tuned on a validation slice of the rating-track train split (notebook 05).
    ``history_`` is the :class:`~recsys_course.models.torch_train.History` of the early-stopping run.
    """

    predicts_ratings = True

    def __init__(self, n_hidden: int = 50, activation: str = "tanh", reg: float = 0.003, lr: float = 0.003,
                 n_epochs: int = 60, batch_size: int = 256, patience: int | None = 4,
                 val_share: float | None = 0.2, refit: bool = True, masked: bool = True, device=None,
                 seed: int = 0, verbose: bool = True):
        self.n_hidden = n_hidden
        self.activation = activation
        self.reg = reg
        self.lr = lr
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_share = val_share
        self.refit = refit
        self.masked = masked
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        _need_int(self, "n_hidden", self.n_hidden)
        _need_choice(self, "activation", self.activation, ACTIVATIONS)
        _need_choice(self, "masked", self.masked, (True, False))
        _check_training(self, "val_share")

    # ---- training ------------------------------------------------------------------------------
    def _item_matrix(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """Items × users CSR of ``frame``'s ratings on this model's full index."""
        u = self._user_index.get_indexer(frame[USER])
        i = self._item_index.get_indexer(frame[ITEM])
        return sp.csr_matrix((frame[RATING].to_numpy(np.float32), (i, u)), shape=(self.n_items, self.n_users))

    def _loss_fn(self, rows: _SparseRows):
        torch = _torch()
        reg, masked = float(self.reg), bool(self.masked)

        def loss_fn(net, items):
            cols, vals, offsets, owner = rows.batch(items)
            h = net.encode(cols, vals, offsets)
            if masked:  # decode only the observed cells: mean over them of (r - r̂)²
                err = net.decode_pairs(h, owner, cols) - vals
                data = (err ** 2).mean()
            else:  # every cell is a target, the missing ones with value 0
                target = torch.zeros(len(items), self.n_users, device=h.device)
                target[owner, cols] = vals
                data = ((net.decode(h) - target) ** 2).mean()
            return data + 0.5 * reg * ((net.W ** 2).sum() + (net.V ** 2).sum())

        return loss_fn

    def _train_on(self, frame: pd.DataFrame, epochs: int, validation: pd.DataFrame | None, desc: str):
        from .torch_train import resolve_device, train

        torch = _torch()
        device = resolve_device(self.device)
        matrix = self._item_matrix(frame)
        rows = _SparseRows(matrix, device)
        items = np.flatnonzero(np.diff(matrix.indptr))  # items with at least one rating are the examples
        gen = torch.Generator().manual_seed(self.seed)
        # the output bias starts at the best constant for the loss: the mean rating (masked) or the mean over
        # every cell of the trained columns, missing ones as 0 (unmasked)
        c0 = float(frame[RATING].mean()) if self.masked else float(frame[RATING].sum()) / (len(items) * self.n_users)
        net = _autorec_net(self.n_users, self.n_hidden, self.activation, c0, gen)

        validate = None
        if validation is not None:
            vi = self._item_index.get_indexer(validation[ITEM])
            vu = self._user_index.get_indexer(validation[USER])
            v_items, v_owner = np.unique(vi, return_inverse=True)
            v_items_t = torch.as_tensor(v_items, device=device)
            v_owner_t = torch.as_tensor(v_owner, device=device)
            vu_t = torch.as_tensor(vu, device=device)
            vr_t = torch.as_tensor(validation[RATING].to_numpy(np.float32), device=device)
            lo, hi = self.rating_range_

            def validate(m):
                h = m.encode(*rows.batch(v_items_t)[:3])
                pred = torch.clamp(m.decode_pairs(h, v_owner_t, vu_t), lo, hi)
                return float(torch.sqrt(((pred - vr_t) ** 2).mean()))

        hist = train(net, self._loss_fn(rows), (torch.as_tensor(items),), epochs=epochs,
                     batch_size=self.batch_size, optimizer=_adam(net, self.lr, device), validate=validate,
                     mode="min", patience=self.patience, seed=self.seed, device=device, metric_name="val_rmse",
                     desc=desc, verbose=self.verbose)
        return net, rows, hist

    def _fit(self, train, users, items):
        self._check_params()
        start = time.perf_counter()
        self.baseline_ = BiasBaseline().fit(train)
        (net, rows, hist), _ = fit_early_stopped(self, train, "share", self.val_share, "AutoRec")
        self.loss_ = list(hist.train_loss)
        self._store(net, rows)
        self.fit_seconds_ = time.perf_counter() - start

    def _store(self, net, rows: _SparseRows) -> None:
        torch = _torch()
        net.eval()
        codes = []
        with torch.no_grad():
            for begin in range(0, self.n_items, 4096):
                idx = torch.arange(begin, min(begin + 4096, self.n_items), device=rows.indptr.device)
                codes.append(net.encode(*rows.batch(idx)[:3]).cpu().numpy())
        self.item_embeddings_ = np.concatenate(codes).astype(np.float64)     # h_i, (n_items, d)
        self.user_embeddings_ = net.W.detach().cpu().numpy().astype(np.float64)  # W_u, (n_users, d)
        self.user_bias_ = net.c.detach().cpu().numpy().astype(np.float64)       # c_u
        self.encoder_ = {"V": net.V.detach().cpu().numpy().astype(np.float64),
                         "b": net.b.detach().cpu().numpy().astype(np.float64)}

    # ---- scoring -------------------------------------------------------------------------------
    def _predict(self, users, items):
        out = np.empty(len(users))
        known = (users >= 0) & (items >= 0)
        if known.any():
            u, i = users[known], items[known]
            out[known] = (self.item_embeddings_[i] * self.user_embeddings_[u]).sum(1) + self.user_bias_[u]
        if (~known).any():
            base = self.baseline_
            bu = base._bias(base.user_bias_, users[~known])
            bi = base._bias(base.item_bias_, items[~known])
            out[~known] = base.mu_ + bu + bi
        return np.clip(out, *self.rating_range_)

    def _score_users(self, users):
        return self.user_embeddings_[users] @ self.item_embeddings_.T + self.user_bias_[users][:, None]


# --------------------------------------------------------------------------------------------
# DAE and MultVAE: autoencoders over users' binarised rows
# --------------------------------------------------------------------------------------------
class _UserRowAutoencoder(Recommender):
    """What DAE and MultVAE share: the binarised user rows, the modelled items, validation NDCG, scoring."""

    _name = ""

    def _positives(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The interactions that count as 1s: every rating, or those >= ``min_rating``."""
        if self.min_rating is None:
            return frame
        return frame[frame[RATING] >= self.min_rating]

    def _user_matrix(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """Users × modelled items, 1 for every counted interaction of ``frame``."""
        pos = self._positives(frame)
        u = self._user_index.get_indexer(pos[USER])
        col = self._column[self._item_index.get_indexer(pos[ITEM])]
        keep = col >= 0
        X = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (u[keep], col[keep])),
                          shape=(self.n_users, len(self.modelled_)))
        X.data[:] = 1.0  # a repeated (user, item) pair still counts once
        return X

    def _choose_items(self, train: pd.DataFrame, items: np.ndarray) -> None:
        counts = np.bincount(self._item_index.get_indexer(self._positives(train)[ITEM]), minlength=self.n_items)
        self.modelled_ = np.flatnonzero(counts >= self.min_item_count)
        if len(self.modelled_) == 0:
            raise ValueError(f"{type(self).__name__}: no item has min_item_count={self.min_item_count} "
                             "interactions; lower it")
        self._column = np.full(self.n_items, -1)
        self._column[self.modelled_] = np.arange(len(self.modelled_))

    def _validator(self, fit_part: pd.DataFrame, rows: _SparseRows, validation: pd.DataFrame, device):
        """``validate(net)``: NDCG@10 of the held-out ratings >= 4 (all held-out items if none is), every film
        the user rated in ``fit_part`` excluded from the ranking."""
        torch = _torch()
        f_u = self._user_index.get_indexer(fit_part[USER])
        f_c = self._column[self._item_index.get_indexer(fit_part[ITEM])]
        ok = f_c >= 0
        seen = sp.csr_matrix((np.ones(int(ok.sum())), (f_u[ok], f_c[ok])), shape=(self.n_users, len(self.modelled_)))
        rel = validation[validation[RATING] >= RELEVANCE_THRESHOLD]
        if rel.empty:  # implicit data without high ratings: every held-out item is relevant
            rel = validation
        r_u = self._user_index.get_indexer(rel[USER])
        r_c = self._column[self._item_index.get_indexer(rel[ITEM])]
        keep = r_c >= 0  # held-out items the model does not model count as misses, like in evaluate
        relevant = sp.csr_matrix((np.ones(int(keep.sum())), (r_u[keep], r_c[keep])), shape=seen.shape)
        n_rel = np.bincount(r_u, minlength=self.n_users)
        all_users = torch.arange(self.n_users, device=device)

        def validate(net):
            scores = self._forward_scores(net, rows, all_users).cpu().numpy()
            return _ndcg_at_k(scores, seen, relevant, n_rel)

        return validate

    def _fit(self, train, users, items):
        self._check_params()
        start = time.perf_counter()
        self._choose_items(train, items)
        # `inputs`: the rows the final network reads at prediction time, i.e. those it was trained on
        (net, rows, hist), inputs = fit_early_stopped(self, train, "last", self.val_n, self._name)
        self.loss_ = list(hist.train_loss)
        self.net_ = net.cpu().eval()
        self.X_ = self._user_matrix(inputs)
        self._store(net)
        self.fit_seconds_ = time.perf_counter() - start

    def _user_scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of the modelled items for known user positions (eval mode, no corruption)."""
        torch = _torch()
        rows = _SparseRows(self.X_[users], "cpu")
        with torch.no_grad():
            return self._forward_scores(self.net_, rows, torch.arange(len(users)), user_ids=users).numpy()

    def _score_users(self, users):
        if (users < 0).any():
            raise UnknownIdError(f"{type(self).__name__} has no input row for users absent from its training data")
        out = np.full((len(users), self.n_items), -np.inf)
        out[:, self.modelled_] = self._user_scores(users)
        return out

    def _predict(self, users, items):
        if (users < 0).any():
            raise UnknownIdError(f"{type(self).__name__} has no input row for users absent from its training data, "
                                 "so it cannot score them; use a model that handles new users (Popularity)")
        out = np.full(len(users), -np.inf)
        col = np.where(items >= 0, self._column[np.maximum(items, 0)], -1)
        ok = np.flatnonzero(col >= 0)
        if len(ok):
            uniq, inv = np.unique(users[ok], return_inverse=True)
            out[ok] = self._user_scores(uniq)[inv, col[ok]]
        return out


def _dae_net(n_users: int, n_items: int, n_hidden: int, activation: str, user_node: bool, corruption: float,
             generator):
    torch = _torch()
    act = _activation(activation)

    class DAENet(torch.nn.Module):
        r""":math:`z_u = g(\sum_i \tilde y_{ui} W_i + V_u + b)`, logits :math:`z_u W'^\top + b'`."""

        def __init__(self):
            super().__init__()
            self.W = torch.nn.Parameter(_uniform((n_items, n_hidden), n_items, generator))       # encoder
            self.b = torch.nn.Parameter(torch.zeros(n_hidden))
            self.V = torch.nn.Parameter(_uniform((n_users, n_hidden), n_items, generator)) if user_node else None
            self.W_out = torch.nn.Parameter(_uniform((n_items, n_hidden), n_hidden, generator))  # decoder
            self.b_out = torch.nn.Parameter(torch.zeros(n_items))

        def encode(self, cols, vals, offsets, user_ids):
            # input dropout: each 1 is dropped with probability q, the survivors scaled by 1/(1-q)
            vals = torch.nn.functional.dropout(vals, corruption, self.training) if corruption > 0 else vals
            pre = torch.nn.functional.embedding_bag(cols, self.W, offsets, mode="sum", per_sample_weights=vals)
            if self.V is not None:
                pre = pre + self.V[user_ids]
            return act(pre + self.b)

        def forward(self, cols, vals, offsets, user_ids):
            return self.encode(cols, vals, offsets, user_ids) @ self.W_out.T + self.b_out

    return DAENet()


class DAE(_UserRowAutoencoder):
    r"""A denoising autoencoder for top-N recommendation, CDAE-like (Wu, DuBois, Zheng & Ester 2016).

    The input of user :math:`u` is the binarised row :math:`y_u \in \{0,1\}^{n}` (1 for every rated item; with
    ``min_rating`` only ratings :math:`\ge` it count). During training it is **corrupted** by dropout: every 1
    is kept with probability :math:`1-q` and then scaled by :math:`1/(1-q)`, zeroed otherwise
    (:math:`q` = ``corruption``). The network

    .. math:: z_u = g\Big(\sum_i \tilde y_{ui} W_i + V_u + b\Big), \qquad
              \hat y_{ui} = \sigma\big(W'_i{}^{\top} z_u + b'_i\big)

    has one input weight vector :math:`W_i` and one output vector :math:`W'_i` per item and, with
    ``user_node=True``, a per-user vector :math:`V_u` (CDAE's user node, an embedding added to the hidden
    layer). It minimises the logistic reconstruction loss of the **uncorrupted** row plus L2,

    .. math:: \mathcal L = \frac{1}{|U|}\sum_u \sum_{i} -\big[y_{ui}\log\hat y_{ui} + (1-y_{ui})\log(1-\hat y_{ui})\big]
              + \frac{\lambda}{2}\big(\lVert W\rVert^2 + \lVert W'\rVert^2 + \lVert V\rVert^2\big),

    on mini-batches of users with Adam. Unlike the paper, which samples a few zeros per user, every item
    counts in the loss: with a few thousand items that is cheap. Here the unobserved cells **are** targets (0):
    for implicit feedback "not interacted" is the signal to rank against, the opposite of AutoRec's masking.
    Scores are the logits :math:`W'^\top z_u + b'` from the clean row (no corruption at prediction time).

    Only items with at least ``min_item_count`` counted interactions are modelled (input and output);
    the others score ``-inf`` and are never recommended. ``item_embeddings_`` are the input weights
    :math:`W_i` of the modelled items (rows in the order of ``modelled_``), ``user_embeddings_`` the codes
    :math:`z_u`.

    * **Early stopping.** With ``val_n`` set, each user's last ``val_n`` training ratings are held out (users
      with fewer keep everything), the model trains on the rest and stops when NDCG@10 of the held-out
      ratings ≥ 4 has not improved for ``patience`` epochs; with ``refit=True`` it is retrained on all of
      train for the best number of epochs. With ``refit=False`` the validation run's network is kept, and it
      reads the rows it was trained on (the fit part: without each user's last ``val_n`` ratings).
    * **Unknown ids.** Unknown items score ``-inf``; unknown users raise :class:`UnknownIdError` (the user
      node and the input row exist only for training users).
    * **Cost.** :math:`O(\mathrm{nnz}\,d + n_{\text{users}}\,n_{\text{items}}\,d)` per epoch (the output layer
      dominates).

    Defaults were tuned on a validation slice of the ranking-track train split (notebook 05).
    """

    _name = "DAE"

    def __init__(self, n_hidden: int = 200, corruption: float = 0.5, user_node: bool = True,
                 activation: str = "tanh", reg: float = 1e-5, lr: float = 0.003, n_epochs: int = 60,
                 batch_size: int = 64, patience: int | None = 3, val_n: int | None = 10, refit: bool = True,
                 min_item_count: int = 3, min_rating: float | None = None, device=None, seed: int = 0,
                 verbose: bool = True):
        self.n_hidden = n_hidden
        self.corruption = corruption
        self.user_node = user_node
        self.activation = activation
        self.reg = reg
        self.lr = lr
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_n = val_n
        self.refit = refit
        self.min_item_count = min_item_count
        self.min_rating = min_rating
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        _need_int(self, "n_hidden", self.n_hidden)
        _need_num(self, "corruption", self.corruption, upper=1.0)
        _need_choice(self, "user_node", self.user_node, (True, False))
        _need_choice(self, "activation", self.activation, ACTIVATIONS)
        _need_int(self, "min_item_count", self.min_item_count)
        if self.min_rating is not None:
            _need_num(self, "min_rating", self.min_rating)
        _check_training(self, "val_n")

    def _forward_scores(self, net, rows: _SparseRows, batch_rows, user_ids=None):
        torch = _torch()
        cols, vals, offsets, _ = rows.batch(batch_rows)
        uid = batch_rows if user_ids is None else torch.as_tensor(user_ids)
        return net(cols, vals, offsets, uid)

    def _train_on(self, frame: pd.DataFrame, epochs: int, validation: pd.DataFrame | None, desc: str):
        from .torch_train import resolve_device, train

        torch = _torch()
        device = resolve_device(self.device)
        X = self._user_matrix(frame)
        rows = _SparseRows(X, device)
        gen = torch.Generator().manual_seed(self.seed)
        net = _dae_net(self.n_users, X.shape[1], self.n_hidden, self.activation, self.user_node,
                       float(self.corruption), gen)
        reg = float(self.reg)

        def loss_fn(m, users):
            cols, vals, offsets, owner = rows.batch(users)
            logits = m(cols, vals, offsets, users)
            target = torch.zeros_like(logits)
            target[owner, cols] = 1.0
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
            penalty = (m.W ** 2).sum() + (m.W_out ** 2).sum() + ((m.V ** 2).sum() if m.V is not None else 0.0)
            return bce.mean() + 0.5 * reg * penalty

        validate = self._validator(frame, rows, validation, device) if validation is not None else None
        hist = train(net, loss_fn, (torch.arange(self.n_users),), epochs=epochs, batch_size=self.batch_size,
                     optimizer=_adam(net, self.lr, device), validate=validate, mode="max", patience=self.patience,
                     seed=self.seed, device=device, metric_name="val_ndcg@10", desc=desc, verbose=self.verbose)
        return net, rows, hist

    def _store(self, net) -> None:
        self.item_embeddings_ = net.W.detach().cpu().numpy().astype(np.float64)
        torch = _torch()
        with torch.no_grad():
            rows = _SparseRows(self.X_, "cpu")
            cols, vals, offsets, _ = rows.batch(torch.arange(self.n_users))
            self.user_embeddings_ = net.encode(cols, vals, offsets, torch.arange(self.n_users)).numpy().astype(
                np.float64)


def _vae_net(n_items: int, dims: tuple, dropout: float, generator):
    torch = _torch()
    hidden, latent = tuple(dims[:-1]), int(dims[-1])

    def linear(n_in, n_out):
        layer = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():
            layer.weight.copy_(_uniform((n_out, n_in), n_in, generator))
            layer.bias.zero_()
        return layer

    class VAENet(torch.nn.Module):
        r"""Encoder :math:`x \to (\mu, \log\sigma^2)`, decoder :math:`z \to` logits over the items."""

        def __init__(self):
            super().__init__()
            first = hidden[0] if hidden else 2 * latent
            self.W_in = torch.nn.Parameter(_uniform((n_items, first), n_items, generator))  # first layer
            self.b_in = torch.nn.Parameter(torch.zeros(first))
            enc, width = [], first
            for h in hidden[1:]:
                enc.append(linear(width, h))
                width = h
            self.enc = torch.nn.ModuleList(enc)
            self.to_stats = linear(width, 2 * latent) if hidden else None
            dec, width = [], latent
            for h in reversed(hidden):
                dec.append(linear(width, h))
                width = h
            dec.append(linear(width, n_items))
            self.dec = torch.nn.ModuleList(dec)

        def encode(self, cols, vals, offsets, owner):
            # x / ||x||, then input dropout (Liang et al. 2018)
            norm = torch.zeros(len(offsets), device=vals.device).index_add_(0, owner, vals ** 2).sqrt()
            v = vals / norm.clamp_min(1e-12)[owner]
            v = torch.nn.functional.dropout(v, dropout, self.training) if dropout > 0 else v
            h = torch.nn.functional.embedding_bag(cols, self.W_in, offsets, mode="sum", per_sample_weights=v)
            h = h + self.b_in
            if self.to_stats is None:  # no hidden layer: the first layer gives the statistics directly
                return h[:, :latent], h[:, latent:]
            h = torch.tanh(h)
            for layer in self.enc:
                h = torch.tanh(layer(h))
            stats = self.to_stats(h)
            return stats[:, :latent], stats[:, latent:]

        def decode(self, z):
            h = z
            for layer in self.dec[:-1]:
                h = torch.tanh(layer(h))
            return self.dec[-1](h)

        def forward(self, cols, vals, offsets, owner):
            mu, logvar = self.encode(cols, vals, offsets, owner)
            if self.training:  # the reparameterisation trick: z = mu + sigma * eps
                z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            else:
                z = mu
            return self.decode(z), mu, logvar

    return VAENet()


class MultVAE(_UserRowAutoencoder):
    r"""Mult-VAE (Liang, Krishnan, Hoffman & Jebara 2018): a variational autoencoder with a multinomial
    likelihood over each user's binarised row :math:`x_u` (1 for every rated item; with ``min_rating`` only
    ratings :math:`\ge` it count).

    **Model.** Encoder (``dims = (d_1, ..., d_L, k)``, tanh between layers): the normalised row
    :math:`x_u / \lVert x_u\rVert`, with input dropout (rate ``dropout``) during training, is mapped to
    :math:`\mu_u, \log\sigma_u^2 \in \mathbb R^k`; :math:`z_u = \mu_u + \sigma_u \odot \varepsilon`,
    :math:`\varepsilon \sim \mathcal N(0, I)` (the reparameterisation trick); the decoder mirrors the encoder
    and gives logits :math:`f(z_u)` over the items, :math:`\pi_u = \mathrm{softmax}(f(z_u))`.

    **Loss** (the negative, annealed ELBO) per mini-batch :math:`\mathcal B` of users, at gradient step
    :math:`t`:

    .. math:: \mathcal L_t = \frac{1}{|\mathcal B|}\sum_{u \in \mathcal B}\Big[-\sum_i x_{ui}\log \pi_{ui}
              + \beta_t\, \mathrm{KL}\big(\mathcal N(\mu_u, \sigma_u^2)\,\Vert\,\mathcal N(0, I)\big)\Big]
              + \frac{\lambda}{2}\sum_{\text{weights}} \lVert W\rVert^2

    (:func:`multinomial_nll`, :func:`gaussian_kl`), minimised by Adam; :math:`\lambda` = ``reg`` acts on the
    weight matrices, not the biases.

    **KL annealing** (:func:`kl_beta`). :math:`t` counts the gradient steps (mini-batches) taken since the
    start of the run, from :math:`t = 0` for the first mini-batch, across epochs:

    .. math:: \beta_t = \beta_{\max}\cdot\min\!\big(1,\ t / T\big), \qquad T = \texttt{anneal\_steps},

    so β rises linearly from 0 at the first step to ``beta_max`` at step :math:`T` and stays there
    (``anneal_steps=0``: :math:`\beta_t = \beta_{\max}` throughout). Liang et al.'s code increases β by
    :math:`1/T` per step and caps it at :math:`\beta_{\max}`, reaching the cap after :math:`\beta_{\max}T`
    steps; here the cap is reached after :math:`T` steps whatever :math:`\beta_{\max}`. The refit run (see
    :class:`DAE`) repeats the same schedule (the users and so the steps per epoch are the same), so it ends at the β of
    the chosen epoch. ``anneal_log_`` holds ``step, beta, nll, kl`` (batch means) of every step of the final
    run.

    **Scores**: the logits :math:`f(\mu_u)` of the clean row (no dropout, no sampling); only their order
    matters. Only items with at least ``min_item_count`` counted interactions are modelled; the others score
    ``-inf``. ``item_embeddings_`` = the rows of the first-layer weight matrix (one per modelled item, in the
    order of ``modelled_``), ``user_embeddings_`` = :math:`\mu_u`.

    * **Early stopping / refit / unknown ids / cost** as :class:`DAE` (validation NDCG@10 on each user's last
      ``val_n`` training ratings ≥ 4; unknown items ``-inf``, unknown users raise :class:`UnknownIdError`;
      the output softmax over the items dominates the cost).

    Defaults were tuned on a validation slice of the ranking-track train split (notebook 05).
    """

    _name = "MultVAE"

    def __init__(self, dims: tuple = (200, 64), dropout: float = 0.5, beta_max: float = 0.2,
                 anneal_steps: int = 100, reg: float = 0.0, lr: float = 0.003, n_epochs: int = 100,
                 batch_size: int = 64, patience: int | None = 5, val_n: int | None = 10, refit: bool = True,
                 min_item_count: int = 3, min_rating: float | None = None, device=None, seed: int = 0,
                 verbose: bool = True):
        self.dims = dims
        self.dropout = dropout
        self.beta_max = beta_max
        self.anneal_steps = anneal_steps
        self.reg = reg
        self.lr = lr
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_n = val_n
        self.refit = refit
        self.min_item_count = min_item_count
        self.min_rating = min_rating
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        dims = self.dims
        if isinstance(dims, (str, bytes)) or not hasattr(dims, "__len__") or len(dims) < 1 \
                or not all(_is_int(d) and d >= 1 for d in dims):
            raise ValueError(f"MultVAE: dims must be a non-empty sequence of positive integers (hidden sizes, then "
                             f"the latent size), got {dims!r}")
        _need_num(self, "dropout", self.dropout, upper=1.0)
        _need_num(self, "beta_max", self.beta_max)
        _need_int(self, "anneal_steps", self.anneal_steps, low=0)
        _need_int(self, "min_item_count", self.min_item_count)
        if self.min_rating is not None:
            _need_num(self, "min_rating", self.min_rating)
        _check_training(self, "val_n")

    def _forward_scores(self, net, rows: _SparseRows, batch_rows, user_ids=None):
        return net(*rows.batch(batch_rows))[0]

    def _train_on(self, frame: pd.DataFrame, epochs: int, validation: pd.DataFrame | None, desc: str):
        from .torch_train import resolve_device, train

        torch = _torch()
        device = resolve_device(self.device)
        X = self._user_matrix(frame)
        rows = _SparseRows(X, device)
        gen = torch.Generator().manual_seed(self.seed)
        net = _vae_net(X.shape[1], tuple(int(d) for d in self.dims), float(self.dropout), gen)
        reg, beta_max, anneal = float(self.reg), float(self.beta_max), int(self.anneal_steps)
        log = {"step": [], "beta": [], "nll": [], "kl": []}

        def loss_fn(m, users):
            step = len(log["step"])  # gradient steps taken so far in this run
            beta = kl_beta(step, beta_max, anneal)
            cols, vals, offsets, owner = rows.batch(users)
            logits, mu, logvar = m(cols, vals, offsets, owner)
            x = torch.zeros_like(logits)
            x[owner, cols] = vals
            nll = multinomial_nll(logits, x).mean()
            kl = gaussian_kl(mu, logvar).mean()
            loss = nll + beta * kl
            if reg:
                loss = loss + 0.5 * reg * sum((p ** 2).sum() for n, p in m.named_parameters()
                                              if n == "W_in" or n.endswith("weight"))
            log["step"].append(step)
            log["beta"].append(beta)
            log["nll"].append(float(nll.detach()))
            log["kl"].append(float(kl.detach()))
            return loss

        validate = self._validator(frame, rows, validation, device) if validation is not None else None
        hist = train(net, loss_fn, (torch.arange(self.n_users),), epochs=epochs, batch_size=self.batch_size,
                     optimizer=_adam(net, self.lr, device), validate=validate, mode="max", patience=self.patience,
                     seed=self.seed, device=device, metric_name="val_ndcg@10", desc=desc, verbose=self.verbose)
        self.anneal_log_ = pd.DataFrame(log)
        return net, rows, hist

    def _store(self, net) -> None:
        torch = _torch()
        self.item_embeddings_ = net.W_in.detach().cpu().numpy().astype(np.float64)
        with torch.no_grad():
            rows = _SparseRows(self.X_, "cpu")
            self.user_embeddings_ = net.encode(*rows.batch(torch.arange(self.n_users)))[0].numpy().astype(
                np.float64)
