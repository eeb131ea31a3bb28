r"""Masked-item pretraining and fine-tuning (notebook 08): :class:`BERT4Rec`.

**The model** (after Sun et al. 2019, "BERT4Rec"). The same shape as SASRec (:mod:`.sequential`) — item embedding
plus learned positional embedding, ``n_blocks`` pre-LayerNorm transformer blocks, a final LayerNorm, scores
against the shared item embeddings — with one difference: attention is **bidirectional**. Position :math:`t` may
look at every real item of the window, before and after it; only padding is hidden:

.. math:: \mathrm{Attn}(X) = \mathrm{softmax}\Big(\frac{(XW_Q)(XW_K)^\top}{\sqrt{d_h}} + M\Big) XW_V, \qquad
          M_{ts} = \begin{cases}0 & x_s \ne \text{pad}\\ -\infty & x_s = \text{pad.}\end{cases}

A bidirectional model cannot be trained to predict "the next item" at every position (it would see it), so it
learns a **cloze task** instead. Tokens are item position + 1, 0 is padding and ``n_items + 1`` is the
``[MASK]`` token (its own embedding, not an item). Every real position is replaced by ``[MASK]`` with probability
``mask_prob`` (a window with none gets its most likely-to-be-masked position masked), never a padding position,
and the loss is taken **only on masked positions**:

.. math:: \mathcal L = -\sum_{t \in \mathcal M} \ln \frac{\exp(h_t^\top e_{x_t})}{\sum_j \exp(h_t^\top e_j)}

(approximated by the sampled softmax of :mod:`.sequential`; ``loss="softmax"`` is the exact one).

**Next-item prediction** appends ``[MASK]`` after the user's last ``max_len - 1`` items and ranks the catalogue
by :math:`h_{\text{[MASK]}}^\top e_i` — exactly a cloze question about the position after the end. A final
linear ``head`` (:math:`h \mapsto W_h h + b_h`, initialised to the identity, frozen during pretraining) sits between
the encoder and the scores.

**Modes** (``mode=``):

* ``"pretrain"`` — self-supervised cloze training on every training sequence (windows of ``max_len`` items).
  The fitted model already recommends (``[MASK]`` appended): "zero-shot" next-item prediction.
* ``"scratch"`` — random initialisation, trained only on the **fine-tuning objective**: for each user's last
  ``finetune_n`` training positions :math:`t`, the input is the ``max_len - 1`` items before :math:`t` plus
  ``[MASK]``, the target is :math:`x_t` — the next-item question, asked the way it is asked at test time. The
  target and everything after it are never in the input (tested).
* ``"finetune"`` — the same objective, all weights starting from ``pretrained`` (a fitted ``mode="pretrain"``
  BERT4Rec on the same catalogue) and all trained.
* ``"frozen"`` — encoder and item embeddings from ``pretrained``, frozen; only the head trains
  (:math:`d^2 + d` parameters).
* ``"lora"`` — everything from ``pretrained`` frozen; low-rank adapters (:class:`recsys_course.adapters.LoRALinear`,
  rank ``lora_r``, scale ``lora_alpha / lora_r``) on the linear layers named in ``lora_targets`` of every block
  train: :math:`r (d_{in} + d_{out})` parameters per adapted matrix. The head stays the identity.

**Training** follows the one protocol of :class:`recsys_course.models.torch_train.TorchRecommender`, as SASRec
does (:mod:`.sequential`): mini-batch Adam over the **trainable parameters only**, a text progress bar per epoch,
early stopping on NDCG@10 of each user's last training item (``val_size=1``, ``val_split="last"``; ``[MASK]``
appended, every held-out item relevant) with the best weights restored; not refitted by default (``refit=False``).
``n_epochs`` is the budget of this stage. Cost per epoch :math:`O(N L (L d + d^2))` for :math:`N` windows of length
:math:`L`, plus the loss. The stored tuning behind the defaults: ``recsys_course.models.tuning_tables("08")``.

After ``fit``: ``module_`` (a :class:`recsys_course.networks.sequential.BERT4RecNet`), ``history_``,
``best_epoch_``, ``loss_``, ``fit_seconds_``, ``n_parameters_`` (all scalar parameters), ``n_trainable_`` (those
this stage trained), ``n_examples_`` (training windows or fine-tuning examples), ``adapted_`` (the LoRA-adapted
layers), ``seq_indptr_``/``seq_``. Unknown users: :class:`~recsys_course.models.UnknownIdError` (serve a new user
with :meth:`BERT4Rec.continue_sequence`); unknown items score ``-inf`` in ``predict``.
"""
from __future__ import annotations

import numpy as np

from ..checks import check_choice, check_int, check_number, check_share
from .sequential import SequenceRecommender, last_windows
from .torch_train import TrainingSetup

__all__ = ["BERT4Rec"]

MODES = ("pretrain", "scratch", "finetune", "frozen", "lora")


# --------------------------------------------------------------------------------------------
# data (NumPy): windows, masking, fine-tuning examples
# --------------------------------------------------------------------------------------------
def item_windows(indptr: np.ndarray, seq: np.ndarray, max_len: int) -> np.ndarray:
    """Every user's items cut into windows of ``max_len`` consecutive items, aligned at the end (only the
    oldest window of a user may be shorter), as right-padded tokens (item position + 1, pad 0)."""
    L = np.diff(indptr)
    n_win = -(-L // max_len)
    Lr = np.repeat(L, L)
    j = np.arange(L.sum()) - np.repeat(np.cumsum(L) - L, L)
    w_from_end = (Lr - 1 - j) // max_len
    start = np.maximum(Lr - (w_from_end + 1) * max_len, 0)
    window = np.repeat(np.cumsum(n_win) - n_win, L) + (np.repeat(n_win, L) - 1 - w_from_end)
    out = np.zeros((int(n_win.sum()), max_len), dtype=np.int64)
    out[window, j - start] = seq + 1
    return out


def mask_items(tokens: np.ndarray, u: np.ndarray, mask_prob: float, mask_token: int):
    r"""The cloze corruption: ``(inputs, targets)`` from right-padded ``tokens`` and uniform draws ``u`` (same shape).

    Position :math:`(w, t)` is masked when :math:`u_{wt} < p` and it is not padding; a window with real items but
    no masked position gets the real position with the smallest :math:`u` masked. ``inputs`` = ``tokens`` with
    masked positions set to ``mask_token``; ``targets`` = the original token at masked positions, 0 elsewhere
    (the loss is taken only where ``targets > 0``). Padding is never masked.
    """
    tokens, u = np.asarray(tokens), np.asarray(u, dtype=np.float64)
    if tokens.shape != u.shape:
        raise ValueError(f"tokens and u must have the same shape, got {tokens.shape} and {u.shape}")
    real = tokens > 0
    masked = real & (u < mask_prob)
    none = real.any(1) & ~masked.any(1)
    if none.any():
        pick = np.where(real[none], u[none], np.inf).argmin(1)
        masked[np.flatnonzero(none), pick] = True
    inputs = np.where(masked, mask_token, tokens)
    targets = np.where(masked, tokens, 0)
    return inputs, targets


def finetune_examples(indptr: np.ndarray, seq: np.ndarray, max_len: int, last_n: int | None, mask_token: int):
    r"""Next-item examples asked the BERT4Rec way: for each of a user's last ``last_n`` positions :math:`t \ge 2`
    (``None``: all of them), input = the ``max_len - 1`` items before :math:`t` followed by ``[MASK]``
    (right-padded), target = :math:`x_t` at the ``[MASK]`` position and 0 elsewhere. Returns ``(inputs, targets,
    owner)`` with ``owner`` the user position of each example. The target and later items never enter the input.
    """
    L = np.diff(indptr)
    first = np.ones_like(L) if last_n is None else np.maximum(L - last_n, 1)   # 0-based t, needs one item before
    n = np.maximum(L - first, 0)
    owner = np.repeat(np.arange(len(L)), n)
    t = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(first, n)    # target index in the user seq
    k = np.minimum(t, max_len - 1)                                                  # items before the mask
    inputs = np.zeros((len(t), max_len), dtype=np.int64)
    targets = np.zeros_like(inputs)
    row = np.repeat(np.arange(len(t)), k)
    col = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
    src = np.repeat(indptr[owner] + t - k, k) + col
    inputs[row, col] = seq[src] + 1
    rows = np.arange(len(t))
    inputs[rows, k] = mask_token
    targets[rows, k] = seq[indptr[owner] + t] + 1
    return inputs, targets, owner


# --------------------------------------------------------------------------------------------
# the recommender
# --------------------------------------------------------------------------------------------
class BERT4Rec(SequenceRecommender):
    r"""BERT4Rec-style bidirectional sequence model: masked-item pretraining, then one of four ways to learn the
    next-item task (``mode``). See the module docstring for the formulas, the modes and the protocol; the network
    is :class:`recsys_course.networks.sequential.BERT4RecNet`.

    Parameters beyond SASRec's (``n_factors``, ``n_blocks``, ``n_heads``, ``dropout``, ``max_len``, ``loss``,
    ``n_negatives``, ``neg_power``, ``lr``, ``weight_decay``, ``n_epochs``, ``batch_size``, ``patience``,
    ``val_size``, ``val_split``, ``refit``, ``device``, ``seed``, ``verbose``): ``mode``; ``pretrained`` (a fitted
    ``mode="pretrain"`` BERT4Rec with the same catalogue and architecture; required by
    ``finetune``/``frozen``/``lora``); ``mask_prob`` (cloze masking rate); ``last_share`` (share of pretraining
    windows whose last item is masked, in [0, 1]); ``patience`` (``None``: 10 epochs when pretraining, 3 when
    fine-tuning, see :attr:`patience_`); ``finetune_n`` (fine-tuning examples per user: the last ``finetune_n``
    positions of each training sequence, ``None`` = all); ``lora_r``, ``lora_alpha``, ``lora_targets``.
    ``refit=False`` by default, as for SASRec: only each user's last item is held out.

    Typical use::

        base = BERT4Rec(mode="pretrain").fit(train)            # self-supervised, the expensive part, once
        lora = BERT4Rec(mode="lora", pretrained=base).fit(train)  # cheap, many times
    """

    def __init__(self, mode: str = "pretrain", pretrained=None, n_factors: int = 64, n_blocks: int = 1,
                 n_heads: int = 1, dropout: float = 0.2, max_len: int = 20, mask_prob: float = 0.2,
                 last_share: float = 0.5, finetune_n: int | None = 5, lora_r: int = 4, lora_alpha: float = 8.0,
                 lora_targets: tuple = ("q", "v"), loss: str = "sampled_softmax", n_negatives: int = 256,
                 neg_power: float = 1.0, lr: float = 0.005, weight_decay: float = 0.0, n_epochs: int = 10,
                 batch_size: int = 64, patience: int | None = None, val_size: int | float | None = 1,
                 val_split: str = "last", refit: bool = False, device=None, seed: int = 0, verbose: bool = True):
        self.mode = mode
        self.pretrained = pretrained
        self.n_factors = n_factors
        self.n_blocks = n_blocks
        self.n_heads = n_heads
        self.dropout = dropout
        self.max_len = max_len
        self.mask_prob = mask_prob
        self.last_share = last_share
        self.finetune_n = finetune_n
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_targets = lora_targets
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

    # ---- checks ---------------------------------------------------------------------------------
    @property
    def patience_(self) -> int:
        """``patience``, or by default 10 epochs for pretraining (its zero-shot validation score is noisy and climbs
        late) and 3 for the fine-tuning modes."""
        if self.patience is not None:
            return self.patience
        return 10 if self.mode == "pretrain" else 3

    def _check_params(self) -> None:
        check_choice(self, "mode", self.mode, MODES)
        super()._check_params()
        self._check_transformer()
        check_int(self, "max_len", self.max_len, low=2)
        check_share(self, "mask_prob", self.mask_prob)
        if check_number(self, "last_share", self.last_share) > 1:
            raise ValueError(f"BERT4Rec: last_share must be a finite number >= 0 and <= 1, got {self.last_share!r}")
        check_int(self, "finetune_n", self.finetune_n, allow_none=True)
        check_int(self, "lora_r", self.lora_r)
        check_number(self, "lora_alpha", self.lora_alpha, positive=True)
        if isinstance(self.lora_targets, str) or not self.lora_targets:
            raise ValueError(f"BERT4Rec: lora_targets must be a non-empty tuple of layer names such as ('q', 'v'), "
                             f"got {self.lora_targets!r}")
        self._check_pretrained()

    def _check_pretrained(self) -> None:
        needs = self.mode in ("finetune", "frozen", "lora")
        if needs and self.pretrained is None:
            raise ValueError(f"BERT4Rec: mode={self.mode!r} starts from a pretrained model; pass "
                             "pretrained=BERT4Rec(mode='pretrain').fit(train)")
        if not needs and self.pretrained is not None:
            raise ValueError(f"BERT4Rec: mode={self.mode!r} trains from a random initialisation, so pretrained= "
                             "must be None (use mode='finetune', 'frozen' or 'lora' to start from it)")
        if needs:
            p = self.pretrained
            if not isinstance(p, BERT4Rec) or not p.is_fitted or p.mode != "pretrain":
                raise ValueError("BERT4Rec: pretrained must be a BERT4Rec fitted with mode='pretrain'")
            for name in ("n_factors", "n_blocks", "n_heads", "max_len"):
                if getattr(p, name) != getattr(self, name):
                    raise ValueError(f"BERT4Rec: {name}={getattr(self, name)} differs from the pretrained model's "
                                     f"{getattr(p, name)}; the architecture must match to load its weights")

    @property
    def mask_token(self) -> int:
        """The ``[MASK]`` token, ``n_items + 1`` (0 is padding, items are 1..n_items)."""
        return self.n_items + 1

    def _query_tokens(self, indptr, seq, users):
        """The last ``max_len - 1`` items of each user followed by ``[MASK]``: tokens and lengths (mask included)."""
        tokens, lengths = last_windows(indptr, seq, users, self.max_len - 1)
        tokens = np.concatenate([tokens, np.zeros((len(tokens), 1), dtype=np.int64)], 1)
        tokens[np.arange(len(tokens)), lengths] = self.mask_token
        return tokens, lengths + 1

    # ---- training -------------------------------------------------------------------------------
    def _build(self, generator):
        """Build the network; load the pretrained weights and freeze/adapt according to the mode."""
        import torch

        from ..adapters import add_lora, freeze
        from ..networks import sequential as nets

        module = nets.BERT4RecNet(self.n_items, self.n_factors, self.max_len, self.n_blocks, self.n_heads,
                                  float(self.dropout), generator)
        self.adapted_ = []
        if self.mode == "pretrain":
            freeze(module, ["head."])                   # pretraining learns the encoder; the head stays identity
            return module
        if self.mode == "scratch":
            return module
        p = self.pretrained
        if not np.array_equal(p.item_ids_, self.item_ids_):
            raise ValueError("BERT4Rec: the pretrained model was fitted on another catalogue of movies; pretrain on "
                             "a frame with the same movies (the embeddings are per movie)")
        module.load_state_dict({k: v.detach().cpu() for k, v in p.module_.state_dict().items()})
        if self.mode == "frozen":
            freeze(module)
            for q in module.head.parameters():
                q.requires_grad_(True)
        elif self.mode == "lora":
            freeze(module)
            gen = torch.Generator().manual_seed(self.seed + 1)
            self.adapted_ = add_lora(module, self.lora_r, float(self.lora_alpha), tuple(self.lora_targets), gen)
        return module

    def _pretraining_data(self, indptr: np.ndarray, seq: np.ndarray):
        """``data(epoch, generator)``: every window of ``max_len`` items, cloze-masked afresh each epoch."""
        import torch

        windows = item_windows(indptr, seq, self.max_len)
        windows = windows[(windows > 0).sum(1) >= 2]          # one item alone has no context to learn from
        if len(windows) == 0:
            raise ValueError("BERT4Rec: no user has two or more training interactions, nothing to pretrain on")
        self.n_examples_ = len(windows)
        last = (windows > 0).sum(1) - 1
        mask_token, p, last_share = self.mask_token, float(self.mask_prob), float(self.last_share)

        def data(epoch, generator):
            u = torch.rand(windows.shape, generator=generator).numpy()
            inputs, targets = mask_items(windows, u, p, mask_token)
            if last_share > 0:  # some windows end in [MASK], the question asked at test time (Sun et al. 2019)
                pick = torch.rand(len(windows), generator=generator).numpy() < last_share
                rows = np.flatnonzero(pick)
                inputs[rows, last[rows]] = mask_token
                targets[rows, last[rows]] = windows[rows, last[rows]]
            return torch.as_tensor(inputs), torch.as_tensor(targets)

        return data

    def _training_data(self, indptr: np.ndarray, seq: np.ndarray):
        """Cloze windows when pretraining, next-item examples (:func:`finetune_examples`) otherwise."""
        if self.mode == "pretrain":
            return self._pretraining_data(indptr, seq)
        inputs, targets, _ = finetune_examples(indptr, seq, self.max_len, self.finetune_n, self.mask_token)
        if len(inputs) == 0:
            raise ValueError("BERT4Rec: no user has two or more training interactions, so there is no next item "
                             "to fine-tune on")
        self.n_examples_ = len(inputs)
        return inputs, targets

    def _setup(self, frame, generator) -> TrainingSetup:
        from ..adapters import count_parameters, trainable_parameters

        setup = super()._setup(frame, generator)
        self.n_parameters_ = count_parameters(setup.network)
        self.n_trainable_ = count_parameters(setup.network, trainable_only=True)
        setup.parameters = trainable_parameters(setup.network)     # the frozen ones never reach the optimiser
        return setup

    def _patience(self) -> int:
        return self.patience_

    def _run(self, frame, epochs, validation, desc):
        """One training run of the protocol, labelled with the mode."""
        return super()._run(frame, epochs, validation, f"{desc} {self.mode}")

    # ---- scoring --------------------------------------------------------------------------------
    def next_item_scores(self, movie_ids) -> np.ndarray:
        """Scores of every catalogue item as the next item after each prefix of ``movie_ids`` (``(T, n_items)``):
        row ``t`` appends ``[MASK]`` to the last ``max_len - 1`` known items of ``movie_ids[:t + 1]``, so it depends
        on those items only. Unknown movieIds are dropped; at most the last ``max_len - 1`` rows are returned."""
        import torch

        self._check_fitted()
        tokens = self._tokens_of(movie_ids)[-(self.max_len - 1):] - 1       # item positions
        T = len(tokens)
        # prefix t = tokens[:t + 1]: lay the T prefixes out as T "users"
        seq = np.concatenate([tokens[:t + 1] for t in range(T)])
        indptr = np.concatenate([[0], np.cumsum(np.arange(1, T + 1))])
        toks, lengths = self._query_tokens(indptr, seq, np.arange(T))
        with torch.no_grad():
            return self._scores_from_tokens(self.module_, toks, lengths).cpu().numpy().astype(np.float64)
