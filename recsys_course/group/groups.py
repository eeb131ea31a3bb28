r"""Groups: the two documented forms a group list can take, and groups built for study.

A *group list* is either

* a DataFrame with columns ``groupId, userId``, one row per member (other columns, e.g. ``similarity``, are
  kept), or
* a mapping ``{groupId: [userId, ...]}``.

:func:`as_groups` turns either into the DataFrame form; every function of :mod:`recsys_course.group` that
takes ``groups`` accepts both.

MovieLens has no real groups (nobody recorded who watched with whom), so :func:`make_groups` builds them, seeded:
random groups, groups of similar users and groups of dissimilar users, with each group's homogeneity (the mean
pairwise cosine of its members) as a column.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import check_choice, check_int
from ..config import GROUP, ITEM, RATING, USER

__all__ = ["as_groups", "make_groups", "group_members", "id_rows", "GROUP_KINDS", "SIMILARITY"]

GROUP_KINDS = ("random", "similar", "dissimilar")
#: the column of :func:`make_groups` with each group's mean pairwise cosine (its homogeneity)
SIMILARITY = "similarity"

_FORMS = (f"a DataFrame with columns {GROUP}, {USER} (one row per member) or a mapping "
          f"{{{GROUP}: [{USER}, ...]}}")


def as_groups(groups) -> pd.DataFrame:
    """Normalise a group list into a DataFrame ``groupId, userId`` (one row per member), in input order.

    Parameters
    ----------
    groups : DataFrame or mapping
        A DataFrame with columns ``groupId, userId`` (extra columns are kept), or ``{groupId: [userId, ...]}``.

    Returns
    -------
    DataFrame with ``groupId`` and ``userId`` first (a fresh index); the members of a group keep their order.

    Raises
    ------
    TypeError
        Neither form (the message says what to pass instead), or a mapping whose members are a single id.
    ValueError
        Missing columns, no groups at all, an empty group (named), a missing id, a member listed twice in a
        group (group and user named).
    """
    if isinstance(groups, pd.DataFrame):
        missing = [c for c in (GROUP, USER) if c not in groups.columns]
        if missing:
            raise ValueError(f"groups has no column(s) {missing} (it has {list(groups.columns)}); pass {_FORMS}")
        frame = groups[[GROUP, USER] + [c for c in groups.columns if c not in (GROUP, USER)]].reset_index(drop=True)
    elif isinstance(groups, Mapping):
        gids, uids = [], []
        for gid, members in groups.items():
            if isinstance(members, (str, bytes)) or np.ndim(members) != 1:
                raise TypeError(f"group {gid!r}: the members must be a list of {USER}s, got {members!r}; write "
                                f"{{{gid!r}: [{members!r}]}} for a group of one")
            members = list(members)
            if not members:
                raise ValueError(f"group {gid!r} is empty; every group needs at least one member — drop it or add "
                                 "members")
            gids += [gid] * len(members)
            uids += members
        frame = pd.DataFrame({GROUP: gids, USER: uids})
    else:
        raise TypeError(f"groups must be {_FORMS}, got {type(groups).__name__}")
    if frame.empty:
        raise ValueError(f"groups is empty: pass at least one group ({_FORMS})")
    for col in (GROUP, USER):
        if frame[col].isna().any():
            raise ValueError(f"groups has a missing {col} (row {int(np.flatnonzero(frame[col].isna())[0])}); drop "
                             "or fill it")
    dup = frame.duplicated([GROUP, USER])
    if dup.any():
        gid, uid = (np.asarray(v).tolist() for v in frame[dup].iloc[0][[GROUP, USER]])
        raise ValueError(f"user {uid!r} is listed twice in group {gid!r}; a member counts once — drop the duplicate "
                         "(frame.drop_duplicates(['groupId', 'userId']))")
    return frame


def group_members(groups: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """The group ids in input order and each group's member ids (``groups`` from :func:`as_groups`)."""
    codes, gids = pd.factorize(groups[GROUP], sort=False)
    users = groups[USER].to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(gids) + 1))
    return np.asarray(gids), [users[order[bounds[g]:bounds[g + 1]]] for g in range(len(gids))]


def id_rows(ids, known_ids, n: int, name: str, what: str) -> np.ndarray:
    """The row of each of ``ids`` among ``known_ids`` (default ``1 .. n``, the synthetic world's ids).

    ``name`` is the kind of id (``userId``), ``what`` the rows they index, for the error messages. Raises
    ValueError if ``known_ids`` does not have ``n`` entries or an id is not among them.
    """
    known = np.arange(1, n + 1) if known_ids is None else np.asarray(known_ids).ravel()
    if len(known) != n:
        raise ValueError(f"{len(known)} {name}s given for {n} {what}; pass one {name} per row")
    ids = np.asarray(ids).ravel()
    pos = pd.Index(known).get_indexer(ids)
    if (pos < 0).any():
        raise ValueError(f"{name}(s) {ids[pos < 0][:5].tolist()} have no {what}; pass the matching {name}s "
                         f"(default 1..{n}) or drop those ids")
    return pos


def make_groups(train: pd.DataFrame | None, n_groups: int, size: int, kind: str = "random", *, seed: int = 0,
                users=None, user_vectors: pd.DataFrame | None = None) -> pd.DataFrame:
    r"""Build ``n_groups`` groups of ``size`` users — MovieLens has no real groups, so these are made up, seeded.

    The similarity of two users is the cosine of their vectors, :math:`\cos(x_a, x_b) = x_a^\top x_b /
    (\lVert x_a\rVert \lVert x_b\rVert)`: by default their rating rows of ``train`` (films not rated count 0, so
    on MovieLens it is never negative and users with no film in common score 0), or their rows of
    ``user_vectors`` (e.g. the synthetic world's true tastes). A group's homogeneity is the mean pairwise
    cosine of its members, :math:`\frac{2}{s(s-1)} \sum_{a < b} \cos(x_a, x_b)`, in column ``similarity``.

    * ``"random"``: members drawn uniformly without replacement from the pool.
    * ``"similar"``: a random first member, then repeatedly the candidate with the **highest** mean cosine to
      the members chosen so far.
    * ``"dissimilar"``: the same with the **lowest** mean cosine.

    Ties between candidates (on MovieLens, the many users with no film in common with the group) are broken at
    random, seeded, separately for each group. Members of a group are distinct;
    different groups may share users. All groups are built together (one sparse product per member slot, for the
    distinct users just added): 200 groups of 4 among ml-latest-small's 610 users take about 0.1 s, 200 groups of
    8 among ml-1m's 6,040 about 1.5 s on one core.

    Parameters
    ----------
    train : DataFrame or None
        Ratings ``userId, movieId, rating``: the pool (its users) and the rating rows. May be None with
        ``user_vectors``.
    n_groups : int >= 1
    size : int, 2 .. the number of users in the pool
    kind : "random", "similar" or "dissimilar"
    seed : int
        Same seed, same groups.
    users : array-like of ids, optional
        Restrict the pool to these users (e.g. those with relevant test films); each needs a row in ``train``
        (or ``user_vectors``).
    user_vectors : DataFrame indexed by userId, optional
        Compare users by these rows instead of their ratings.

    Returns
    -------
    DataFrame ``groupId`` (0 .. n_groups - 1), ``userId``, ``similarity`` (the group's, repeated on each of
    its member rows), one row per member.

    Raises
    ------
    ValueError
        Bad ``n_groups``, ``size`` or ``kind``; ``size`` larger than the pool; a pool user without ratings or
        vector; neither ``train`` nor ``user_vectors``.
    """
    check_int("make_groups", "n_groups", n_groups)
    check_int("make_groups", "size", size, low=2)
    check_choice("make_groups", "kind", kind, GROUP_KINDS)
    check_int("make_groups", "seed", seed, low=0)
    X, ids = _user_matrix(train, user_vectors)
    pool = np.arange(len(ids))
    if users is not None:
        wanted = pd.unique(np.asarray(users).ravel())
        pos = pd.Index(ids).get_indexer(wanted)
        if (pos < 0).any():
            source = "rows in user_vectors" if user_vectors is not None else "ratings in train"
            raise ValueError(f"make_groups: {int((pos < 0).sum())} user(s) of users= have no {source} (e.g. "
                             f"{wanted[pos < 0][:5].tolist()}); drop them from users=")
        pool = np.sort(pos)
    if size > len(pool):
        raise ValueError(f"make_groups: size={size} but the pool has only {len(pool)} users; lower size or "
                         "widen users=")
    rng = np.random.default_rng(seed)
    # unit rows: the cosine of two users is the dot product of their rows (recsys_course.similarity.cosine, but
    # only for the rows the groups need, not all pool x pool pairs)
    X = sp.csr_matrix(X[pool], dtype=np.float64)
    norm = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())
    unit = sp.csr_matrix(sp.diags(np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)) @ X)
    if kind == "random":
        members = np.stack([rng.choice(len(pool), size, replace=False) for _ in range(n_groups)])
    else:
        members = _greedy(unit, n_groups, size, kind == "similar", rng)
    flat = members.ravel()
    indicator = sp.csr_matrix((np.ones(flat.size), (np.repeat(np.arange(n_groups), size), flat)),
                              shape=(n_groups, len(pool)))
    summed = indicator @ unit                                   # (groups, features): the sum of the unit rows
    square = np.asarray(summed.multiply(summed).sum(1)).ravel()
    own = (norm[members] > 0).sum(1)                            # a unit row has norm 1, a zero row 0
    homogeneity = (square - own) / (size * (size - 1))         # |sum|^2 = sum of the norms + 2 sum_{a<b} cos
    return pd.DataFrame({GROUP: np.repeat(np.arange(n_groups), size), USER: ids[pool[flat]],
                         SIMILARITY: np.repeat(homogeneity, size)})


def _user_matrix(train, user_vectors) -> tuple[sp.csr_matrix, np.ndarray]:
    """(users × features sparse matrix, the userId of each row)."""
    if user_vectors is not None:
        if not isinstance(user_vectors, pd.DataFrame):
            raise TypeError(f"user_vectors must be a DataFrame indexed by {USER} (one row per user), got "
                            f"{type(user_vectors).__name__}; wrap an array: pd.DataFrame(array, index=user_ids)")
        values = user_vectors.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("user_vectors has NaN or infinite entries; fill or drop them first")
        ids = user_vectors.index.to_numpy()
        if train is not None:
            keep = np.isin(ids, train[USER].unique())
            values, ids = values[keep], ids[keep]
        return sp.csr_matrix(values), ids
    if train is None:
        raise ValueError("make_groups needs train (the ratings) or user_vectors to compare users")
    missing = [c for c in (USER, ITEM, RATING) if c not in train.columns]
    if missing:
        raise ValueError(f"train has no column(s) {missing}; pass the ratings ({USER}, {ITEM}, {RATING})")
    ids, u = np.unique(train[USER].to_numpy(), return_inverse=True)
    _, i = np.unique(train[ITEM].to_numpy(), return_inverse=True)
    X = sp.csr_matrix((train[RATING].to_numpy(np.float64), (u, i)), shape=(len(ids), int(i.max()) + 1))
    return X, ids


def _greedy(unit: sp.csr_matrix, n_groups: int, size: int, similar: bool, rng) -> np.ndarray:
    """Members (n_groups, size) of pool rows: a random first member, then the candidate with the highest
    (``similar``) or lowest mean cosine to those chosen so far (``unit``: unit rows); all groups advance together."""
    n = unit.shape[0]
    members = np.empty((n_groups, size), dtype=np.int64)
    members[:, 0] = rng.integers(0, n, n_groups)
    tie_break = rng.random((n_groups, n))     # each group's own random order among equal candidates
    total = np.zeros((n_groups, n))           # sum of the cosines to the members chosen so far
    rows = np.arange(n_groups)
    for slot in range(1, size):
        new, inverse = np.unique(members[:, slot - 1], return_inverse=True)  # groups often pick the same user
        cos = unit @ np.ascontiguousarray(unit[new].toarray().T)            # (pool, new members)
        total += cos.T[inverse]                                             # (groups, pool)
        value = total.copy() if similar else -total
        value[rows[:, None], members[:, :slot]] = -np.inf       # members are distinct
        best = value == value.max(1, keepdims=True)
        members[:, slot] = np.argmax(np.where(best, tie_break, -1.0), axis=1)
    return members
