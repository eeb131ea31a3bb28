r"""Neural and sequential recommenders (notebook 06): :class:`NeuMF`, :class:`GRU4Rec`, :class:`SASRec`.

All three are implicit-feedback models: every training rating counts as an interaction, whatever its value.
They are :class:`~recsys_course.models.torch_train.TorchRecommender` s, trained with the course's one protocol
(mini-batch Adam, a text progress bar per epoch with the loss, early stopping with the best weights restored),
take ``device=None`` (CUDA, then MPS, then CPU) and ``seed``, and are deterministic on the CPU for a given seed.
Their networks are in :mod:`recsys_course.networks.sequential`.

**Neural collaborative filtering.** :class:`NeuMF` (He et al. 2017) fuses a generalised matrix factorisation
and a multi-layer perceptron over user and item embeddings and is trained as a binary classifier of
"interacted or not" with sampled negatives. It ignores time.

**Next-item models.** :class:`GRU4Rec` (after Hidasi et al. 2016) and :class:`SASRec` (after Kang & McAuley
2018) read each user's training interactions as one sequence, ordered by ``timestamp`` then ``movieId``, and
learn to predict the next item at every position:

.. math:: h_t = f_\theta(x_1, \dots, x_t), \qquad s_t(i) = h_t^\top e_i, \qquad
          P(x_{t+1} = i \mid x_{\le t}) = \frac{\exp s_t(i)}{\sum_j \exp s_t(j)},

where :math:`e_i` is item :math:`i`'s input embedding (shared by the output layer) and :math:`f_\theta` a GRU
or a stack of causal self-attention blocks. :math:`h_t` depends on :math:`x_1..x_t` only — never on later
items (tested). ``recommend`` continues each user's training sequence: it scores the catalogue from
:math:`h_T`, the state after the user's last ``max_len`` training items.

Losses (``loss=``), over every non-padding position of the training windows:

* ``"sampled_softmax"`` (default) — the softmax above over the target and ``n_negatives`` items drawn for each
  mini-batch (shared by its positions; a negative equal to the target is masked out) from the proposal
  :math:`q_j \propto (n_j + 1)^{\beta}`, :math:`n_j` = the item's training count, :math:`\beta` = ``neg_power``
  (1: popularity, 0: uniform). Every logit, the target's included, is corrected by :math:`-\ln(n_{\text{neg}}\,
  q_j)` (the "logQ" correction of Jean et al. 2015 and Yi et al. 2019), which makes the sampled softmax
  approximate the full one. Popular items are the ones a full softmax pushes down most; uniform negatives
  almost never include them, and train much worse on MovieLens (notebook 06, section 5).
* ``"softmax"`` — the full softmax over the catalogue (cross-entropy): the best signal, :math:`O(n_{\text{items}})`
  per position — meant for a GPU (``full`` profile).
* ``"bce"`` — SASRec's original binary cross-entropy with one uniform negative per position,
  :math:`-\ln\sigma(s_t(x_{t+1})) - \ln(1 - \sigma(s_t(j)))`.

**Early stopping.** With ``val_size`` set (default 1, ``val_split="last"``), each user's last ``val_size``
training interactions are held out (users with fewer than ``val_size + 2`` keep everything:
``min_train = 2``), the model trains on the rest and stops when NDCG@10 of the held-out items — every held-out
item is relevant, ranked over the whole catalogue minus the user's other training items, exactly as
:func:`recsys_course.evaluate.evaluate` ranks — has not improved for ``patience`` epochs; the best epoch's
weights are kept. ``val_split="random"`` holds out random interactions instead. By default (``refit=False``) the
models are **not** refitted on all of train: only one interaction per user (out of ~165 on MovieLens) was held
out, so a second run would cost a whole training for little; the held-out items still enter each user's input
sequence (and, for NeuMF, count as "seen") when recommending. ``refit=True`` retrains on all of train for the
best number of epochs.

**Common parameters.** ``n_factors`` (embedding size; also the GRU's hidden size), ``dropout``, ``lr`` and
``weight_decay`` (Adam), ``n_epochs`` (at most), ``batch_size`` (interactions for NeuMF, windows for the sequence
models), ``patience``, ``val_size``, ``val_split``, ``refit``, ``device``, ``seed``, ``verbose`` (see the glossary
in CONTRIBUTING.md); the sequence models add ``max_len`` (window length; ``recommend`` reads each user's last
``max_len`` items), ``loss``, ``n_negatives`` and ``neg_power``. Defaults are the tuned lesson values
(``recsys_course.models.tuning_tables("06")``). After ``fit``: ``module_`` (the ``torch.nn.Module``, on
``device_``), ``history_`` (:class:`~recsys_course.models.torch_train.History` of the validation run, None without
one), ``best_epoch_``, ``loss_``, ``fit_seconds_``; the sequence models also keep ``seq_indptr_``/``seq_`` (each
user's whole training sequence as item positions, CSR-style) and ``n_windows_``.

**Unknown users and items.** ``recommend``, ``score`` and ``predict`` raise
:class:`~recsys_course.models.UnknownIdError` for users absent from train. ``predict`` gives unknown items
``-inf``. The sequence models can still serve a *new* user from a sequence of known movieIds with
:meth:`SequenceRecommender.continue_sequence` (unknown movieIds in it are dropped), with no retraining.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..checks import check_choice, check_int, check_number, is_int, require_known_users
from ..config import ITEM, RANK, SCORE, TIME, USER
from ..metrics import top_k
from .base import UnknownIdError
from .torch_train import TorchRecommender, TrainingSetup

__all__ = ["NeuMF", "GRU4Rec", "SASRec"]

LOSSES = ("sampled_softmax", "softmax", "bce")


# --------------------------------------------------------------------------------------------
# sequences (NumPy): the data layout shared by GRU4Rec and SASRec
# --------------------------------------------------------------------------------------------
def user_sequences(users: np.ndarray, items: np.ndarray, times: np.ndarray, n_users: int):
    """Each user's items in time order (ties in time broken by item position, i.e. by movieId).

    ``users``/``items`` are integer positions, ``times`` the timestamps. Returns ``(indptr, seq)``: user ``u``'s
    sequence is ``seq[indptr[u]:indptr[u + 1]]`` (CSR-style, like :func:`recsys_course.split.leave_last_n`'s order).
    """
    users, items, times = np.asarray(users), np.asarray(items), np.asarray(times)
    order = np.lexsort((items, times, users))
    counts = np.bincount(users, minlength=n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, items[order].astype(np.int64)


def next_item_windows(indptr: np.ndarray, seq: np.ndarray, max_len: int):
    r"""Cut every sequence into training windows of next-item pairs.

    A user with sequence :math:`x_1..x_L` gives the :math:`L-1` pairs :math:`(x_j \to x_{j+1})`. They are cut
    into windows of ``max_len`` consecutive pairs **aligned at the end** (the most recent window is full; only
    the oldest, which starts at the user's first item, may be shorter), so each pair is used exactly once per
    epoch. Returns ``(inputs, targets)``, int64 arrays ``(n_windows, max_len)`` of *tokens* = item position + 1,
    right-padded with 0: ``targets[w, t]`` is the item that followed ``inputs[w, t]``.
    """
    L = np.diff(indptr)
    P = np.maximum(L - 1, 0)                           # pairs per user
    n_win = -(-P // max_len)                           # ceil(P / max_len)
    user = np.repeat(np.arange(len(L)), P)             # owner of every pair
    j = np.arange(P.sum()) - np.repeat(np.cumsum(P) - P, P)   # pair index within the user: 0..P-1
    w_from_end = (np.repeat(P, P) - 1 - j) // max_len
    start = np.maximum(np.repeat(P, P) - (w_from_end + 1) * max_len, 0)
    offset = j - start
    window = np.repeat(np.cumsum(n_win) - n_win, P) + (np.repeat(n_win, P) - 1 - w_from_end)
    src = indptr[user] + j
    inputs = np.zeros((int(n_win.sum()), max_len), dtype=np.int64)
    targets = np.zeros_like(inputs)
    inputs[window, offset] = seq[src] + 1
    targets[window, offset] = seq[src + 1] + 1
    return inputs, targets


def last_windows(indptr: np.ndarray, seq: np.ndarray, users: np.ndarray, max_len: int):
    """The last ``max_len`` items of each user's sequence as right-padded tokens, and their lengths."""
    users = np.asarray(users, dtype=np.int64)
    L = np.minimum(np.diff(indptr)[users], max_len)
    tokens = np.zeros((len(users), max_len), dtype=np.int64)
    row = np.repeat(np.arange(len(users)), L)
    col = np.arange(L.sum()) - np.repeat(np.cumsum(L) - L, L)
    src = np.repeat(indptr[users + 1] - L, L) + col
    tokens[row, col] = seq[src] + 1
    return tokens, L


# --------------------------------------------------------------------------------------------
# what the four neural rankers share (BERT4Rec in masked.py too)
# --------------------------------------------------------------------------------------------
class _NeuralRanker(TorchRecommender):
    """Implicit-feedback ranking with the course's protocol: every held-out interaction is relevant for the
    validation NDCG, users keep at least 2 training interactions, unknown users raise."""

    min_train = 2
    validation_relevance = None

    def _check_params(self) -> None:
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "dropout", self.dropout, below=1)

    def _require_known_users(self, users: np.ndarray) -> None:
        require_known_users(self, users, lacks="history", advice="serve them with Popularity, or (GRU4Rec, "
                            "SASRec, BERT4Rec) with model.continue_sequence([movieId, ...]) once they have "
                            "interacted with a few films")

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        self.module_ = setup.network

    def _predict(self, users, items):
        """Through the full score rows (the sequence models score a user's next item all at once)."""
        self._require_known_users(users)
        out = np.full(len(users), -np.inf)
        known = np.flatnonzero(items >= 0)
        if len(known):
            uniq, inv = np.unique(users[known], return_inverse=True)
            out[known] = self._score_users(uniq)[inv, items[known]]
        return out


def _bce_with_logits(network, users, items, labels):
    """NeuMF's loss: binary cross-entropy of the logits of a batch of (user, item, 0/1) triples."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(network(users, items), labels)


class NeuMF(_NeuralRanker):
    r"""Neural matrix factorisation (He, Liao, Zhang, Nie, Hu & Chua 2017): GMF and an MLP, fused.

    .. math:: \phi^{G}_{ui} = p_u^G \odot q_i^G, \qquad
              \phi^{M}_{ui} = \mathrm{ReLU}\big(W_L \cdots \mathrm{ReLU}(W_1 [p_u^M; q_i^M] + b_1) \cdots + b_L\big),

    .. math:: \hat y_{ui} = \sigma\big(h^\top [\phi^G_{ui}; \phi^M_{ui}] + b\big),

    with separate embeddings for the two paths (``n_factors`` for GMF, ``mlp_layers[0] / 2`` each for the MLP,
    whose hidden sizes are ``mlp_layers[1:]``). Training minimises the binary cross-entropy

    .. math:: -\sum_{(u,i) \in \mathcal R} \ln \hat y_{ui} - \sum_{(u,j) \in \mathcal R^-} \ln(1 - \hat y_{uj})

    where every interaction gets ``n_negatives`` items the user never interacted with, drawn uniformly afresh
    each epoch. Trained jointly from scratch (the paper also pre-trains GMF and MLP separately). Scores are
    the logits :math:`h^\top[\cdot] + b`. Cost: :math:`O(|\mathcal R|(1+n_{\text{neg}})\,d^2)` per epoch;
    scoring the whole catalogue for one user costs :math:`n_{\text{items}}` MLP passes (the first layer is
    shared, see :meth:`~recsys_course.networks.sequential.NeuMFNet.score_all`). ``batch_size`` counts
    interactions (positives and negatives). The other parameters: see the module docstring.
    """

    def __init__(self, n_factors: int = 32, mlp_layers: tuple = (32, 16, 8), n_negatives: int = 4,
                 dropout: float = 0.0, lr: float = 0.01, weight_decay: float = 0.0, n_epochs: int = 10,
                 batch_size: int = 8192, patience: int | None = 3, val_size: int | float | None = 1,
                 val_split: str = "last", refit: bool = False, device=None, seed: int = 0, verbose: bool = True):
        self.n_factors = n_factors
        self.mlp_layers = mlp_layers
        self.n_negatives = n_negatives
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self, "n_negatives", self.n_negatives)
        layers = self.mlp_layers
        if (not isinstance(layers, (tuple, list)) or len(layers) < 1 or not all(is_int(x) and x >= 1 for x in layers)
                or layers[0] % 2):
            raise ValueError(f"NeuMF: mlp_layers must be a tuple of positive integers whose first entry (the "
                             f"concatenated user+item MLP embedding) is even, e.g. (64, 32, 16); got {layers!r}")

    def _sampler(self, u: np.ndarray, i: np.ndarray):
        """``data(epoch, generator)``: the positives plus ``n_negatives`` fresh unseen items each, with labels."""
        import torch

        n_items, n_neg = self.n_items, self.n_negatives
        keys = np.unique(u.astype(np.int64) * n_items + i)
        uu = np.tile(u.astype(np.int64), n_neg)

        def data(epoch, generator):
            j = torch.randint(n_items, (len(uu),), generator=generator)
            for _ in range(20):  # redraw negatives that hit an item the user interacted with
                query = uu * n_items + j.numpy()
                pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
                clash = np.flatnonzero(keys[pos] == query)
                if len(clash) == 0:
                    break
                j[torch.as_tensor(clash)] = torch.randint(n_items, (len(clash),), generator=generator)
            users = torch.as_tensor(np.concatenate([u, uu]), dtype=torch.int64)
            items = torch.cat([torch.as_tensor(i, dtype=torch.int64), j])
            labels = torch.cat([torch.ones(len(u)), torch.zeros(len(uu))])
            return users, items, labels

        return data

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        from ..networks import sequential as nets

        network = nets.NeuMFNet(self.n_users, self.n_items, self.n_factors, tuple(self.mlp_layers),
                                float(self.dropout), generator)
        data = self._sampler(self.user_positions(frame[USER]), self.item_positions(frame[ITEM]))
        return TrainingSetup(network, _bce_with_logits, data)

    def _validation_scores(self, setup: TrainingSetup, network, users: np.ndarray):
        import torch

        return network.score_all(torch.as_tensor(users, dtype=torch.int64, device=self.device_))

    def _score_users(self, users):
        import torch

        with torch.no_grad():
            u = torch.as_tensor(np.asarray(users, dtype=np.int64), device=self.device_)
            return self.module_.score_all(u).cpu().numpy().astype(np.float64)

    def _predict(self, users, items):
        """One forward pass per pair (not through the score rows)."""
        import torch

        self._require_known_users(users)
        out = np.full(len(users), -np.inf)
        known = np.flatnonzero(items >= 0)
        if len(known):
            with torch.no_grad():
                u = torch.as_tensor(users[known].astype(np.int64), device=self.device_)
                i = torch.as_tensor(items[known].astype(np.int64), device=self.device_)
                out[known] = self.module_(u, i).cpu().numpy()
        return out


# --------------------------------------------------------------------------------------------
# the sequence models
# --------------------------------------------------------------------------------------------
def sequence_loss(loss: str, n_items: int, n_negatives: int, neg_power: float, counts, device):
    r"""The next-item loss ``loss_fn(network, inputs, targets)`` of the module docstring, over every position with
    a target (``targets > 0``): ``"softmax"``, ``"bce"`` or ``"sampled_softmax"`` with the proposal
    :math:`q_j \propto (\text{counts}_j + 1)^{\text{neg\_power}}` and the logQ correction (uniform and uncorrected
    when ``neg_power`` is 0). ``network(inputs)`` returns the states ``(B, L, d)``; ``network.item_emb`` the
    tied item embeddings (row 0: padding)."""
    import torch
    import torch.nn.functional as F

    n_neg = int(n_negatives)
    q = log_q = None
    if neg_power > 0:
        w = (np.asarray(counts, dtype=np.float64) + 1.0) ** float(neg_power)
        q = torch.as_tensor(w / w.sum(), dtype=torch.float32, device=device)
        log_q = torch.cat([torch.zeros(1, device=device), torch.log(n_neg * q)])

    def loss_fn(m, inputs, targets):
        h = m(inputs)                                                        # (B, L, d)
        mask = targets > 0
        hs, tg = h[mask], targets[mask]                                      # (N, d), (N,)
        E = m.item_emb.weight                                                # (n_items + 1, d)
        if loss == "softmax":
            return F.cross_entropy(hs @ E[1:].T, tg - 1)
        pos = (hs * E[tg]).sum(-1)                                           # (N,)
        if loss == "bce":
            neg_items = torch.randint(1, n_items + 1, tg.shape, device=tg.device)
            neg = (hs * E[neg_items]).sum(-1)
            valid = (neg_items != tg).float()
            return (F.softplus(-pos) + valid * F.softplus(neg)).mean()
        if log_q is None:
            neg_items = torch.randint(1, n_items + 1, (n_neg,), device=tg.device)
            neg = hs @ E[neg_items].T                                        # (N, n_neg)
        else:  # popularity proposal: draw ∝ q, subtract log(n_neg q) from every logit (logQ correction)
            neg_items = torch.multinomial(q, n_neg, replacement=True) + 1
            neg = hs @ E[neg_items].T - log_q[neg_items][None, :]
            pos = pos - log_q[tg]
        neg = neg.masked_fill(neg_items[None, :] == tg[:, None], float("-inf"))
        logits = torch.cat([pos[:, None], neg], 1)                           # (N, 1 + n_neg)
        return F.cross_entropy(logits, torch.zeros(len(tg), dtype=torch.int64, device=tg.device))

    return loss_fn


class SequenceRecommender(_NeuralRanker):
    """What GRU4Rec, SASRec and BERT4Rec share: the sequences, the losses, validation, scoring and serving a
    sequence directly (:meth:`next_item_scores`, :meth:`continue_sequence`).

    A subclass builds its network (``_build(generator)``) and its training data (``_training_data(indptr, seq)``
    → ``(data, n_examples)``); ``_query_tokens`` says how the next item is asked for (here: the user's last
    ``max_len`` items).
    """

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self, "max_len", self.max_len)
        check_choice(self, "loss", self.loss, LOSSES)
        check_int(self, "n_negatives", self.n_negatives)
        check_number(self, "neg_power", self.neg_power)

    def _check_transformer(self) -> None:
        """``n_blocks``, ``n_heads`` and heads that split ``n_factors`` evenly (SASRec, BERT4Rec)."""
        check_int(self, "n_blocks", self.n_blocks)
        check_int(self, "n_heads", self.n_heads)
        if self.n_factors % self.n_heads:
            raise ValueError(f"{type(self).__name__}: n_factors ({self.n_factors}) must be divisible by n_heads "
                             f"({self.n_heads})")

    # ---- the protocol's hooks -------------------------------------------------------------------
    def sequences(self, frame: pd.DataFrame):
        """Each user's items in ``frame``, in time order, as :func:`user_sequences` lays them out (rows = users
        of ``user_ids_``): ``(indptr, seq)`` of item positions."""
        return user_sequences(self.user_positions(frame[USER]), self.item_positions(frame[ITEM]),
                              frame[TIME].to_numpy(), self.n_users)

    def _prepare(self, train: pd.DataFrame) -> None:
        if TIME not in train.columns:
            raise ValueError(f"{type(self).__name__} orders each user's interactions by '{TIME}', which train does "
                             "not have")
        self.seq_indptr_, self.seq_ = self.sequences(train)

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        indptr, seq = self.sequences(frame)
        data = self._training_data(indptr, seq)
        network = self._build(generator)
        loss = sequence_loss(self.loss, self.n_items, self.n_negatives, self.neg_power,
                             np.bincount(seq, minlength=self.n_items), self.device_)
        return TrainingSetup(network, loss, data, state={"indptr": indptr, "seq": seq})

    def _training_data(self, indptr: np.ndarray, seq: np.ndarray):
        """The next-item windows of the sequences (``n_windows_``)."""
        inputs, targets = next_item_windows(indptr, seq, self.max_len)
        if len(inputs) == 0:
            raise ValueError(f"{type(self).__name__}: no user has two or more training interactions, so there is "
                             "no next item to learn")
        self.n_windows_ = len(inputs)
        return inputs, targets

    def _build(self, generator):
        raise NotImplementedError

    def _validation_scores(self, setup: TrainingSetup, network, users: np.ndarray):
        tokens, lengths = self._query_tokens(setup.state["indptr"], setup.state["seq"], users)
        return self._scores_from_tokens(network, tokens, lengths)

    # ---- scoring --------------------------------------------------------------------------------
    def _query_tokens(self, indptr, seq, users):
        """The input that asks the model for each user's next item: tokens and lengths (here the user's last
        ``max_len`` items; the masked model appends a [MASK])."""
        return last_windows(indptr, seq, users, self.max_len)

    def _scores_from_tokens(self, network, tokens: np.ndarray, lengths: np.ndarray):
        """:math:`h_T^\\top e_i` for every item, with :math:`h_T` the output at each row's last real position."""
        import torch

        t = torch.as_tensor(tokens, device=self.device_)
        ln = torch.as_tensor(lengths, device=self.device_)
        h = network(t)                                                       # (B, L, d)
        h_last = h[torch.arange(len(t), device=h.device), ln - 1]            # (B, d)
        return h_last @ network.item_emb.weight[1:].T                        # (B, n_items)

    def _score_users(self, users, batch: int = 512):
        import torch

        out = np.empty((len(users), self.n_items))
        with torch.no_grad():
            for s in range(0, len(users), batch):
                tokens, lengths = self._query_tokens(self.seq_indptr_, self.seq_, users[s:s + batch])
                out[s:s + batch] = self._scores_from_tokens(self.module_, tokens, lengths).cpu().numpy()
        return out

    # ---- serving a sequence directly -------------------------------------------------------------
    def _tokens_of(self, movie_ids) -> np.ndarray:
        ids = np.asarray(list(movie_ids))
        pos = self.item_positions(ids) if len(ids) else np.zeros(0, dtype=np.int64)
        pos = pos[pos >= 0][-self.max_len:]
        if len(pos) == 0:
            raise UnknownIdError(f"{type(self).__name__}: none of the movieIds {list(ids[:5])} is in the training "
                                 "catalogue, so there is no sequence to continue")
        return pos.astype(np.int64) + 1

    def next_item_scores(self, movie_ids) -> np.ndarray:
        """Scores of every catalogue item as the next item after each prefix of ``movie_ids``.

        Returns ``(T, n_items)``: row ``t`` scores the item that follows ``movie_ids[:t + 1]``; it depends on those
        items only. Unknown movieIds are dropped and only the last ``max_len`` known ones are used (so
        ``T <= max_len``); columns follow ``item_ids_``.
        """
        import torch

        self._check_fitted()
        tokens = self._tokens_of(movie_ids)
        with torch.no_grad():
            h = self.module_(torch.as_tensor(tokens[None], device=self.device_))[0]
            return (h @ self.module_.item_emb.weight[1:].T).cpu().numpy().astype(np.float64)

    def continue_sequence(self, movie_ids, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` next items after the sequence ``movie_ids`` (oldest first) — for any user, known or new,
        without retraining.

        Returns a DataFrame ``movieId, score, rank``; the sequence's own items are excluded if ``exclude_seen``.
        Raises :class:`~recsys_course.models.UnknownIdError` if no movieId of the sequence is in the catalogue.
        """
        check_int(None, "k", k)
        scores = self.next_item_scores(movie_ids)[-1].copy()
        if exclude_seen:  # every known item of the sequence, also those older than the last max_len
            pos = self.item_positions(np.asarray(list(movie_ids)))
            scores[pos[pos >= 0]] = -np.inf
        top = top_k(scores[None], k)[0]
        top = top[np.isfinite(scores[top])]
        return pd.DataFrame({ITEM: self.item_ids_[top], SCORE: scores[top], RANK: np.arange(1, len(top) + 1)})


class GRU4Rec(SequenceRecommender):
    r"""A GRU next-item model in the spirit of GRU4Rec (Hidasi, Karatzoglou, Baltrunas & Tikk 2016).

    .. math:: z_t = \sigma(W_z e_{x_t} + U_z h_{t-1} + b_z), \quad r_t = \sigma(W_r e_{x_t} + U_r h_{t-1} + b_r),

    .. math:: \tilde h_t = \tanh\big(W_h e_{x_t} + r_t \odot (U_h h_{t-1}) + b_h\big), \quad
              h_t = (1 - z_t) \odot \tilde h_t + z_t \odot h_{t-1},

    (PyTorch's ``nn.GRU`` convention; the reset gate also multiplies :math:`U_h`'s bias) and the next-item
    scores :math:`s_t(i) = h_t^\top e_i` with the input embeddings tied to the output. ``n_factors`` is both
    the embedding and the hidden size; ``n_layers`` GRU layers are stacked; ``dropout`` acts on the embeddings
    and the GRU output. Differences from the original: users' whole histories cut into windows of ``max_len``
    instead of session-parallel mini-batches, and the losses of the module docstring instead of TOP1/BPR.
    Cost: :math:`O(|\mathcal R|\,d^2)` per epoch plus the loss (:math:`O(|\mathcal R|\,d\,n_{\text{neg}})`).
    The network: :class:`recsys_course.networks.sequential.GRU4RecNet`.
    """

    def __init__(self, n_factors: int = 64, n_layers: int = 1, dropout: float = 0.2, max_len: int = 20,
                 loss: str = "sampled_softmax", n_negatives: int = 256, neg_power: float = 1.0, lr: float = 0.02,
                 weight_decay: float = 0.0, n_epochs: int = 10, batch_size: int = 64, patience: int | None = 3,
                 val_size: int | float | None = 1, val_split: str = "last", refit: bool = False, device=None,
                 seed: int = 0, verbose: bool = True):
        self.n_factors = n_factors
        self.n_layers = n_layers
        self.dropout = dropout
        self.max_len = max_len
        self.loss = loss
        self.n_negatives = n_negatives
        self.neg_power = neg_power
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self, "n_layers", self.n_layers)

    def _build(self, generator):
        from ..networks import sequential as nets

        return nets.GRU4RecNet(self.n_items, self.n_factors, self.n_layers, float(self.dropout), generator)


class SASRec(SequenceRecommender):
    r"""Self-attentive sequential recommendation in the spirit of SASRec (Kang & McAuley 2018).

    Input :math:`H^{(0)}_t = e_{x_t} + p_t` (item embedding plus a **learned positional embedding** of the
    position in the window), then ``n_blocks`` pre-LayerNorm transformer blocks

    .. math:: H' = H + \mathrm{Attn}(\mathrm{LN}(H)), \qquad H'' = H' + \mathrm{FFN}(\mathrm{LN}(H')),

    .. math:: \mathrm{Attn}(X) = \mathrm{softmax}\Big(\frac{(XW_Q)(XW_K)^\top}{\sqrt{d_h}} + M\Big) XW_V,
              \qquad M_{ts} = \begin{cases}0 & s \le t\\ -\infty & s > t\end{cases}

    (the **causal mask** :math:`M`: position :math:`t` never attends to a later item; ``n_heads`` heads of
    :math:`d_h = d / n_{\text{heads}}`), a final LayerNorm, and the scores :math:`s_t(i) = h_t^\top e_i` with the
    **item embeddings shared** between input and output. Windows are right-padded: a real position only
    attends to real positions before it, so padding needs no extra mask. Cost per epoch
    :math:`O(|\mathcal R|\,(L d + d^2))` with :math:`L` = ``max_len``, plus the loss. The network:
    :class:`recsys_course.networks.sequential.SASRecNet`.
    """

    def __init__(self, n_factors: int = 64, n_blocks: int = 1, n_heads: int = 1, dropout: float = 0.2,
                 max_len: int = 20, loss: str = "sampled_softmax", n_negatives: int = 256, neg_power: float = 1.0,
                 lr: float = 0.005, weight_decay: float = 0.0, n_epochs: int = 10, batch_size: int = 64,
                 patience: int | None = 3, val_size: int | float | None = 1, val_split: str = "last",
                 refit: bool = False, device=None, seed: int = 0, verbose: bool = True):
        self.n_factors = n_factors
        self.n_blocks = n_blocks
        self.n_heads = n_heads
        self.dropout = dropout
        self.max_len = max_len
        self.loss = loss
        self.n_negatives = n_negatives
        self.neg_power = neg_power
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        self._check_transformer()

    def _build(self, generator):
        from ..networks import sequential as nets

        return nets.SASRecNet(self.n_items, self.n_factors, self.max_len, self.n_blocks, self.n_heads,
                              float(self.dropout), generator)
