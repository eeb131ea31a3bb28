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
:func:`masked_mse`, :func:`autorec_loss`, :func:`kl_beta`, :func:`gaussian_kl`, :func:`multinomial_nll`.
The networks themselves (:class:`~recsys_course.networks.autoencoders.AutoRecNet`,
:class:`~recsys_course.networks.autoencoders.DAENet`, :class:`~recsys_course.networks.autoencoders.MultVAENet`)
live in :mod:`recsys_course.networks.autoencoders`.

All three are :class:`~recsys_course.models.torch_train.TorchRecommender` models: they train with the course's
one protocol (a text progress bar per epoch with the loss, early stopping on a validation slice of train —
``val_size``, ``val_split`` — the best weights restored, then a refit on all of train), take ``device=None``
(CUDA, then MPS, then CPU) and ``seed`` and are deterministic on the CPU for a fixed seed. They update their
few million parameters with torch's fused Adam kernel. Their first layers read the input through
``torch.nn.functional.embedding_bag`` over the non-zero entries only, so the cost of the encoder is
proportional to the number of ratings, not to the size of the matrix.

Unknown users and items: :class:`AutoRec` predicts with a :class:`~recsys_course.models.BiasBaseline`
fitted on the same data; :class:`DAE` and :class:`MultVAE` score unknown items ``-inf`` and raise
:class:`~recsys_course.models.UnknownIdError` for unknown users. None of them can ``recommend`` for a user
absent from training.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import check_bool, check_choice, check_int, check_number, check_sizes, require_known_users
from ..config import ITEM, RATING, USER
from .baselines import BiasBaseline
from .torch_train import TorchRecommender, TrainingSetup

__all__ = ["AutoRec", "DAE", "MultVAE"]


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
    check_int("kl_beta", "anneal_steps", anneal_steps, low=0)
    check_number("kl_beta", "beta_max", beta_max)
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




def autorec_loss(net, rows, items, *, masked: bool = True, reg: float = 0.0):
    r"""The loss :class:`AutoRec` minimises on a mini-batch of items (positions into ``rows``):

    .. math:: \mathcal L = \frac{\sum_{i \in \mathcal B}\lVert m_i \odot (r_i - \hat r_i)\rVert^2}
              {\sum_{i \in \mathcal B} \lVert m_i\rVert_1} + \frac{\lambda}{2}\big(\lVert W\rVert_F^2
              + \lVert V\rVert_F^2\big),

    :func:`masked_mse` of the batch's columns (only the observed cells are decoded) plus the L2 penalty
    ``reg`` = :math:`\lambda` on the two weight matrices. ``masked=False`` uses the mean over *every* cell of
    the batch's columns instead, the missing ratings as targets of 0.

    Parameters
    ----------
    net : :class:`~recsys_course.networks.autoencoders.AutoRecNet`
    rows : :class:`~recsys_course.networks.layers.SparseRows`
        The items × users matrix of training ratings.
    items : torch.Tensor of int
        The batch: rows of ``rows``.
    """
    import torch

    cols, vals, offsets, owner = rows.batch(items)
    h = net.encode(cols, vals, offsets)  # (B, d)
    if masked:  # decode only the observed cells: mean over them of (r - r̂)²
        err = net.decode_pairs(h, owner, cols) - vals
        data = (err ** 2).mean()
    else:  # every cell is a target, the missing ones with value 0
        target = torch.zeros(len(items), rows.shape[1], device=h.device)  # (B, n_users)
        target[owner, cols] = vals
        data = ((net.decode(h) - target) ** 2).mean()
    return data + 0.5 * reg * ((net.W ** 2).sum() + (net.V ** 2).sum())


def _check_activation(model) -> None:
    from ..networks.layers import ACTIVATIONS

    check_choice(model, "activation", model.activation, ACTIVATIONS)


# --------------------------------------------------------------------------------------------
# AutoRec
# --------------------------------------------------------------------------------------------
class AutoRec(TorchRecommender):
    r"""I-AutoRec (Sedhain, Menon, Sanner & Xie 2015): an autoencoder over each **item's** vector of ratings.

    The input of item :math:`i` is its column :math:`r_i \in \mathbb R^{n_{\text{users}}}` of training ratings
    (0 where a user has not rated it). With :math:`g` = ``activation`` (sigmoid in the paper; tanh validated
    better on ml-latest-small) and an identity output,

    .. math:: h_i = g(V r_i + b) \in \mathbb R^{d}, \qquad \hat r_i = W h_i + c \in \mathbb R^{n_{\text{users}}},

    and :math:`\hat r_{ui}` (entry :math:`u` of :math:`\hat r_i`) is the predicted rating; :math:`d` =
    ``n_factors``. Training minimises the **masked** reconstruction error plus an L2 penalty on the two weight
    matrices, written inside the loss (:func:`autorec_loss`),

    .. math:: \mathcal L = \frac{\sum_{i}\lVert m_i \odot (r_i - \hat r_i)\rVert^2}{\sum_i \lVert m_i\rVert_1}
              + \frac{\lambda}{2}\big(\lVert W\rVert_F^2 + \lVert V\rVert_F^2\big), \qquad \lambda = \texttt{reg},

    :math:`m_{ui} = 1` for observed ratings only (:func:`masked_mse`), estimated on mini-batches of
    ``batch_size`` items by Adam (``weight_decay`` adds the optimiser's own L2 term on every parameter; the
    paper used L-BFGS/Rprop; the objective is the same up to the scale of :math:`\lambda`).
    ``masked=False`` replaces the mask by all ones — every missing rating becomes a target of 0 — which is
    the mistake notebook 05 demonstrates. Only the observed cells are decoded in the masked loss, so an epoch
    costs :math:`O(|\mathcal R|\,d)`; ``masked=False`` decodes the whole matrix, :math:`O(n_u n_i d)`.

    The item code :math:`h_i` is the item's learned representation (``item_embeddings_``), the decoder row
    :math:`W_u` the user's (``user_embeddings_``); ``user_bias_`` holds :math:`c` and ``encoder_`` the
    encoder's ``V`` and ``b``. The output bias :math:`c` starts at the best constant for the loss: the mean
    training rating :math:`\mu` (masked), or the mean over every cell of the trained columns,
    :math:`\rho\mu` with :math:`\rho` the share of filled cells (unmasked).

    * **Early stopping** (see :class:`~recsys_course.models.torch_train.TorchRecommender`). With ``val_size``
      set (default: each user's most recent 20 % of training ratings, ``val_split="last"``), the slice is held
      out, the network is trained on the rest and stops when the validation RMSE has not improved for
      ``patience`` epochs (the best epoch's weights are restored). With ``refit=True`` it is then retrained,
      from the same initialisation, on all of train for the best number of epochs. ``val_size=None`` trains
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
    fused_optimizer = True

    def __init__(self, n_factors: int = 50, activation: str = "tanh", reg: float = 0.003, lr: float = 0.003,
                 weight_decay: float = 0.0, n_epochs: int = 60, batch_size: int = 256, patience: int | None = 4,
                 val_size: int | float | None = 0.2, val_split: str = "last", refit: bool = True,
                 masked: bool = True, device=None, seed: int = 0, verbose: bool = True):
        self.n_factors = n_factors
        self.activation = activation
        self.reg = reg
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.masked = masked
        self.device = device
        self.seed = seed
        self.verbose = verbose

    # ---- the protocol's hooks ------------------------------------------------------------------
    def _check_params(self) -> None:
        check_int(self, "n_factors", self.n_factors)
        _check_activation(self)
        check_number(self, "reg", self.reg)
        check_bool(self, "masked", self.masked)

    def _prepare(self, train: pd.DataFrame) -> None:
        self.baseline_ = BiasBaseline().fit(train)

    def _item_matrix(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """Items × users CSR of ``frame``'s ratings on this model's full index."""
        u = self.user_positions(frame[USER])
        i = self.item_positions(frame[ITEM])
        return sp.csr_matrix((frame[RATING].to_numpy(np.float32), (i, u)), shape=(self.n_items, self.n_users))

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        import torch

        from ..networks.autoencoders import AutoRecNet
        from ..networks.layers import SparseRows

        matrix = self._item_matrix(frame)
        rows = SparseRows(matrix, self.device_)
        items = np.flatnonzero(np.diff(matrix.indptr))  # items with at least one rating are the examples
        # the output bias starts at the best constant for the loss: the mean rating (masked) or the mean over
        # every cell of the trained columns, missing ones as 0 (unmasked)
        c0 = float(frame[RATING].mean()) if self.masked else float(frame[RATING].sum()) / (len(items) * self.n_users)
        net = AutoRecNet(self.n_users, self.n_factors, self.activation, c0, generator)
        masked, reg = bool(self.masked), float(self.reg)

        def loss(network, batch):
            return autorec_loss(network, rows, batch, masked=masked, reg=reg)

        return TrainingSetup(net, loss, (torch.as_tensor(items),), state={"rows": rows})

    def _validation_predictions(self, setup: TrainingSetup, network, users, items):
        """Predictions (a tensor) of the held-out pairs: each held-out item coded once from the fit part."""
        import torch

        rows = setup.state["rows"]
        device = rows.indptr.device
        v_items, v_owner = np.unique(items, return_inverse=True)
        h = network.encode(*rows.batch(torch.as_tensor(v_items, device=device))[:3])
        return network.decode_pairs(h, torch.as_tensor(v_owner, device=device), torch.as_tensor(users, device=device))

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        import torch

        net, rows = setup.network.eval(), setup.state["rows"]
        codes = []
        with torch.no_grad():
            for begin in range(0, self.n_items, 4096):
                idx = torch.arange(begin, min(begin + 4096, self.n_items), device=rows.indptr.device)
                codes.append(net.encode(*rows.batch(idx)[:3]).cpu().numpy())
        self.item_embeddings_ = np.concatenate(codes).astype(np.float64)          # h_i, (n_items, d)
        self.user_embeddings_ = net.W.detach().cpu().numpy().astype(np.float64)  # W_u, (n_users, d)
        self.user_bias_ = net.c.detach().cpu().numpy().astype(np.float64)        # c_u, (n_users,)
        self.encoder_ = {"V": net.V.detach().cpu().numpy().astype(np.float64),
                         "b": net.b.detach().cpu().numpy().astype(np.float64)}

    # ---- scoring -------------------------------------------------------------------------------
    def _predict(self, users, items):
        out = np.empty(len(users))
        known = (users >= 0) & (items >= 0)
        if known.any():
            u, i = users[known], items[known]
            out[known] = (self.item_embeddings_[i] * self.user_embeddings_[u]).sum(1) + self.user_bias_[u]
        if (~known).any():  # the BiasBaseline was fitted on the same train: the same positions
            out[~known] = self.baseline_._raw(users[~known], items[~known])
        return np.clip(out, *self.rating_range_)

    def _score_users(self, users):
        return self.user_embeddings_[users] @ self.item_embeddings_.T + self.user_bias_[users][:, None]


# --------------------------------------------------------------------------------------------
# DAE and MultVAE: autoencoders over users' binarised rows
# --------------------------------------------------------------------------------------------
class _UserRowAutoencoder(TorchRecommender):
    """What DAE and MultVAE share: the binarised user rows, the modelled items, validation scores, scoring.

    A subclass implements ``_check_own_params``, ``_network(n_modelled, generator)``,
    ``_loss(rows, state) -> loss(network, users)``, ``_forward_scores(network, rows, batch_rows, user_ids)``
    (logits of the modelled items, eval mode) and ``_store_embeddings(network)``.
    """

    fused_optimizer = True

    def _check_params(self) -> None:
        check_number(self, "reg", self.reg)
        check_int(self, "min_item_count", self.min_item_count)
        check_number(self, "min_rating", self.min_rating, allow_none=True)
        self._check_own_params()

    def _check_own_params(self) -> None:
        raise NotImplementedError

    def _positives(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The interactions that count as 1s: every rating, or those >= ``min_rating``."""
        if self.min_rating is None:
            return frame
        return frame[frame[RATING] >= self.min_rating]

    def _user_matrix(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """Users × modelled items, 1 for every counted interaction of ``frame``."""
        pos = self._positives(frame)
        u = self.user_positions(pos[USER])
        col = self._column[self.item_positions(pos[ITEM])]
        keep = col >= 0
        X = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (u[keep], col[keep])),
                          shape=(self.n_users, len(self.modelled_)))
        X.data[:] = 1.0  # a repeated (user, item) pair still counts once
        return X

    def _prepare(self, train: pd.DataFrame) -> None:
        """Choose the modelled items: those with at least ``min_item_count`` counted interactions."""
        counts = np.bincount(self.item_positions(self._positives(train)[ITEM]), minlength=self.n_items)
        self.modelled_ = np.flatnonzero(counts >= self.min_item_count)
        if len(self.modelled_) == 0:
            raise ValueError(f"{type(self).__name__}: no item has min_item_count={self.min_item_count} "
                             "interactions; lower it")
        self._column = np.full(self.n_items, -1)
        self._column[self.modelled_] = np.arange(len(self.modelled_))

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        import torch

        from ..networks.layers import SparseRows

        X = self._user_matrix(frame)
        rows = SparseRows(X, self.device_)
        net = self._network(X.shape[1], generator)
        state = {"rows": rows}
        return TrainingSetup(net, self._loss(rows, state), (torch.arange(self.n_users),), state=state)

    def _all_items(self, modelled_scores: np.ndarray) -> np.ndarray:
        """Scores over the whole catalogue: the modelled items' columns, ``-inf`` for the others."""
        out = np.full((len(modelled_scores), self.n_items), -np.inf)
        out[:, self.modelled_] = modelled_scores
        return out

    def _validation_scores(self, setup: TrainingSetup, network, users: np.ndarray) -> np.ndarray:
        """Logits of the modelled items from the rows the network trains on; unmodelled items ``-inf``."""
        import torch

        rows = setup.state["rows"]
        batch_rows = torch.as_tensor(users, device=rows.indptr.device)
        return self._all_items(self._forward_scores(network, rows, batch_rows).cpu().numpy())

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        # the rows the final network reads at prediction time: those it was trained on
        self.net_ = setup.network.cpu().eval()
        self.X_ = self._user_matrix(frame)
        self._store_embeddings(self.net_)

    def _user_scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of the modelled items for known user positions (eval mode, no corruption)."""
        import torch

        from ..networks.layers import SparseRows

        rows = SparseRows(self.X_[users], "cpu")
        with torch.no_grad():
            return self._forward_scores(self.net_, rows, torch.arange(len(users)), user_ids=users).numpy()

    def _score_users(self, users):
        require_known_users(self, users, lacks="input row", advice="use a model that handles new users (Popularity)")
        return self._all_items(self._user_scores(users))

    def _predict(self, users, items):
        require_known_users(self, users, lacks="input row", advice="use a model that handles new users (Popularity)")
        out = np.full(len(users), -np.inf)
        col = np.where(items >= 0, self._column[np.maximum(items, 0)], -1)
        ok = np.flatnonzero(col >= 0)
        if len(ok):
            uniq, inv = np.unique(users[ok], return_inverse=True)
            out[ok] = self._user_scores(uniq)[inv, col[ok]]
        return out


class DAE(_UserRowAutoencoder):
    r"""A denoising autoencoder for top-N recommendation, CDAE-like (Wu, DuBois, Zheng & Ester 2016).

    The input of user :math:`u` is the binarised row :math:`y_u \in \{0,1\}^{n}` (1 for every rated item; with
    ``min_rating`` only ratings :math:`\ge` it count). During training it is **corrupted** by dropout: every 1
    is kept with probability :math:`1-q` and then scaled by :math:`1/(1-q)`, zeroed otherwise
    (:math:`q` = ``corruption``). The network (:class:`~recsys_course.networks.autoencoders.DAENet`)

    .. math:: z_u = g\Big(\sum_i \tilde y_{ui} W_i + V_u + b\Big), \qquad
              \hat y_{ui} = \sigma\big(W'_i{}^{\top} z_u + b'_i\big)

    has one input weight vector :math:`W_i` and one output vector :math:`W'_i` per item (both of size
    ``n_factors``) and, with ``user_node=True``, a per-user vector :math:`V_u` (CDAE's user node, an embedding
    added to the hidden layer). It minimises the logistic reconstruction loss of the **uncorrupted** row plus
    an L2 penalty written inside the loss (:math:`\lambda` = ``reg``),

    .. math:: \mathcal L = \frac{1}{|U|}\sum_u \sum_{i} -\big[y_{ui}\log\hat y_{ui} + (1-y_{ui})\log(1-\hat y_{ui})\big]
              + \frac{\lambda}{2}\big(\lVert W\rVert^2 + \lVert W'\rVert^2 + \lVert V\rVert^2\big),

    on mini-batches of ``batch_size`` users with Adam (``weight_decay``: the optimiser's own L2 term). Unlike
    the paper, which samples a few zeros per user, every item counts in the loss: with a few thousand items
    that is cheap. Here the unobserved cells **are** targets (0): for implicit feedback "not interacted" is the
    signal to rank against, the opposite of AutoRec's masking. Scores are the logits :math:`W'^\top z_u + b'`
    from the clean row (no corruption at prediction time).

    Only items with at least ``min_item_count`` counted interactions are modelled (input and output);
    the others score ``-inf`` and are never recommended. ``item_embeddings_`` are the input weights
    :math:`W_i` of the modelled items (rows in the order of ``modelled_``), ``user_embeddings_`` the codes
    :math:`z_u`; ``net_`` is the trained network and ``X_`` the 0/1 rows it reads (users × modelled items).

    * **Early stopping** (see :class:`~recsys_course.models.torch_train.TorchRecommender`). With ``val_size``
      set (default: each user's last 10 training ratings, ``val_split="last"``; users with fewer than 11 keep
      everything), the slice is held out, the model trains on the rest and stops when NDCG@10 of the held-out
      ratings ≥ 4 (all held-out items if none is; unmodelled ones count as misses) has not improved for
      ``patience`` epochs; with ``refit=True`` it is retrained on all of train for the best number of epochs.
      With ``refit=False`` the validation run's network is kept, and it reads the rows it was trained on (the
      fit part: without the held-out ratings).
    * **Unknown ids.** Unknown items score ``-inf``; unknown users raise :class:`UnknownIdError` (the user
      node and the input row exist only for training users).
    * **Cost.** :math:`O(\mathrm{nnz}\,d + n_{\text{users}}\,n_{\text{items}}\,d)` per epoch (the output layer
      dominates).

    Defaults were tuned on a validation slice of the ranking-track train split (notebook 05).
    """

    def __init__(self, n_factors: int = 200, corruption: float = 0.5, user_node: bool = True,
                 activation: str = "tanh", reg: float = 1e-5, lr: float = 0.003, weight_decay: float = 0.0,
                 n_epochs: int = 60, batch_size: int = 64, patience: int | None = 3,
                 val_size: int | float | None = 10, val_split: str = "last", refit: bool = True,
                 min_item_count: int = 3, min_rating: float | None = None, device=None, seed: int = 0,
                 verbose: bool = True):
        self.n_factors = n_factors
        self.corruption = corruption
        self.user_node = user_node
        self.activation = activation
        self.reg = reg
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.min_item_count = min_item_count
        self.min_rating = min_rating
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_own_params(self) -> None:
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "corruption", self.corruption, below=1.0)
        check_bool(self, "user_node", self.user_node)
        _check_activation(self)

    def _network(self, n_modelled: int, generator):
        from ..networks.autoencoders import DAENet

        return DAENet(self.n_users, n_modelled, self.n_factors, self.activation, self.user_node,
                      float(self.corruption), generator)

    def _loss(self, rows, state: dict):
        import torch

        reg = float(self.reg)

        def loss(m, users):
            cols, vals, offsets, owner = rows.batch(users)
            logits = m(cols, vals, offsets, users)  # (B, n_modelled)
            target = torch.zeros_like(logits)
            target[owner, cols] = 1.0
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
            penalty = (m.W ** 2).sum() + (m.W_out ** 2).sum() + ((m.V ** 2).sum() if m.V is not None else 0.0)
            return bce.mean() + 0.5 * reg * penalty

        return loss

    def _forward_scores(self, net, rows, batch_rows, user_ids=None):
        import torch

        cols, vals, offsets, _ = rows.batch(batch_rows)
        uid = batch_rows if user_ids is None else torch.as_tensor(user_ids)
        return net(cols, vals, offsets, uid)

    def _store_embeddings(self, net) -> None:
        import torch

        from ..networks.layers import SparseRows

        self.item_embeddings_ = net.W.detach().cpu().numpy().astype(np.float64)
        with torch.no_grad():
            rows = SparseRows(self.X_, "cpu")
            cols, vals, offsets, _ = rows.batch(torch.arange(self.n_users))
            self.user_embeddings_ = net.encode(cols, vals, offsets, torch.arange(self.n_users)).numpy().astype(
                np.float64)


class MultVAE(_UserRowAutoencoder):
    r"""Mult-VAE (Liang, Krishnan, Hoffman & Jebara 2018): a variational autoencoder with a multinomial
    likelihood over each user's binarised row :math:`x_u` (1 for every rated item; with ``min_rating`` only
    ratings :math:`\ge` it count).

    **Model** (:class:`~recsys_course.networks.autoencoders.MultVAENet`). Encoder (hidden widths ``hidden =
    (d_1, ..., d_L)``, latent size :math:`k` = ``n_factors``, tanh between layers): the normalised row
    :math:`x_u / \lVert x_u\rVert`, with input dropout (rate ``dropout``) during training, is mapped to
    :math:`\mu_u, \log\sigma_u^2 \in \mathbb R^k`; :math:`z_u = \mu_u + \sigma_u \odot \varepsilon`,
    :math:`\varepsilon \sim \mathcal N(0, I)` (the reparameterisation trick); the decoder mirrors the encoder
    and gives logits :math:`f(z_u)` over the items, :math:`\pi_u = \mathrm{softmax}(f(z_u))`. Liang et al.'s
    architecture is ``hidden=(600,), n_factors=200``; ``hidden=()`` maps the row to the latent statistics
    with a single layer.

    **Loss** (the negative, annealed ELBO) per mini-batch :math:`\mathcal B` of ``batch_size`` users, at
    gradient step :math:`t`:

    .. math:: \mathcal L_t = \frac{1}{|\mathcal B|}\sum_{u \in \mathcal B}\Big[-\sum_i x_{ui}\log \pi_{ui}
              + \beta_t\, \mathrm{KL}\big(\mathcal N(\mu_u, \sigma_u^2)\,\Vert\,\mathcal N(0, I)\big)\Big]
              + \frac{\lambda}{2}\sum_{\text{weights}} \lVert W\rVert^2

    (:func:`multinomial_nll`, :func:`gaussian_kl`), minimised by Adam; :math:`\lambda` = ``reg`` is a penalty
    inside the loss on the weight matrices, not the biases (``weight_decay``: the optimiser's own L2 term on
    every parameter).

    **KL annealing** (:func:`kl_beta`). :math:`t` counts the gradient steps (mini-batches) taken since the
    start of the run, from :math:`t = 0` for the first mini-batch, across epochs:

    .. math:: \beta_t = \beta_{\max}\cdot\min\!\big(1,\ t / T\big), \qquad T = \texttt{anneal\_steps},

    so β rises linearly from 0 at the first step to ``beta_max`` at step :math:`T` and stays there
    (``anneal_steps=0``: :math:`\beta_t = \beta_{\max}` throughout). Liang et al.'s code increases β by
    :math:`1/T` per step and caps it at :math:`\beta_{\max}`, reaching the cap after :math:`\beta_{\max}T`
    steps; here the cap is reached after :math:`T` steps whatever :math:`\beta_{\max}`. The refit run (see
    :class:`DAE`) repeats the same schedule (the users and so the steps per epoch are the same), so it ends at
    the β of the chosen epoch. ``anneal_log_`` holds ``step, beta, nll, kl`` (batch means) of every step of
    the final run.

    **Scores**: the logits :math:`f(\mu_u)` of the clean row (no dropout, no sampling); only their order
    matters. Only items with at least ``min_item_count`` counted interactions are modelled; the others score
    ``-inf``. ``item_embeddings_`` = the rows of the first-layer weight matrix (one per modelled item, in the
    order of ``modelled_``), ``user_embeddings_`` = :math:`\mu_u`.

    * **Early stopping / refit / unknown ids / cost** as :class:`DAE` (validation NDCG@10 of the held-out
      ratings ≥ 4, by default each user's last ``val_size=10`` training ratings; ``val_split="random"`` holds
      out random ratings instead, which mirrors a random test split; unknown items ``-inf``, unknown users
      raise :class:`UnknownIdError`; the output softmax over the items dominates the cost).

    Defaults were tuned on a validation slice of the ranking-track train split (notebook 05).
    """

    def __init__(self, hidden: tuple = (200,), n_factors: int = 64, dropout: float = 0.5, beta_max: float = 0.2,
                 anneal_steps: int = 100, reg: float = 0.0, lr: float = 0.003, weight_decay: float = 0.0,
                 n_epochs: int = 100, batch_size: int = 64, patience: int | None = 5,
                 val_size: int | float | None = 10, val_split: str = "last", refit: bool = True,
                 min_item_count: int = 3, min_rating: float | None = None, device=None, seed: int = 0,
                 verbose: bool = True):
        self.hidden = hidden
        self.n_factors = n_factors
        self.dropout = dropout
        self.beta_max = beta_max
        self.anneal_steps = anneal_steps
        self.reg = reg
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.min_item_count = min_item_count
        self.min_rating = min_rating
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_own_params(self) -> None:
        check_sizes(self, "hidden", self.hidden, allow_empty=True)
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "dropout", self.dropout, below=1.0)
        check_number(self, "beta_max", self.beta_max)
        check_int(self, "anneal_steps", self.anneal_steps, low=0)

    def _network(self, n_modelled: int, generator):
        from ..networks.autoencoders import MultVAENet

        return MultVAENet(n_modelled, tuple(self.hidden), self.n_factors, float(self.dropout), generator)

    def _loss(self, rows, state: dict):
        import torch

        reg, beta_max, anneal = float(self.reg), float(self.beta_max), int(self.anneal_steps)
        log = state["log"] = {"step": [], "beta": [], "nll": [], "kl": []}

        def loss(m, users):
            step = len(log["step"])  # gradient steps taken so far in this run
            beta = kl_beta(step, beta_max, anneal)
            cols, vals, offsets, owner = rows.batch(users)
            logits, mu, logvar = m(cols, vals, offsets, owner)  # (B, n_modelled), (B, k), (B, k)
            x = torch.zeros_like(logits)
            x[owner, cols] = vals
            nll = multinomial_nll(logits, x).mean()
            kl = gaussian_kl(mu, logvar).mean()
            total = nll + beta * kl
            if reg:
                total = total + 0.5 * reg * sum((p ** 2).sum() for n, p in m.named_parameters()
                                                if n == "W_in" or n.endswith("weight"))
            log["step"].append(step)
            log["beta"].append(beta)
            log["nll"].append(float(nll.detach()))
            log["kl"].append(float(kl.detach()))
            return total

        return loss

    def _forward_scores(self, net, rows, batch_rows, user_ids=None):
        return net(*rows.batch(batch_rows))[0]

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        super()._store(setup, frame)
        self.anneal_log_ = pd.DataFrame(setup.state["log"])  # the final run's steps

    def _store_embeddings(self, net) -> None:
        import torch

        from ..networks.layers import SparseRows

        self.item_embeddings_ = net.W_in.detach().cpu().numpy().astype(np.float64)
        with torch.no_grad():
            rows = SparseRows(self.X_, "cpu")
            self.user_embeddings_ = net.encode(*rows.batch(torch.arange(self.n_users)))[0].numpy().astype(
                np.float64)
