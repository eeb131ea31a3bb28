r"""The factorisation machine (Rendle 2010) of notebook 13: users, films and the context of a rating as one-hot
features of one model.

A rating becomes a sparse vector :math:`x \in \{0, 1\}^n`: one 1 for its user, one for its film, and one for the
value of each context column (:mod:`recsys_course.context`: ``daypart``, ``weekend``, ``session_position``,
``film_age``, ...). The model is

.. math:: \hat y(x) = w_0 + \sum_{i=1}^n w_i x_i + \sum_{i<j} \langle v_i, v_j\rangle\, x_i x_j,

every feature with a weight :math:`w_i` and a vector :math:`v_i \in \mathbb R^k`. With only a user and a film
active it is biased matrix factorisation, :math:`w_0 + w_u + w_i + \langle v_u, v_i\rangle`; each context value
adds its bias and its interactions with the user, the film and the other context values. The pairwise sum costs
:math:`O(k\,n)` instead of :math:`O(k\,n^2)`, because :math:`\sum_{i<j} a_{ij}` is half of all off-diagonal
:math:`a_{ij}`:

.. math:: \sum_{i<j} \langle v_i, v_j\rangle x_i x_j
          = \frac12 \sum_{f=1}^k \Big[\Big(\sum_i v_{i,f}\, x_i\Big)^2 - \sum_i v_{i,f}^2\, x_i^2\Big].

The network :class:`recsys_course.networks.fm.FMNet` computes exactly this (only the active features of each row are gathered, so a row costs
:math:`O(k \cdot \text{fields})`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..checks import check_number
from ..config import ITEM, RATING, TIME, USER
from .base import _as_array
from .torch_train import TorchRecommender, TrainingSetup

__all__ = ["FM", "fm_predict_numpy"]

#: pairs scored at once by ``predict`` (memory: this many × fields × n_factors floats)
_PAIR_BLOCK = 65536


def fm_predict_numpy(x, w0: float, w, V) -> np.ndarray:
    r"""The FM equation on dense feature rows ``x`` (rows × n), the :math:`O(kn)` way:
    :math:`w_0 + xw + \tfrac12 \sum_f [(xV)_f^2 - (x^2 V^2)_f]`. The reference the network is checked against."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    V = np.asarray(V, dtype=float)
    return w0 + x @ np.asarray(w, dtype=float) + 0.5 * ((x @ V) ** 2 - (x ** 2) @ (V ** 2)).sum(1)


class FM(TorchRecommender):
    r"""A factorisation machine over one-hot user, film and context features, trained on squared error in
    PyTorch (the model and the :math:`O(kn)` identity are in the module docstring).

    Minimises, by mini-batch Adam over the training ratings,

    .. math:: \frac{1}{|\mathcal B|}\sum_{x \in \mathcal B} \Big[(r - \hat y(x))^2
              + \lambda \sum_{j \in x} \lVert v_j\rVert^2 + \lambda_b \sum_{j \in x} w_j^2\Big]

    (``reg`` :math:`\lambda` and ``reg_bias`` :math:`\lambda_b`, on the features a row activates).
    :math:`w_0` starts at the mean rating, :math:`w` at 0.

    * **Context.** ``context`` names the context columns (:data:`recsys_course.context.CONTEXTS`); ``()`` is the
      same model on users and films only. ``fit(train)`` reads each column from ``train`` when present (e.g.
      merged from :func:`~recsys_course.context.add_context` on all ratings), else derives it from ``timestamp``
      (``session_position`` on ``train`` itself); ``film_age`` needs ``movies`` (release years). Each value seen
      in train is one feature.
    * **Context at prediction.** ``predict(users, items, context=None)`` and ``score(users, context=None)`` take
      a frame with one row per pair / per user (context columns and/or ``timestamp``, see
      :func:`~recsys_course.context.context_codes`). A context that is unknown — ``context=None``, a missing
      column, NaN, or a value never seen in training — activates no feature: its :math:`x` is 0, so it adds
      nothing (the prediction of the same user and film with that field left out). ``film_age`` is computed per
      film from the request's timestamp and the film's year. To evaluate with
      :func:`~recsys_course.evaluate.evaluate`, wrap the model in :class:`~recsys_course.context.InContext`.
    * **Unknown ids.** A user or film absent from training activates no feature either: ``predict`` falls back to
      the rest (:math:`w_0` + the film's and the context's terms for a new user). ``recommend`` raises
      :class:`UnknownIdError` for unknown users. ``predict`` is clipped to the training rating range; ``score``
      (and so ``recommend``) ranks by the unclipped value.
    * **Cost.** :math:`O(|R|\,k\,F)` per epoch (:math:`F` fields); ``score`` is :math:`O(k)` per (user, film) via
      matrix products, ``film_age`` included.

    After ``fit``: ``w0_``, ``weights_`` (n_features,), ``factors_`` (n_features, k), ``fields_`` (field name →
    (offset, values): feature ``offset + j`` is the field's ``values[j]``; users and films in ``user_ids_`` /
    ``item_ids_`` order), ``context_`` (the context columns, a tuple), and the protocol's ``history_``,
    ``best_epoch_``, ``loss_``, ``fit_seconds_``. Defaults: tuned lightly on a validation slice of the rating
    train split (each user's latest 20 % of training ratings), never on test.
    """

    predicts_ratings = True

    def __init__(self, context=(), movies: pd.DataFrame | None = None, n_factors: int = 16, lr: float = 0.005,
                 reg: float = 0.05, reg_bias: float = 0.0, weight_decay: float = 0.0, n_epochs: int = 20,
                 batch_size: int = 1024, patience: int | None = 2, val_size: int | float | None = 0.2,
                 val_split: str = "last", refit: bool = False, init_std: float = 0.01, device=None, seed: int = 0,
                 verbose: bool = True):
        self.context = context
        self.movies = movies
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
        self.device = device
        self.seed = seed
        self.verbose = verbose

    # ---- features -----------------------------------------------------------------------------
    def _check_params(self) -> None:
        from ..checks import check_int
        from ..context import check_context

        check_int(self, "n_factors", self.n_factors)
        check_number(self, "reg", self.reg)
        check_number(self, "reg_bias", self.reg_bias)
        check_number(self, "init_std", self.init_std)
        self.context_ = check_context(self.context, self)
        if "film_age" in self.context_ and self.movies is None:
            raise ValueError("FM: context 'film_age' needs the films' release years: pass movies=ml.movies, or "
                             "leave 'film_age' out of context")

    def _prepare(self, train: pd.DataFrame) -> None:
        from ..context import ITEM_CONTEXTS, _release_years

        if self.context_ and TIME not in train.columns:
            raise ValueError(f"FM: context {list(self.context_)} is derived from the '{TIME}' column, which train "
                             "lacks; pass a ratings frame with timestamps, or context=()")
        self._request_fields = tuple(c for c in self.context_ if c not in ITEM_CONTEXTS)
        self._item_fields = tuple(c for c in self.context_ if c in ITEM_CONTEXTS)
        self._years = _release_years(self.movies, self.item_ids_) if self._item_fields else None
        codes = self._train_codes(train)
        self.fields_ = {"user": (0, self.user_ids_), "item": (self.n_users, self.item_ids_)}
        offset = self.n_users + self.n_items
        for c in self.context_:
            values = np.unique(codes[c][codes[c] >= 0])
            self.fields_[c] = (offset, values)
            offset += len(values)
        self.n_features_ = offset

    def _train_codes(self, frame: pd.DataFrame) -> dict:
        """Every context column's codes for the rows of a training frame (read, else derived)."""
        from ..context import add_context

        missing = [c for c in self.context_ if c not in frame.columns]
        derived = add_context(frame[[c for c in frame.columns if c not in self.context_]], self.movies,
                              columns=missing) if missing else frame
        return {c: (frame[c] if c in frame.columns else derived[c]).to_numpy().astype(np.int64)
                for c in self.context_}

    def _feature(self, field: str, codes: np.ndarray) -> np.ndarray:
        """Feature index of each code of a context field (``-1`` for -1 and for values unseen in training)."""
        offset, values = self.fields_[field]
        pos = np.searchsorted(values, codes)
        ok = (codes >= 0) & (pos < len(values))
        ok[ok] = values[pos[ok]] == codes[ok]
        return np.where(ok, offset + pos, -1)

    def _rows(self, users: np.ndarray, items: np.ndarray, codes: dict) -> np.ndarray:
        """Index rows ``(n, 2 + len(context))`` of position pairs and their context codes."""
        cols = [np.where(users >= 0, users, -1), np.where(items >= 0, self.n_users + items, -1)]
        cols += [self._feature(c, codes[c]) for c in self.context_]
        return np.stack(cols, 1).astype(np.int64)

    def _request_codes(self, context, n: int, items: np.ndarray | None = None) -> dict:
        """Context codes of ``n`` requests from a context frame; with ``items`` (pairs) also ``film_age``."""
        from ..context import _request_times, context_codes, film_age_codes

        codes = {c: context_codes(context, c, n) for c in self._request_fields}
        if self._item_fields:
            times = _request_times(context, n)
            if items is None:
                codes["_times"] = times
            else:
                years = np.where(items >= 0, self._years[np.maximum(items, 0)], np.nan)
                if context is not None and "film_age" in context.columns:
                    given = pd.to_numeric(context["film_age"], errors="coerce").to_numpy(float)
                    codes["film_age"] = np.where(np.isfinite(given), given, -1).astype(np.int64)
                else:
                    codes["film_age"] = film_age_codes(times, years)
        return codes

    # ---- training -----------------------------------------------------------------------------
    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        rows = self._rows(self.user_positions(frame[USER]),
                          self.item_positions(frame[ITEM]), self._train_codes(frame))
        r = frame[RATING].to_numpy(np.float32)
        from ..networks.fm import FMNet

        network = FMNet(self.n_features_, self.n_factors, float(r.mean()), self.init_std, generator)
        reg, reg_bias = float(self.reg), float(self.reg_bias)

        def loss(m, idx, rr):
            _, w, e = m.active(idx)
            s = e.sum(1)
            sq = (e * e).sum(1)
            pred = m.w0 + w.sum(1) + 0.5 * (s * s - sq).sum(1)
            out = ((pred - rr) ** 2).mean() + reg * sq.sum(1).mean()
            if reg_bias:
                out = out + reg_bias * (w * w).sum(1).mean()
            return out

        return TrainingSetup(network, loss, (rows, r))

    def _validator(self, setup: TrainingSetup, fit_part: pd.DataFrame, val_part: pd.DataFrame):
        rows = self._rows(self.user_positions(val_part[USER]), self.item_positions(val_part[ITEM]),
                          self._train_codes(val_part))
        import torch

        setup.state["val_rows"] = torch.as_tensor(rows, device=self.device_)
        return super()._validator(setup, fit_part, val_part)

    def _validation_predictions(self, setup: TrainingSetup, network, users, items):
        return network(setup.state["val_rows"])

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        net = setup.network
        self.w0_ = float(net.w0.detach().cpu())
        self.weights_ = net.w.detach().cpu().numpy().astype(np.float64)
        self.factors_ = net.V.detach().cpu().numpy().astype(np.float64)

    # ---- prediction -----------------------------------------------------------------------------
    def _forward(self, rows: np.ndarray) -> np.ndarray:
        """The FM on index rows (NumPy, the fitted weights), in blocks."""
        out = np.empty(len(rows))
        for s in range(0, len(rows), _PAIR_BLOCK):
            idx = rows[s:s + _PAIR_BLOCK]
            x = (idx >= 0).astype(np.float64)
            j = np.maximum(idx, 0)
            e = self.factors_[j] * x[..., None]
            t = e.sum(1)
            out[s:s + _PAIR_BLOCK] = (self.w0_ + (self.weights_[j] * x).sum(1)
                                      + 0.5 * (t * t - (e * e).sum(1)).sum(1))
        return out

    def predict(self, users, items, context: pd.DataFrame | None = None) -> np.ndarray:
        """Predicted ratings of the pairs in their context (one row per pair; None = unknown), clipped to the
        training range. See the class for unknown ids and contexts."""
        if context is None:                      # the protocol's path (and its checks)
            return super().predict(users, items)
        self._check_fitted()
        users, items = _as_array(users, "users"), _as_array(items, "items")
        if users.shape != items.shape:
            raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
        u, i = self.user_positions(users), self.item_positions(items)
        out = np.clip(self._forward(self._rows(u, i, self._request_codes(context, len(u), i))), *self.rating_range_)
        if np.isnan(out).any():
            raise FloatingPointError("FM.predict produced NaN scores; the model diverged — refit it with a smaller "
                                     "learning rate")
        return out

    def _predict(self, users, items):  # the protocol's predict without context (overridden above, kept for hooks)
        return np.clip(self._pair_values(users, items), *self.rating_range_)

    def _pair_values(self, users, items):
        return self._forward(self._rows(users, items, self._request_codes(None, len(users), items)))

    def score(self, users, context: pd.DataFrame | None = None) -> np.ndarray:
        """Every film's unclipped score for each user in their request's context (one row per user; None =
        unknown), columns in ``item_ids_`` order."""
        if context is None:                      # the protocol's path (and its checks)
            return super().score(users)
        self._check_fitted()
        users = _as_array(users, "users")
        pos = self._known_user_positions(users)
        codes = self._request_codes(context, len(users))
        out = self._scores(pos, codes)
        if np.isnan(out).any():
            raise FloatingPointError("FM produced NaN scores; the model diverged — refit it with a smaller "
                                     "learning rate")
        return out

    def _score_users(self, users):
        return self._scores(users, self._request_codes(None, len(users)))

    def _scores(self, users: np.ndarray, codes: dict) -> np.ndarray:
        r"""Scores (len(users), n_items) with the FM split into request features :math:`a` (user + request
        context) and film features :math:`b` (film + film_age):
        :math:`\hat y = w_0 + w_a + w_b + \tfrac12(\lVert a\rVert^2 - \sum\lVert v\rVert^2)_a
        + \tfrac12(\ldots)_b + a^\top b`, all by matrix products."""
        from ..context import film_age_codes

        req = np.stack([np.where(users >= 0, users, -1)] + [self._feature(c, codes[c]) for c in self._request_fields],
                       1)
        x = (req >= 0).astype(np.float64)
        e = self.factors_[np.maximum(req, 0)] * x[..., None]
        a = e.sum(1)                                                                   # (B, k)
        base = self.w0_ + (self.weights_[np.maximum(req, 0)] * x).sum(1) + 0.5 * ((a * a).sum(1)
                                                                                  - (e * e).sum((1, 2)))
        item_off = self.n_users
        Vi = self.factors_[item_off:item_off + self.n_items]
        out = base[:, None] + self.weights_[item_off:item_off + self.n_items][None, :] + a @ Vi.T
        if self._item_fields:
            offset, values = self.fields_["film_age"]
            if len(values):
                ages = self._feature("film_age", film_age_codes(codes["_times"][:, None], self._years[None, :]))
                ok = ages >= 0
                col = np.where(ok, ages - offset, 0)
                Va, wa = self.factors_[offset:offset + len(values)], self.weights_[offset:offset + len(values)]
                aa = a @ Va.T                                                          # (B, m): a · v_age
                ia = Vi @ Va.T                                                         # (n, m): v_i · v_age
                rows = np.arange(len(users))[:, None]
                out = out + ok * (wa[col] + aa[rows, col] + ia[np.arange(self.n_items)[None, :], col])
        return out
