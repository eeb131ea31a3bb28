r"""Accuracy and beyond-accuracy metrics, each with its formula.

Ranking metrics take ``recommended`` (one ranked list per user, best first) and ``relevant`` (one
collection of relevant items per user) and return the mean over users. For one user pass a plain list and a
``set``: ``precision_at_k(["a", "b", "c"], {"b"}, k=3)``. A user with no relevant items has no defined
recall, AP or NDCG, so such users raise an error instead of silently counting as zero — drop them first
(:func:`recsys_course.evaluate.evaluate` does).

All ranking metrics are computed from one boolean *hit matrix* ``hits[u, j] = (j-th item for u is
relevant)``, built once by :func:`hit_matrix`.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from .data import DataError


# --------------------------------------------------------------------------------------------
# rating accuracy
# --------------------------------------------------------------------------------------------
def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}; they must pair up")
    if t.size == 0:
        raise ValueError("no ratings to score: y_true and y_pred are empty")
    if np.isnan(t).any() or np.isnan(p).any():
        raise ValueError(f"NaN in {'y_true' if np.isnan(t).any() else 'y_pred'}: a model or the data produced "
                         "a missing value; fix it before scoring")
    return t, p


def rmse(y_true, y_pred) -> float:
    r"""Root mean squared error: :math:`\sqrt{\frac1n \sum_{(u,i)} (r_{ui} - \hat r_{ui})^2}`."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true, y_pred) -> float:
    r"""Mean absolute error: :math:`\frac1n \sum_{(u,i)} |r_{ui} - \hat r_{ui}|`."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


# --------------------------------------------------------------------------------------------
# the hit matrix
# --------------------------------------------------------------------------------------------
def _check_k(k) -> int:
    from .checks import check_int

    return int(check_int(None, "k", k))


def _per_user(recommended, relevant):
    """Accept one user (a list and a set/dict) or many (a list of lists and a list of sets/dicts)."""
    if isinstance(relevant, (set, frozenset, Mapping)):
        return [list(recommended)], [relevant]
    recommended = [list(r) for r in recommended]
    relevant = list(relevant)
    if len(recommended) != len(relevant):
        raise ValueError(f"recommended has {len(recommended)} users but relevant has {len(relevant)}")
    if not recommended:
        raise ValueError("no users to score: recommended and relevant are empty")
    return recommended, relevant


def hit_matrix(recommended, relevant, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``hits`` (users × k, bool; short lists are padded with misses) and ``n_relevant`` per user."""
    k = _check_k(k)
    recommended, relevant = _per_user(recommended, relevant)
    hits = np.zeros((len(recommended), k), dtype=bool)
    n_rel = np.empty(len(recommended), dtype=np.int64)
    for u, (recs, rel) in enumerate(zip(recommended, relevant)):
        if len(set(recs)) != len(recs):
            raise ValueError(f"user #{u}'s list recommends an item twice: {recs}")
        if len(rel) == 0:
            raise DataError(f"user #{u} has no relevant items, so recall, AP and NDCG are undefined; "
                            "drop users without relevant test items first")
        if isinstance(rel, Mapping):  # graded relevance: an item is relevant if its gain is positive
            rel = {i for i, g in rel.items() if g > 0}
            if not rel:
                raise DataError(f"user #{u} has no item with a positive gain; drop such users first")
        top = recs[:k]
        hits[u, :len(top)] = [item in rel for item in top]
        n_rel[u] = len(rel)
    return hits, n_rel


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


# Each *_from_hits function is the formula on the hit matrix; the public functions build the matrix.
def precision_from_hits(hits, n_rel) -> float:
    return float(hits.sum(1).mean() / hits.shape[1])


def recall_from_hits(hits, n_rel) -> float:
    return float((hits.sum(1) / n_rel).mean())


def hit_rate_from_hits(hits, n_rel) -> float:
    return float(hits.any(1).mean())


def mrr_from_hits(hits, n_rel) -> float:
    first = hits.argmax(1)
    return float(np.where(hits.any(1), 1.0 / (first + 1), 0.0).mean())


def map_from_hits(hits, n_rel) -> float:
    k = hits.shape[1]
    precision_at_i = np.cumsum(hits, 1) / np.arange(1, k + 1)
    ap = (precision_at_i * hits).sum(1) / np.minimum(n_rel, k)
    return float(ap.mean())


def ndcg_from_hits(hits, n_rel) -> float:
    k = hits.shape[1]
    disc = _discounts(k)
    dcg = (hits * disc).sum(1)
    idcg = np.cumsum(disc)[np.minimum(n_rel, k) - 1]
    return float((dcg / idcg).mean())


def mask_seen(scores: np.ndarray, seen, rows=None) -> np.ndarray:
    """``-inf`` in place wherever ``seen`` has a non-zero entry: what a user already rated never enters a
    ranking. ``seen`` is sparse with one row per entry of ``rows`` (the rows of ``scores`` it belongs to; by
    default every row, in order). Touches only the seen entries — no dense mask. Returns ``scores``."""
    seen = sp.csr_matrix(seen)
    if not seen.data.all():  # a stored zero is not "seen"
        seen = seen.copy()
        seen.eliminate_zeros()
    rows = np.arange(seen.shape[0]) if rows is None else np.asarray(rows)
    if len(rows) != seen.shape[0]:
        raise ValueError(f"seen has {seen.shape[0]} rows but rows names {len(rows)}; pass one seen row per row")
    scores[np.repeat(rows, np.diff(seen.indptr)), seen.indices] = -np.inf
    return scores


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the k largest scores per row, best first; ties go to the lower position.

    ``-inf`` marks excluded entries; they sort last (callers drop them). For float scores without NaN and
    k ≤ 32 a compiled pass over each row (:func:`recsys_course.kernels.top_k_rows`, 5–10× faster than a
    partition), otherwise NumPy; the same positions either way.
    """
    from .kernels import top_k_fast  # numba is imported on first use, not with the metrics

    n = scores.shape[1]
    k = min(k, n)
    if k == n:
        return np.argsort(-scores, axis=1, kind="stable")
    fast = top_k_fast(scores, k)
    if fast is not None:
        return fast
    out = np.empty((scores.shape[0], k), dtype=np.intp)
    # rows whose maximum is shared by at least k entries (a rating model clips its predictions to the scale,
    # so many films can tie at 5.0): the answer is the first k of them, no partition needed
    at_max = scores == scores.max(1, keepdims=True)
    flat = at_max.sum(1) >= k
    if flat.any():
        sub = at_max[flat]
        out[flat] = np.nonzero(sub & (np.cumsum(sub, axis=1) <= k))[1].reshape(-1, k)
    rest = np.flatnonzero(~flat)
    if rest.size:
        out[rest] = _top_k_partitioned(scores if rest.size == len(scores) else scores[rest], k)
    return out


def _top_k_partitioned(scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_k` through a partition (k < number of columns)."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, part, 1).min(1)
    part_scores = np.take_along_axis(scores, part, 1)
    order = np.lexsort((part, -part_scores), axis=1)
    out = np.take_along_axis(part, order, 1)
    # rows where the k-th score is tied with scores left outside the partition: what a stable sort would keep,
    # without sorting the row — everything above the k-th score, then the lowest positions equal to it
    ambiguous = (scores >= kth[:, None]).sum(1) > k
    if ambiguous.any():
        sub, kt = scores[ambiguous], kth[ambiguous][:, None]
        above = sub > kt
        tied = sub == kt
        keep = above | (tied & (np.cumsum(tied, axis=1) <= k - above.sum(1, keepdims=True)))
        cols = np.nonzero(keep)[1].reshape(-1, k)  # exactly k per row, ascending
        order = np.lexsort((cols, -np.take_along_axis(sub, cols, 1)), axis=1)
        out[ambiguous] = np.take_along_axis(cols, order, 1)
    return out


def ndcg_of_scores(scores: np.ndarray, seen, relevant, n_rel=None, k: int = 10) -> float:
    r"""Mean NDCG@k of a dense score matrix, ranked exactly as :func:`recsys_course.evaluate.evaluate` ranks.

    ``scores`` is ``(users, items)`` (NumPy or torch); ``seen`` and ``relevant`` are sparse 0/1 matrices of the
    same shape: seen items are excluded from the ranking, relevant ones are the hits. ``n_rel[u]`` is user u's
    number of relevant items, including any the score matrix has no column for (they can only be misses);
    by default the row sums of ``relevant``. Rows with ``n_rel = 0`` are skipped (NaN if every row is). Ties go
    to the lower column (:func:`top_k`), ``-inf`` scores are never hits. This is the ranking metric every
    model of the course early-stops on.
    """
    k = _check_k(k)
    if hasattr(scores, "detach"):  # a torch tensor
        scores = scores.detach().cpu().double().numpy()
    relevant = relevant.tocsr()
    n_rel = np.diff(relevant.indptr) if n_rel is None else np.asarray(n_rel)
    rows = np.flatnonzero(n_rel)
    if len(rows) == 0:
        return float("nan")
    s = np.array(scores[rows], dtype=np.float64)
    mask_seen(s, seen.tocsr()[rows])
    top = top_k(s, k)
    hits = np.take_along_axis(relevant[rows].toarray() > 0, top, 1) & np.isfinite(np.take_along_axis(s, top, 1))
    if hits.shape[1] < k:
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))
    return ndcg_from_hits(hits, n_rel[rows])


def precision_at_k(recommended, relevant, k: int) -> float:
    r"""Precision@k: :math:`\frac{|\mathrm{top}_k(u) \cap \mathrm{Rel}(u)|}{k}`, averaged over users."""
    return precision_from_hits(*hit_matrix(recommended, relevant, k))


def recall_at_k(recommended, relevant, k: int) -> float:
    r"""Recall@k: :math:`\frac{|\mathrm{top}_k(u) \cap \mathrm{Rel}(u)|}{|\mathrm{Rel}(u)|}`, averaged."""
    return recall_from_hits(*hit_matrix(recommended, relevant, k))


def hit_at_k(recommended, relevant, k: int) -> float:
    r"""Hit rate@k: :math:`\mathbb 1[\mathrm{top}_k(u) \cap \mathrm{Rel}(u) \neq \emptyset]`, averaged."""
    return hit_rate_from_hits(*hit_matrix(recommended, relevant, k))


def mrr_at_k(recommended, relevant, k: int) -> float:
    r"""Mean reciprocal rank@k: :math:`1/\mathrm{rank}` of the first relevant item within the top k (0 if
    none), averaged over users."""
    return mrr_from_hits(*hit_matrix(recommended, relevant, k))


def map_at_k(recommended, relevant, k: int) -> float:
    r"""Mean average precision@k:
    :math:`\mathrm{AP@k}(u) = \frac{1}{\min(|\mathrm{Rel}(u)|, k)} \sum_{i=1}^{k} P@i(u)\,\mathrm{rel}_i`,
    where :math:`\mathrm{rel}_i = 1` if the i-th item is relevant; MAP@k is its mean over users.
    The ``min(|Rel|, k)`` makes a perfect list score 1 even when a user has more than k relevant items."""
    return map_from_hits(*hit_matrix(recommended, relevant, k))


def ndcg_at_k(recommended, relevant, k: int) -> float:
    r"""Normalised discounted cumulative gain@k:
    :math:`\mathrm{DCG@k} = \sum_{i=1}^{k} \frac{g_i}{\log_2(i+1)}`, :math:`\mathrm{NDCG@k} =
    \mathrm{DCG@k} / \mathrm{IDCG@k}`, where IDCG is the DCG of the best possible order.

    With sets, gains are binary (1 if relevant). With dicts ``{item: gain}`` the gains are graded (linear,
    as in ``sklearn.metrics.ndcg_score``); items missing from the dict have gain 0.
    """
    k = _check_k(k)
    recommended, relevant = _per_user(recommended, relevant)
    if not any(isinstance(r, Mapping) for r in relevant):
        return ndcg_from_hits(*hit_matrix(recommended, relevant, k))
    disc = _discounts(k)
    scores = []
    for u, (recs, rel) in enumerate(zip(recommended, relevant)):
        if len(set(recs)) != len(recs):
            raise ValueError(f"user #{u}'s list recommends an item twice: {recs}")
        gains = dict(rel) if isinstance(rel, Mapping) else {i: 1.0 for i in rel}
        ideal = np.sort(np.fromiter(gains.values(), float))[::-1][:k]
        if ideal.sum() <= 0:
            raise DataError(f"user #{u} has no item with a positive gain, so NDCG is undefined")
        dcg = sum(gains.get(item, 0.0) * disc[i] for i, item in enumerate(recs[:k]))
        scores.append(dcg / (ideal * disc[:len(ideal)]).sum())
    return float(np.mean(scores))


# --------------------------------------------------------------------------------------------
# beyond accuracy
# --------------------------------------------------------------------------------------------
def catalog_coverage(recommended, catalog_size: int, k: int | None = None) -> float:
    r"""Catalogue coverage: :math:`|\bigcup_u \mathrm{top}_k(u)| \,/\, |I|`, the share of the catalogue that
    appears in at least one user's list."""
    if catalog_size <= 0:
        raise ValueError(f"catalog_size must be positive, got {catalog_size}")
    k = None if k is None else _check_k(k)
    lists = [list(r)[:k] for r in recommended]
    return len({i for r in lists for i in r}) / catalog_size


def novelty(recommended, item_counts: Mapping, n_users: int, k: int | None = None) -> float:
    r"""Mean self-information of the recommended items: :math:`\frac{1}{|U|\,k}\sum_u \sum_{i \in
    \mathrm{top}_k(u)} -\log_2 p_i`, with :math:`p_i` = share of the ``n_users`` training users who rated
    ``i``. Higher means less popular, more surprising items. An item nobody rated gets :math:`p_i = 1/n`.
    """
    if n_users <= 0:
        raise ValueError(f"n_users must be positive, got {n_users}")
    k = None if k is None else _check_k(k)
    values = [-np.log2(max(item_counts.get(i, 0), 1) / n_users) for r in recommended for i in list(r)[:k]]
    if not values:
        raise ValueError("no recommendations to score")
    return float(np.mean(values))


def intra_list_diversity(recommended, item_features: Mapping, k: int | None = None) -> float:
    r"""Intra-list diversity: the mean over users of the mean pairwise cosine *distance* within a list,
    :math:`\frac{2}{k(k-1)}\sum_{i<j} (1 - \cos(f_i, f_j))`, where :math:`f_i` is item i's feature vector
    (e.g. genre indicators). Lists with fewer than two items are skipped."""
    k = None if k is None else _check_k(k)
    per_user = []
    for r in recommended:
        items = list(r)[:k]
        if len(items) < 2:
            continue
        missing = [i for i in items if i not in item_features]
        if missing:
            raise KeyError(f"no features for item(s) {missing[:5]}; pass features for every recommended item")
        f = np.asarray([item_features[i] for i in items], dtype=float)
        norms = np.linalg.norm(f, axis=1, keepdims=True)
        f = np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)
        sim = f @ f.T
        n = len(items)
        per_user.append(1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))
    if not per_user:
        raise ValueError("no list has two or more items; diversity is undefined")
    return float(np.mean(per_user))


RANKING_METRICS = {
    "precision": precision_from_hits,
    "recall": recall_from_hits,
    "ndcg": ndcg_from_hits,
    "map": map_from_hits,
    "hit": hit_rate_from_hits,
    "mrr": mrr_from_hits,
}
