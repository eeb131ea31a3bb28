r"""Group choices in the synthetic world, and an aggregator that learns how a group decides.

:func:`simulate_group_choices` makes groups choose with a hidden rule from their members' *true* scores;
:func:`strategy_choice_accuracy` measures how often a fixed strategy predicts those choices, and
:class:`AttentionAggregator` learns the rule from the choices (in the spirit of AGREE: Cao, He, Miao, An, Yang &
Hong 2018, "Attentive group recommendation", SIGIR).

A *choice frame* has one row per decision: ``groupId``, ``choice`` (its number within the group),
``candidates`` (an array of item positions: columns of the score matrix, rows of the item vectors) and
``chosen`` (the item position picked). Users are rows of the score matrix / member vectors, mapped from userIds
by ``user_ids`` (default ``1 .. n``: the synthetic world's userId of row ``u`` is ``u + 1``).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..checks import check_bool, check_choice, check_int, check_number, check_share
from ..config import GROUP, USER
from ..models.base import Recommender
from .groups import as_groups, group_members, id_rows
from .strategies import aggregate

__all__ = ["simulate_group_choices", "strategy_choice_accuracy", "AttentionAggregator", "CHOICE_RULES"]

CHOICE_RULES = ("leader", "least_misery")
_CHOICE_COLUMNS = (GROUP, "choice", "candidates", "chosen")


def simulate_group_choices(true_scores, groups, *, rule: str = "leader", n_candidates: int = 20,
                           n_choices_per_group: int = 5, noise: float = 0.0, seed: int = 0,
                           user_ids=None) -> tuple[pd.DataFrame, np.ndarray]:
    r"""The synthetic world's hidden decision rule: groups choose one item among random candidates.

    For each group, ``n_choices_per_group`` times: draw ``n_candidates`` distinct items uniformly, and the group
    picks :math:`\arg\max_i G_i + \varepsilon_i` over them, :math:`\varepsilon_i \sim \mathcal N(0,
    \text{noise}^2)`, with :math:`t_{mi}` the members' true scores and

    * ``rule="leader"``: :math:`G_i = \sum_m w_m t_{mi} / \sum_m w_m`, where every user has a hidden influence
      :math:`w_u \sim \mathrm{LogNormal}(0, 1)` — the most influential member dominates;
    * ``rule="least_misery"``: :math:`G_i = \min_m t_{mi}` — the group follows its least happy member.

    Parameters
    ----------
    true_scores : array (n_users, n_items)
        E.g. ``SyntheticData.true_scores()``.
    groups : the group list (:func:`~recsys_course.group.as_groups`)
    rule, n_candidates, n_choices_per_group, noise, seed
        Same seed, same choices and influences (the influences are drawn first, whatever the rule).
    user_ids : array-like, optional
        The userId of each row of ``true_scores``; default ``1 .. n_users``.

    Returns
    -------
    (choices, influence): the choice frame (``groupId, choice, candidates, chosen``) and the influence
    :math:`w_u` of every row of ``true_scores`` (used by ``"leader"`` only).

    Raises
    ------
    ValueError
        A bad parameter, ``n_candidates`` above the number of items, a member without a row.
    """
    check_choice("simulate_group_choices", "rule", rule, CHOICE_RULES)
    check_int("simulate_group_choices", "n_candidates", n_candidates, low=2)
    check_int("simulate_group_choices", "n_choices_per_group", n_choices_per_group)
    check_number("simulate_group_choices", "noise", noise)
    check_int("simulate_group_choices", "seed", seed, low=0)
    scores = _score_matrix(true_scores, "true_scores")
    n_users, n_items = scores.shape
    if n_candidates > n_items:
        raise ValueError(f"simulate_group_choices: n_candidates={n_candidates} but there are only {n_items} items")
    rng = np.random.default_rng(seed)
    influence = rng.lognormal(0.0, 1.0, n_users)
    gids, members = group_members(as_groups(groups))
    rows = []
    for gid, ids in zip(gids, members):
        pos = id_rows(ids, user_ids, n_users, USER, "rows of true_scores")
        for c in range(n_choices_per_group):
            cand = rng.choice(n_items, n_candidates, replace=False)
            t = scores[np.ix_(pos, cand)]
            value = influence[pos] @ t / influence[pos].sum() if rule == "leader" else t.min(0)
            if noise > 0:
                value = value + rng.normal(0.0, noise, n_candidates)
            rows.append((gid, c, cand, int(cand[np.argmax(value)])))
    return pd.DataFrame(rows, columns=list(_CHOICE_COLUMNS)), influence


def _score_matrix(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be a non-empty 2-D (users, items) array of finite numbers, got shape "
                         f"{arr.shape}")
    return arr


def _check_choices(choices) -> pd.DataFrame:
    if not isinstance(choices, pd.DataFrame) or any(c not in choices.columns for c in _CHOICE_COLUMNS):
        raise ValueError(f"choices must be a DataFrame with columns {list(_CHOICE_COLUMNS)} (the output of "
                         "simulate_group_choices)")
    if choices.empty:
        raise ValueError("choices is empty: there is nothing to learn or score")
    return choices


def _choice_members(choices: pd.DataFrame, groups, user_ids, n_users: int) -> list[np.ndarray]:
    """The member rows of each choice's group."""
    gids, members = group_members(as_groups(groups))
    rows = {gid: id_rows(ids, user_ids, n_users, USER, "rows of the member scores / vectors")
            for gid, ids in zip(gids, members)}
    missing = np.asarray(sorted(set(choices[GROUP]) - set(rows), key=str)).tolist()
    if missing:
        raise ValueError(f"choices name group(s) {missing[:5]} that groups does not list; pass the groups the choices "
                         "were made by")
    return [rows[g] for g in choices[GROUP]]


def strategy_choice_accuracy(choices: pd.DataFrame, groups, member_scores, strategy: str, *, user_ids=None,
                             **params) -> float:
    r"""The share of choices a fixed strategy predicts: :math:`\frac1N \sum_n \mathbb 1[\arg\max_{i \in C_n}
    G_i = \text{chosen}_n]`, with :math:`G` = :func:`~recsys_course.group.aggregate` of the members' scores over
    the candidates :math:`C_n` (ties: the lower item position).

    Parameters
    ----------
    choices : the choice frame (:func:`simulate_group_choices`)
    groups : the group list
    member_scores : array (n_users, n_items)
        The scores the strategy aggregates: true scores, or a model's predictions.
    strategy, **params
        As :func:`~recsys_course.group.aggregate` (e.g. ``threshold=``).
    user_ids : array-like, optional
        The userId of each row of ``member_scores``; default ``1 .. n_users``.

    Raises
    ------
    ValueError, TypeError
        As :func:`~recsys_course.group.aggregate`; a bad choice frame; a member without a row.
    """
    choices = _check_choices(choices)
    scores = _score_matrix(member_scores, "member_scores")
    members = _choice_members(choices, groups, user_ids, scores.shape[0])
    hits = 0
    for pos, cand, chosen in zip(members, choices["candidates"], choices["chosen"]):
        cand = np.sort(np.asarray(cand))
        hits += int(cand[np.argmax(aggregate(scores[np.ix_(pos, cand)], strategy, **params))] == chosen)
    return hits / len(choices)


class AttentionAggregator:
    r"""A learned group decision rule: attention over the members, in the spirit of AGREE (Cao, He, Miao, An, Yang
    & Hong 2018, "Attentive group recommendation", SIGIR). Unlike AGREE's, the attention here does not depend on the
    candidate item: each member has one weight in a group, whatever the item, so it can learn a rule that weighs
    members (one member leads) but not one whose decisive member changes from item to item (least misery; notebook 10
    measures both).

    The members' vectors :math:`x_m` and the items' vectors :math:`y_i` are given and stay fixed (a fitted
    model's factors, or the synthetic world's true factors); the model learns, per user, an attention logit from
    a small learned user embedding :math:`e_m` and a projection of :math:`x_m`
    (:class:`~recsys_course.group.network.GroupAttentionNet`):

    .. math:: a_m = \mathrm{softmax}_{m \in g}\big(v^\top \tanh(W [x_m; e_m] + b)\big), \qquad
              g = \sum_{m \in g} a_m x_m, \qquad \mathrm{score}(g, i) = \tau\, g^\top y_i + c_i,

    with a learned temperature :math:`\tau` and item biases :math:`c_i` (so item vectors without a bias column
    lose nothing). Training minimises the softmax cross-entropy of each choice over its candidates (the chosen
    item is the target), :math:`-\log \frac{e^{\mathrm{score}(g, i^\star)}}{\sum_{i \in C} e^{\mathrm{score}(g,
    i)}}`, with the course's loop (:func:`recsys_course.models.torch_train.train`: Adam, seeded batches, a
    progress bar, early stopping on the cross-entropy of a held-out share of the choices). Groups of different
    sizes and candidate sets of different sizes are padded and masked. Cost per epoch
    :math:`O(N \cdot (S k d + C d))` for N choices, S members, C candidates.

    Parameters
    ----------
    n_factors : int
        Size of :math:`e_m` and of the attention's hidden layer.
    n_epochs, lr, weight_decay, batch_size, patience, device, seed, verbose
        As everywhere in the course (see the glossary in CONTRIBUTING.md); ``batch_size`` counts choices.

    After ``fit``: ``network_`` (on the CPU), ``history_`` (:class:`~recsys_course.models.torch_train.History`),
    ``user_ids_``, ``user_logit_`` (the learned influence logit of every user row: the attention of a group is
    the softmax of its members' logits), ``device_``, ``fit_seconds_``.
    """

    def __init__(self, n_factors: int = 16, *, n_epochs: int = 30, lr: float = 0.01, weight_decay: float = 0.0,
                 batch_size: int = 256, patience: int | None = 5, device=None, seed: int = 0, verbose: bool = True):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.device = device
        self.seed = seed
        self.verbose = verbose

    # the constructor's arguments and a readable repr, as every model of the course
    get_params = Recommender.get_params
    __repr__ = Recommender.__repr__

    def _check_params(self) -> None:
        check_int(self, "n_factors", self.n_factors)
        check_int(self, "n_epochs", self.n_epochs)
        check_number(self, "lr", self.lr, positive=True)
        check_number(self, "weight_decay", self.weight_decay)
        check_int(self, "batch_size", self.batch_size)
        check_int(self, "patience", self.patience, allow_none=True)
        check_int(self, "seed", self.seed, low=0)
        check_bool(self, "verbose", self.verbose)

    def _encode(self, choices, groups):
        """Padded arrays of a choice frame: member rows and mask (N, S), candidates sorted ascending and mask
        (N, C), and the target's place among the candidates (-1 if the chosen item is not a candidate)."""
        choices = _check_choices(choices)
        members = _choice_members(choices, groups, self.user_ids_, len(self.user_ids_))
        cands = [np.sort(np.asarray(c, dtype=np.int64)) for c in choices["candidates"]]
        bad = [c for c in cands if len(c) == 0 or c.min() < 0 or c.max() >= self.n_items_]
        if bad:
            raise ValueError(f"candidates must be item positions 0..{self.n_items_ - 1} (rows of item_vectors), got "
                             f"{bad[0][:5]}")
        users, user_mask = _pad(members)
        items, item_mask = _pad(cands)
        chosen = choices["chosen"].to_numpy()
        target = np.array([np.searchsorted(c, x) if x in c else -1 for c, x in zip(cands, chosen)])
        return users, user_mask, items, item_mask, target

    def fit(self, choices: pd.DataFrame, groups, member_vectors, item_vectors, *, val_size: float | None = 0.2,
            user_ids=None) -> AttentionAggregator:
        """Learn the attention from group choices.

        Parameters
        ----------
        choices : the choice frame (:func:`simulate_group_choices`)
        groups : the group list the choices were made by
        member_vectors : array (n_users, d) or DataFrame indexed by userId
            Fixed member vectors :math:`x_m`.
        item_vectors : array (n_items, d)
            Fixed item vectors :math:`y_i`; candidates and ``chosen`` are their row positions.
        val_size : share in (0, 1) or None
            The choices held out for early stopping (chosen at random, seeded); None: ``n_epochs`` epochs.
        user_ids : array-like, optional
            The userId of each row of an array ``member_vectors`` (default ``1 .. n_users``).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            A bad hyper-parameter (named), mismatched vector sizes, a chosen item that is not among its
            candidates, a member without a vector, choices of a group not in ``groups``.
        """
        import torch

        from ..models.torch_train import resolve_device, train
        from .network import GroupAttentionNet

        start = time.perf_counter()
        self._check_params()
        check_share(self, "val_size", val_size, allow_none=True)
        if isinstance(member_vectors, pd.DataFrame):
            user_ids, member_vectors = member_vectors.index.to_numpy(), member_vectors.to_numpy()
        x = _score_matrix(member_vectors, "member_vectors")
        y = _score_matrix(item_vectors, "item_vectors")
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"member_vectors have {x.shape[1]} columns but item_vectors {y.shape[1]}; the group "
                             "vector scores items by a dot product, so they must match")
        self.user_ids_ = np.arange(1, len(x) + 1) if user_ids is None else np.asarray(user_ids).ravel()
        self.n_items_ = len(y)
        if len(self.user_ids_) != len(x):
            raise ValueError(f"{len(self.user_ids_)} user_ids given for {len(x)} rows of member_vectors; pass one "
                             "userId per row")
        data = self._encode(choices, groups)
        if (data[-1] < 0).any():
            raise ValueError(f"{int((data[-1] < 0).sum())} choice(s) picked an item that is not among their "
                             "candidates; every chosen item must be one of the row's candidates")
        n = len(data[-1])
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(n)
        n_val = 0 if val_size is None else min(max(int(round(val_size * n)), 1), n - 1)
        fit_rows, val_rows = np.sort(order[n_val:]), np.sort(order[:n_val])
        self.device_ = resolve_device(self.device)
        network = GroupAttentionNet(torch.as_tensor(x), torch.as_tensor(y), self.n_factors,
                                    torch.Generator().manual_seed(self.seed))
        tensors = [torch.as_tensor(a) for a in data]

        def loss(net, users, user_mask, items, item_mask, target):
            return torch.nn.functional.cross_entropy(net(users, user_mask, items, item_mask), target)

        validate = None
        if n_val:
            held_out = [t[torch.as_tensor(val_rows)] for t in tensors]

            def validate(net) -> float:
                device = net.items.device
                return float(loss(net, *(t.to(device) for t in held_out)))

        self.history_ = train(network, loss, [t[torch.as_tensor(fit_rows)] for t in tensors], epochs=self.n_epochs,
                              batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                              validate=validate, mode="min", patience=self.patience, seed=self.seed,
                              device=self.device_, metric_name="val_loss", desc="AttentionAggregator",
                              verbose=self.verbose)
        self.network_ = network.cpu().eval()
        with torch.no_grad():
            self.user_logit_ = self.network_.logits(torch.arange(len(x))).double().numpy()
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            from ..models.base import NotFittedError

            raise NotFittedError("AttentionAggregator is not fitted yet: call .fit(choices, groups, member_vectors, "
                                 "item_vectors) first")

    def attention(self, groups) -> pd.DataFrame:
        r"""The learned attention of every member of every group, :math:`a_m = \mathrm{softmax}_{m \in g}
        \ell_m` (``user_logit_``).

        Returns a DataFrame ``groupId, userId, weight`` (the weights of a group sum to 1). Raises NotFittedError
        before ``fit``, ValueError for a member without a vector.
        """
        self._check_fitted()
        frame = as_groups(groups)
        logit = self.user_logit_[id_rows(frame[USER], self.user_ids_, len(self.user_ids_), USER,
                                         "rows of member_vectors")]
        shifted = np.exp(logit - pd.Series(logit).groupby(frame[GROUP].to_numpy()).transform("max").to_numpy())
        total = pd.Series(shifted).groupby(frame[GROUP].to_numpy()).transform("sum").to_numpy()
        return pd.DataFrame({GROUP: frame[GROUP], USER: frame[USER], "weight": shifted / total})

    def choose(self, choices: pd.DataFrame, groups) -> np.ndarray:
        """The item position the model predicts for each choice row: the candidate with the highest score (ties:
        the lower position). Raises NotFittedError before ``fit``, ValueError for a bad choice frame."""
        import torch

        self._check_fitted()
        users, user_mask, items, item_mask, _ = self._encode(choices, groups)
        with torch.no_grad():
            scores = self.network_(*(torch.as_tensor(a) for a in (users, user_mask, items, item_mask)))
        best = scores.double().numpy().argmax(1)
        return items[np.arange(len(items)), best]


def _pad(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged integer rows as a (n, longest) array padded with 0, and the mask of the real entries."""
    width = max(len(r) for r in rows)
    out = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    for j, r in enumerate(rows):
        out[j, :len(r)] = r
        mask[j, :len(r)] = True
    return out, mask
