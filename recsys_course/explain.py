r"""Explaining recommendations, and testing the explanations (notebook 13, section 5).

Three kinds of explanation, and one test of them all.

**"Because you rated X": exact decompositions** (:func:`contributions`). Two models of the course score a film as
a baseline plus a sum over the films the user rated, so every rated film's share of the score can be read off:

* :class:`~recsys_course.models.factorization.EASE` — :math:`s_{ui} = \sum_{j} x_{uj} B_{ji}`: film :math:`j`
  contributes :math:`c_j = x_{uj} B_{ji}` (baseline 0; only the films EASE models enter).
* :class:`~recsys_course.models.neighbors.ItemKNN`, ``mode="ranking"`` — :math:`s_{ui} = \sum_{j \in R(u)}
  s_{ji}\,\mathbb 1[i \in N_k(j)]`: :math:`c_j = s_{ji}\,\mathbb 1[i \in N_k(j)]` (baseline 0).
* ``ItemKNN``, ``mode="rating"`` — :math:`\hat r_{ui} = b_{ui} + \sum_{j \in N_k(i;u)} s_{ij}(r_{uj} - b_{uj}) /
  \sum_{j \in N_k(i;u)} s_{ij}`: baseline :math:`b_{ui} = \mu + b_u + b_i`, and
  :math:`c_j = s_{ij}(r_{uj} - b_{uj}) / \sum_{N_k(i;u)} s` for the :math:`k` rated neighbours of :math:`i`
  (0 for the others). ``predict``/``score`` clip :math:`b_{ui} + \sum_j c_j` to the rating scale; the
  decomposition is of the unclipped value (:attr:`Explanation.clipped` says when the two differ).

In every case :math:`\text{baseline} + \sum_j c_j` equals the model's score to float precision (the tests check it
against ``score`` and ``predict``). The decompositions read the models' fitted attributes (``similarity_``,
``ratings_``, ``residuals_``, ``baseline_``, ``X_``, ``B_``, ``modelled_``), never their private scoring code.

**Attention** (:func:`attention`, :func:`attention_weights`). For :class:`~recsys_course.models.sequential.SASRec`
the weights :math:`a_{Ts} = \mathrm{softmax}_s(q_T^\top k_s / \sqrt{d_h})` of the last position :math:`T` of the
user's window over the films :math:`s \le T` in it. They are recomputed here from the network's own weights
(the same operations as :class:`~recsys_course.networks.sequential.SASRecNet`; a test checks that the
recomputation reproduces the network's output). With several heads the weights are averaged over heads; with
several blocks the last block's are shown by default — deeper blocks attend over positions that already mix
films, one more reason attention weights are not proven explanations (Jain & Wallace 2019).

**A sparse linear surrogate** (:func:`fit_surrogate`, LIME-like but global over the catalogue for one user,
after Ribeiro, Singh & Guestrin 2016). Over the films the user has not rated, the model's scores, standardised
to mean 0 and variance 1, are fitted by a Lasso on item features :math:`f_i` (genres and tags of
:func:`recsys_course.features.item_features`):

.. math:: \min_{w, w_0}\; \frac{1}{2n} \sum_i \big(z_{ui} - w_0 - w^\top f_i\big)^2 + \alpha \lVert w\rVert_1 .

Its **fidelity** is the :math:`R^2` of the surrogate on held-out films. It explains by features, not films; to
cite a film (:meth:`Surrogate.cite`) it picks the rated film that shares most of what the surrogate credits in
the recommended film: :math:`\arg\max_j \sum_f (w_f f_{if})_+\, f_{jf}`.

**The deletion test** (:func:`deletion_test`, :func:`summarise_deletion`). An explanation claims that the cited
film matters for the recommendation. For each user: take the top-1 recommended film :math:`i`, remove the cited
film from the user's history and rescore (:func:`scores_without`: no refit), and compare the new rank of
:math:`i` with its rank after removing a random other film of the same pool. A true explanation drops the rank
more than chance does. Ranks are among the films the user had not rated (the removed film stays excluded), so
both removals rank the same candidates; rank 1 before removal.

Errors: an unfitted model raises :class:`~recsys_course.models.base.NotFittedError`, an unknown user or film
:class:`~recsys_course.models.base.UnknownIdError`, a model a function cannot explain :class:`TypeError` naming
the ones it can.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import check_choice, check_int, check_number, check_share, is_int
from .config import ITEM, USER
from .features import ItemFeatures
from .metrics import top_k
from .models.base import NotFittedError, Recommender, UnknownIdError
from .models.factorization import EASE
from .models.neighbors import ItemKNN
from .models.sequential import SASRec
from .progress import progress
from .similarity import prune_top_k

__all__ = ["Explanation", "Surrogate", "contributions", "scores_without", "explained_films", "attention",
           "attention_weights", "fit_surrogate", "deletion_test", "summarise_deletion", "DECOMPOSABLE",
           "CITATIONS"]

#: The models :func:`contributions` decomposes exactly (exact classes: a subclass such as DecayedItemKNN
#: scores differently).
DECOMPOSABLE = (ItemKNN, EASE)
#: The models :func:`scores_without` rescores from a shortened history.
RESCORABLE = (ItemKNN, EASE, SASRec)
#: How :func:`deletion_test` picks the cited film.
CITATIONS = ("contribution", "attention", "surrogate")
#: Target films scored at once by the rating-mode ItemKNN rescoring (memory: this many × history floats).
_TARGET_BLOCK = 2048


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------
def _names(types) -> str:
    return ", ".join(t.__name__ for t in types)


def _check_model(model, supported, what: str) -> None:
    """``model`` is exactly one of ``supported`` and fitted."""
    if type(model) not in supported:
        raise TypeError(f"{what} supports {_names(supported)} only, got {type(model).__name__}"
                        f"{' (a subclass scores differently)' if isinstance(model, supported) else ''}; fit one "
                        "of those, or explain this model with fit_surrogate")
    if not model.is_fitted:
        raise NotFittedError(f"{type(model).__name__} is not fitted yet: call .fit(train) before explaining it")


def _position(model: Recommender, value, kind: str) -> int:
    """The row (``kind="user"``) or column (``kind="film"``) of ``value`` in the model's score matrices."""
    known = model.user_positions([value]) if kind == "user" else model.item_positions([value])
    if known[0] < 0:
        ids, what = ("user_ids_", "history to explain") if kind == "user" else ("item_ids_", "score to explain")
        raise UnknownIdError(f"{kind} {value!r} is not in {type(model).__name__}'s training data, so it has no "
                             f"{what}; pick a {kind} of model.{ids}"
                             + (" (or refit with their ratings)" if kind == "user" else " (e.g. one it recommends)"))
    return int(known[0])


def _user_position(model: Recommender, user) -> int:
    return _position(model, user, "user")


def _item_position(model: Recommender, item) -> int:
    return _position(model, item, "film")


def _row(matrix: sp.csr_matrix, u: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values stored in row ``u`` of a CSR matrix."""
    lo, hi = matrix.indptr[u], matrix.indptr[u + 1]
    return matrix.indices[lo:hi].astype(np.int64), np.asarray(matrix.data[lo:hi], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# exact decompositions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Explanation:
    """The decomposition of one score: ``baseline + contributions["contribution"].sum() == total``.

    ``contributions`` has one row per film of the user's history that enters the score (``movieId``, ``value``
    = :math:`x_{uj}` (the rating; 1 in ItemKNN's ranking mode; ItemKNN's rating mode: the residual
    :math:`r_{uj} - b_{uj}`), ``weight`` (:math:`B_{ji}`, the pruned :math:`s_{ji}`, or the normalised
    :math:`s_{ij} / \\sum s`), ``contribution`` = value × weight), largest contribution first (ties: the smaller
    movieId). ``score`` is the model's own number (``model.score``); ``clipped`` is True when the model clipped
    ``total`` to the rating scale (ItemKNN's rating mode).
    """

    user: object
    item: object
    model: str
    baseline: float
    contributions: pd.DataFrame
    total: float
    score: float
    clipped: bool

    @property
    def cited(self):
        """The film with the largest contribution: "because you rated ..."."""
        if len(self.contributions) == 0:
            raise ValueError(f"no rated film contributes to the score of film {self.item!r} for user "
                             f"{self.user!r}: there is nothing to cite")
        return self.contributions[ITEM].iloc[0]

    def because(self, titles: pd.Series | None = None, n: int = 3) -> str:
        """A one-line "because you rated" sentence naming the ``n`` largest positive contributions."""
        top = self.contributions[self.contributions["contribution"] > 0].head(n)
        names = [str(titles.get(m, m)) if titles is not None else str(m) for m in top[ITEM]]
        film = str(titles.get(self.item, self.item)) if titles is not None else str(self.item)
        if not names:
            return f"{film}: no rated film speaks for it"
        return f"{film}, because you rated " + "; ".join(names)


def _knn_rating_weights(model: ItemKNN, u: int, hist: np.ndarray,
                        targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""ItemKNN rating mode: the baselines :math:`b_{ui}` of ``targets`` and the weights
    ``(len(targets), len(hist))`` of the films ``hist``: for each target, its ``k`` most similar films of
    ``hist`` (positive similarity; ties → the lower position) get :math:`s_{ij} / \sum s_{ij}`, the others 0.
    A film's contribution is its weight times its residual :math:`r_{uj} - b_{uj}`."""
    k = int(check_int(model, "k", model.k))
    bl = model.baseline_
    bu = bl.user_bias_[bl.user_positions([model.user_ids_[u]])[0]]
    bi = bl.item_bias_[bl.item_positions(model.item_ids_[targets])]
    baseline = bl.mu_ + bu + bi
    T = model.similarity_[targets][:, hist].toarray().astype(np.float64)        # (targets, history)
    if T.shape[1] == 0:
        return baseline, T
    keep = np.zeros(T.shape, dtype=bool)
    np.put_along_axis(keep, top_k(T, k), True, axis=1)
    T *= keep & (T > 0)                                                          # only positive neighbours
    den = T.sum(1, keepdims=True)
    return baseline, np.divide(T, den, out=np.zeros_like(T), where=den > 0)


def _knn_ranking_rows(model: ItemKNN, films: np.ndarray) -> sp.csr_matrix:
    """Rows ``films`` of ItemKNN's pruned similarity: row j keeps its ``k`` most similar films :math:`N_k(j)`.

    Pruning is row by row, so pruning only these rows gives the same rows as pruning the whole matrix."""
    k = int(check_int(model, "k", model.k))
    return prune_top_k(model.similarity_[films], k)


def _knn_ranking_column(model: ItemKNN, films: np.ndarray, i: int) -> np.ndarray:
    r"""Column ``i`` of the rows ``films`` of ItemKNN's pruned similarity, :math:`s_{ji}\,\mathbb 1[i \in
    N_k(j)]`, without pruning whole rows: :math:`i \in N_k(j)` when fewer than ``k`` entries of row :math:`j`
    come before it (a larger similarity, or an equal one in a lower column) — the order of
    :func:`~recsys_course.similarity.prune_top_k`."""
    k = int(check_int(model, "k", model.k))
    sub = model.similarity_[films]
    s = sub[:, [i]].toarray().ravel()                                  # s_ji, in the similarity's dtype
    of_row = np.repeat(s, np.diff(sub.indptr))                          # s_ji beside every entry of row j
    before = (sub.data > of_row) | ((sub.data == of_row) & (sub.indices < i))
    counts = np.concatenate([[0], np.cumsum(before)])
    n_before = counts[sub.indptr[1:]] - counts[sub.indptr[:-1]]
    return np.where((s > 0) & (n_before < k), s, 0).astype(np.float64)


def contributions(model: Recommender, user, item) -> Explanation:
    """Decompose ``model``'s score of film ``item`` for ``user`` into a baseline and one contribution per rated
    film (see the module docstring for the formulas). Supports ``ItemKNN`` (both modes) and ``EASE``.

    Raises
    ------
    TypeError
        For any other model (use :func:`fit_surrogate`, or :func:`attention` for SASRec).
    NotFittedError
        Before ``fit``.
    UnknownIdError
        For a user or film absent from the model's training data.
    ValueError
        For a film EASE does not model (fewer than ``min_item_count`` training ratings: its score is ``-inf``).
    """
    _check_model(model, DECOMPOSABLE, "contributions")
    u, i = _user_position(model, user), _item_position(model, item)
    score = float(model.score([user])[0, i])
    if type(model) is EASE:
        col = int(np.searchsorted(model.modelled_, i))
        if col >= len(model.modelled_) or model.modelled_[col] != i:
            raise ValueError(f"EASE does not model film {item!r} (fewer than min_item_count="
                             f"{model.min_item_count} training ratings), so its score is -inf and there is nothing "
                             "to explain; pick a film of model.item_ids_[model.modelled_]")
        cols, values = _row(model.X_, u)                       # the user's modelled films, x_uj
        weights = np.asarray(model.B_[cols, col], dtype=np.float64)
        films, baseline = model.modelled_[cols], 0.0
    elif model.mode == "ranking":
        films, values = _row(model.seen_, u)
        weights = _knn_ranking_column(model, films, i)
        baseline = 0.0
    else:
        films, values = _row(model.residuals_, u)             # the residuals r_uj - b_uj
        base, w = _knn_rating_weights(model, u, films, np.array([i]))
        baseline, weights = float(base[0]), w[0]
    contrib = values * weights
    frame = pd.DataFrame({ITEM: model.item_ids_[films], "value": values, "weight": weights,
                          "contribution": contrib})
    frame = frame.iloc[np.lexsort((frame[ITEM].to_numpy(), -frame["contribution"].to_numpy()))]
    total = float(baseline + contrib.sum())
    lo, hi = model.rating_range_
    clipped = bool(type(model) is ItemKNN and model.mode == "rating" and not lo <= total <= hi)
    return Explanation(user=user, item=item, model=type(model).__name__, baseline=float(baseline),
                       contributions=frame.reset_index(drop=True), total=total, score=score, clipped=clipped)


# --------------------------------------------------------------------------------------------
# rescoring a shortened history (no refit)
# --------------------------------------------------------------------------------------------
def _history_positions(model: Recommender, u: int) -> np.ndarray:
    """The catalogue positions that enter ``model``'s scores for user position ``u``: every rated film
    (ItemKNN), the modelled ones (EASE), the last ``max_len`` of the sequence (SASRec), oldest first."""
    if type(model) is EASE:
        return model.modelled_[_row(model.X_, u)[0]]
    if type(model) is SASRec:
        seq = model.seq_[model.seq_indptr_[u]:model.seq_indptr_[u + 1]]
        return seq[-int(model.max_len):].astype(np.int64)
    return _row(model.seen_, u)[0]


def explained_films(model: Recommender, user) -> np.ndarray:
    """The movieIds of ``user``'s history that enter ``model``'s score: the films an explanation can cite
    (ItemKNN: every rated film; EASE: the modelled ones; SASRec: the last ``max_len`` of the sequence, oldest
    first)."""
    _check_model(model, RESCORABLE, "explained_films")
    return model.item_ids_[_history_positions(model, _user_position(model, user))]


def scores_without(model: Recommender, user, removed) -> np.ndarray:
    r"""``user``'s score of every catalogue film (columns in ``item_ids_`` order, as ``model.score``) once the
    films ``removed`` (movieIds the user rated) are taken out of their training history — no refit.

    * EASE: :math:`x_u' B` with :math:`x_{uj}' = 0` for the removed films (``-inf`` for films it does not model).
    * ItemKNN, ranking mode: the score is a sum over the history, so each removed film's pruned similarity row
      :math:`s_{j\cdot}\mathbb 1[\cdot \in N_k(j)]` is subtracted from ``model.score``.
    * ItemKNN, rating mode: every film's :math:`k` rated neighbours are chosen again from the shorter history
      (a removed neighbour is replaced by the next one), then clipped like ``score``. Costs
      :math:`O(n_{\text{items}}\,|R(u)|)`.
    * SASRec: the user's sequence without the removed films, continued with
      :meth:`~recsys_course.models.sequential.SequenceRecommender.next_item_scores` (an older film enters the
      ``max_len`` window when one leaves it).

    The similarities, biases and network stay as fitted: this is what the fitted model says about the shorter
    history, not what a model refitted without the rating would say.
    """
    _check_model(model, RESCORABLE, "scores_without")
    u = _user_position(model, user)
    removed = np.atleast_1d(np.asarray(removed))
    rpos = model.item_positions(removed)
    rated = _row(model.seen_, u)[0]
    bad = removed[(rpos < 0) | ~np.isin(rpos, rated)]
    if len(bad):
        raise ValueError(f"film(s) {list(bad[:5])} are not in user {user!r}'s training history, so they cannot be "
                         "removed from it; remove films the user rated (model.seen_)")
    if len(removed) == 0:
        return model.score([user])[0]
    if type(model) is EASE:
        cols, values = _row(model.X_, u)
        keep = ~np.isin(model.modelled_[cols], rpos)
        out = np.full(model.n_items, -np.inf)
        out[model.modelled_] = values[keep] @ np.asarray(model.B_[cols[keep]], dtype=np.float64)
        return out
    if type(model) is SASRec:
        seq = model.seq_[model.seq_indptr_[u]:model.seq_indptr_[u + 1]]
        kept = seq[~np.isin(seq, rpos)]
        if len(kept) == 0:
            raise ValueError(f"removing {len(removed)} film(s) leaves user {user!r} with no history for SASRec to "
                             "continue; remove fewer films")
        return model.next_item_scores(model.item_ids_[kept])[-1]
    if model.mode == "ranking":
        out = model.score([user])[0]
        return out - np.asarray(_knn_ranking_rows(model, rpos).sum(0), dtype=np.float64).ravel()
    films, resid = _row(model.residuals_, u)
    keep = ~np.isin(films, rpos)
    out = np.empty(model.n_items)
    for start in range(0, model.n_items, _TARGET_BLOCK):
        targets = np.arange(start, min(start + _TARGET_BLOCK, model.n_items))
        base, w = _knn_rating_weights(model, u, films[keep], targets)
        out[targets] = base + w @ resid[keep]
    return np.clip(out, *model.rating_range_)


# --------------------------------------------------------------------------------------------
# SASRec's attention
# --------------------------------------------------------------------------------------------
def attention_weights(model: SASRec, tokens):
    r"""Recompute SASRec's forward pass on ``tokens`` (``(B, L)`` item positions + 1, right-padded with 0) from
    the fitted network's weights, keeping every block's attention.

    Per block: :math:`X \leftarrow X + \mathrm{Attn}(\mathrm{LN}_1 X)`, :math:`X \leftarrow X +
    \mathrm{FFN}(\mathrm{LN}_2 X)`, with :math:`\mathrm{Attn}` as in the module docstring (causal mask); dropout is
    off (the network is evaluated, not trained). Returns ``(states, weights)``: the final states ``(B, L, d)``
    (equal to ``model.module_(tokens)``) and a list of one ``(B, heads, L, L)`` array per block, row :math:`t`
    = the weights of position :math:`t` over positions :math:`s \le t` (they sum to 1).
    """
    import torch

    _check_model(model, (SASRec,), "attention_weights")
    net = model.module_
    t = torch.as_tensor(np.asarray(tokens), dtype=torch.int64, device=model.device_)
    if t.ndim != 2 or t.shape[1] > net.pos_emb.num_embeddings:
        raise ValueError(f"tokens must be (batch, length) with length <= max_len={net.pos_emb.num_embeddings}, got "
                         f"shape {tuple(t.shape)}")
    B, L = t.shape
    weights = []
    with torch.no_grad():
        x = net.item_emb(t) + net.pos_emb(torch.arange(L, device=t.device))[None]       # (B, L, d)
        future = torch.ones(L, L, dtype=torch.bool, device=t.device).triu(1)
        for block in net.blocks:
            att_mod = block.attn
            h, d = att_mod.n_heads, x.shape[-1]
            xn = block.ln1(x)
            q, k, v = (lin(xn).view(B, L, h, d // h).transpose(1, 2)                    # (B, h, L, d_h)
                       for lin in (att_mod.q, att_mod.k, att_mod.v))
            a = (q @ k.transpose(-2, -1) / np.sqrt(d // h)).masked_fill(future, float("-inf")).softmax(-1)
            weights.append(a.cpu().numpy().astype(np.float64))                         # (B, h, L, L)
            x = x + att_mod.proj((a @ v).transpose(1, 2).reshape(B, L, d))
            ffn = block.ffn                                                             # Linear, act, Dropout, Linear
            x = x + ffn[3](ffn[1](ffn[0](block.ln2(x))))
        states = net.ln(x).cpu().numpy().astype(np.float64)
    return states, weights


def attention(model: SASRec, user, block: int = -1) -> pd.DataFrame:
    """SASRec's attention of the last position of ``user``'s window (their last ``max_len`` training films, the
    input ``recommend`` continues) over the films in it, averaged over heads, of block ``block`` (default: the
    last one).

    Returns a DataFrame ``position`` (1 = the oldest film of the window), ``movieId``, ``attention`` (sums to 1),
    in window order. See the module docstring for why attention is not proof of influence.
    """
    _check_model(model, (SASRec,), "attention")
    u = _user_position(model, user)
    n_blocks = len(model.module_.blocks)
    if not is_int(block) or not -n_blocks <= block < n_blocks:
        raise ValueError(f"block must be in [-{n_blocks}, {n_blocks - 1}] (the network has {n_blocks} block(s)), "
                         f"got {block}")
    films = _history_positions(model, u)
    _, weights = attention_weights(model, (films + 1)[None])
    w = weights[block][0, :, -1, :].mean(0)                                           # (L,) over heads
    return pd.DataFrame({"position": np.arange(1, len(films) + 1), ITEM: model.item_ids_[films], "attention": w})


# --------------------------------------------------------------------------------------------
# the surrogate
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Surrogate:
    """A sparse linear surrogate of one user's scores: ``z ≈ intercept + features @ weights``.

    ``coef`` holds the non-zero weights by feature name, largest absolute value first (ties: the feature
    order); ``r2`` is the fidelity on the held-out films, ``r2_train`` on the films it was fitted on;
    ``n_films`` films were used in all (``n_test`` held out). ``weights`` has one entry per column of
    ``features.matrix``.
    """

    user: object
    model: str
    weights: np.ndarray
    intercept: float
    coef: pd.Series
    r2: float
    r2_train: float
    n_films: int
    n_test: int
    features: ItemFeatures

    def top(self, n: int = 10) -> pd.Series:
        """The ``n`` largest weights (by absolute value)."""
        return self.coef.head(n)

    def predict(self, items) -> np.ndarray:
        """The surrogate's standardised score of films ``items`` (movieIds; no features → the intercept)."""
        return self.intercept + np.asarray(self.features.rows(np.asarray(items)) @ self.weights).ravel()

    def cite(self, history, item):
        r"""The film of ``history`` (movieIds) that shares most of what the surrogate credits in film ``item``:
        :math:`\arg\max_j \sum_f (w_f f_{if})_+ f_{jf}` (ties: the first film of ``history``)."""
        history = np.asarray(history)
        if len(history) == 0:
            raise ValueError("history is empty: there is no film to cite")
        credit = np.maximum(self.features.rows([item]).toarray().ravel() * self.weights, 0.0)
        overlap = np.asarray(self.features.rows(history) @ credit).ravel()
        return history[int(np.argmax(overlap))]


def fit_surrogate(model: Recommender, user, features: ItemFeatures, alpha: float = 0.003, test_share: float = 0.2,
                  seed: int = 0) -> Surrogate:
    r"""Fit a Lasso surrogate of ``model``'s scores for ``user`` over the films they have not rated (see the
    module docstring). Any fitted model works: only ``score`` is read.

    Films with a non-finite score (not modelled) or without a feature row are left out; the scores are
    standardised; a seeded ``test_share`` of the films is held out to measure the fidelity :math:`R^2`.
    ``alpha`` is the Lasso's :math:`\alpha` (on standardised scores: larger = fewer features). Cost: one Lasso
    fit (coordinate descent) on films × features, a fraction of a second on ml-latest-small.
    """
    from sklearn.linear_model import Lasso

    if not isinstance(model, Recommender):
        raise TypeError(f"fit_surrogate explains a Recommender of the course (any model with score), got "
                        f"{type(model).__name__}")
    if not model.is_fitted:
        raise NotFittedError(f"{type(model).__name__} is not fitted yet: call .fit(train) before explaining it")
    if not isinstance(features, ItemFeatures):
        raise TypeError(f"features must be recsys_course.features.ItemFeatures (item_features(movies, tags)), got "
                        f"{type(features).__name__}")
    check_number("fit_surrogate", "alpha", alpha, positive=True)
    check_share("fit_surrogate", "test_share", test_share)
    check_int("fit_surrogate", "seed", seed, low=0)
    u = _user_position(model, user)
    scores = model.score([user])[0]
    candidate = np.isfinite(scores) & (features.positions(model.item_ids_) >= 0)
    candidate[_row(model.seen_, u)[0]] = False
    films = np.flatnonzero(candidate)
    if len(films) < 10:
        raise ValueError(f"only {len(films)} unrated films with features and a finite score: too few to fit a "
                         "surrogate; give features for the model's catalogue")
    z = scores[films]
    z = (z - z.mean()) / (z.std() if z.std() > 0 else 1.0)
    X = features.rows(model.item_ids_[films]).tocsc()
    test = np.zeros(len(films), dtype=bool)
    test[np.random.default_rng(seed).choice(len(films), max(1, int(round(test_share * len(films)))),
                                            replace=False)] = True
    lasso = Lasso(alpha=alpha, max_iter=5000, tol=1e-4).fit(X[~test], z[~test])
    w = np.asarray(lasso.coef_, dtype=np.float64)

    def r2(mask):
        pred = lasso.predict(X[mask])
        return float(1 - ((z[mask] - pred) ** 2).sum() / ((z[mask] - z[mask].mean()) ** 2).sum())

    nz = np.flatnonzero(w)
    order = nz[np.lexsort((nz, -np.abs(w[nz])))]
    coef = pd.Series(w[order], index=features.feature_names[order], name="weight")
    return Surrogate(user=user, model=type(model).__name__, weights=w, intercept=float(lasso.intercept_),
                     coef=coef, r2=r2(test), r2_train=r2(~test), n_films=len(films), n_test=int(test.sum()),
                     features=features)


# --------------------------------------------------------------------------------------------
# the deletion test
# --------------------------------------------------------------------------------------------
def _rank(scores: np.ndarray, target: int, candidates: np.ndarray) -> int:
    """Rank of position ``target`` among the ``candidates`` mask (1 = best; ties → the lower position first)."""
    s = scores[target]
    better = candidates & ((scores > s) | ((scores == s) & (np.arange(len(scores)) < target)))
    return int(better.sum()) + 1


def deletion_test(model: Recommender, users, cite: str = "contribution", features: ItemFeatures | None = None,
                  seed: int = 0, alpha: float = 0.003, show_progress: bool = False) -> pd.DataFrame:
    """Test an explanation method on ``users``: remove the film it cites for each user's top-1 film, rescore
    (:func:`scores_without`) and compare the top film's new rank with its rank after removing a random other
    film of the same pool (:func:`explained_films`).

    ``cite``: ``"contribution"`` (ItemKNN, EASE: the largest contribution of :func:`contributions`),
    ``"attention"`` (SASRec: the film with the most attention, :func:`attention`) or ``"surrogate"`` (any
    rescorable model; a surrogate per user (:func:`fit_surrogate` with ``features``, ``alpha``), which cites
    with :meth:`Surrogate.cite`). The random film of each user comes from one generator seeded with ``seed``,
    drawn in the order of ``users``. Users with fewer than two films in the pool are skipped.

    Returns one row per user: ``userId``, ``movieId`` (the top-1 film), ``cited``, ``random``, ``n_pool``,
    ``rank_cited`` and ``rank_random`` (the top film's rank after each removal; 1 = unchanged at the top),
    ``drop_cited`` / ``drop_random`` (rank − 1), and for the surrogate its fidelity ``r2``.
    """
    check_choice("deletion_test", "cite", cite, CITATIONS)
    supported = {"contribution": DECOMPOSABLE, "attention": (SASRec,), "surrogate": RESCORABLE}[cite]
    _check_model(model, supported, f"deletion_test(cite={cite!r})")
    if cite == "surrogate" and not isinstance(features, ItemFeatures):
        raise TypeError("cite='surrogate' needs features=item_features(movies, tags), the surrogate's inputs")
    check_int("deletion_test", "seed", seed, low=0)
    users = np.atleast_1d(np.asarray(users))
    for user in users:
        _user_position(model, user)
    top = model.recommend(users, k=1).set_index(USER)[ITEM]
    rng = np.random.default_rng(seed)
    rows = []
    for user in progress(users, desc=f"deletion test ({cite})", disable=not show_progress):
        u = int(model.user_positions([user])[0])
        pool = _history_positions(model, u)
        if len(pool) < 2 or user not in top.index:
            continue
        item = top[user]
        extra = {}
        if cite == "contribution":
            cited = contributions(model, user, item).cited
        elif cite == "attention":
            frame = attention(model, user)
            cited = frame[ITEM].iloc[int(np.argmax(frame["attention"].to_numpy()))]
        else:
            surrogate = fit_surrogate(model, user, features, alpha=alpha, seed=seed)
            cited = surrogate.cite(model.item_ids_[pool], item)
            extra["r2"] = surrogate.r2
        others = model.item_ids_[pool[model.item_ids_[pool] != cited]]
        random_film = others[rng.integers(len(others))]
        candidates = np.ones(model.n_items, dtype=bool)
        candidates[_row(model.seen_, u)[0]] = False
        i = int(model.item_positions([item])[0])
        rank_cited = _rank(scores_without(model, user, [cited]), i, candidates)
        rank_random = _rank(scores_without(model, user, [random_film]), i, candidates)
        rows.append({USER: user, ITEM: item, "cited": cited, "random": random_film, "n_pool": len(pool),
                     "rank_cited": rank_cited, "rank_random": rank_random, "drop_cited": rank_cited - 1,
                     "drop_random": rank_random - 1, **extra})
    columns = [USER, ITEM, "cited", "random", "n_pool", "rank_cited", "rank_random", "drop_cited", "drop_random"]
    return pd.DataFrame(rows, columns=columns + (["r2"] if cite == "surrogate" else []))


def summarise_deletion(result: pd.DataFrame) -> pd.Series:
    """One line per method: ``n_users``, ``share_cited_larger`` (the cited removal drops the top film further
    than the random one), ``share_tied``, ``share_random_larger``, ``mean_drop_cited``, ``mean_drop_random``, ``median_drop_cited``,
    ``median_drop_random`` and ``share_cited_left_top`` (the cited removal moves the film off rank 1)."""
    missing = [c for c in ("drop_cited", "drop_random") if c not in result.columns]
    if missing:
        raise ValueError(f"result is missing column(s) {missing}; pass the frame deletion_test returns")
    if len(result) == 0:
        raise ValueError("result has no users: deletion_test skipped them all (histories of fewer than 2 films?)")
    c, r = result["drop_cited"].to_numpy(float), result["drop_random"].to_numpy(float)
    return pd.Series({"n_users": float(len(result)), "share_cited_larger": float(np.mean(c > r)),
                      "share_tied": float(np.mean(c == r)), "share_random_larger": float(np.mean(c < r)),
                      "mean_drop_cited": float(c.mean()),
                      "mean_drop_random": float(r.mean()), "median_drop_cited": float(np.median(c)),
                      "median_drop_random": float(np.median(r)), "share_cited_left_top": float(np.mean(c > 0))})
