r"""The networks of notebook 05: I-AutoRec, a CDAE-like denoising autoencoder and Mult-VAE.

Each first layer reads its input vector through ``torch.nn.functional.embedding_bag`` over the non-zero entries
only (what :class:`~recsys_course.networks.layers.SparseRows` hands out: ``cols, vals, offsets, owner``), so
the cost of the encoder is proportional to the number of ratings, not to the size of the matrix. Every
parameter is drawn from the ``generator`` the model seeds (in the order of the constructors below), so a fit on
the CPU is repeatable bit for bit.

The models that train these networks live in :mod:`recsys_course.models.autoencoders`.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import activation, uniform

__all__ = ["AutoRecNet", "DAENet", "MultVAENet"]


class AutoRecNet(nn.Module):
    r"""Item-based AutoRec (Sedhain et al. 2015): one input and one output unit per user.

    .. math:: h_i = g(V^\top r_i + b) \in \mathbb R^{d}, \qquad \hat r_i = W h_i + c \in \mathbb R^{n_{\text{users}}}

    for an item's column :math:`r_i` of ratings (0 where a user has not rated it) and :math:`g` = ``act``.

    Parameters
    ----------
    n_users : int
        Width of the input and of the output (one unit per user).
    n_factors : int
        Size :math:`d` of the item code :math:`h_i`.
    act : str
        The activation :math:`g`, one of :data:`~recsys_course.networks.layers.ACTIVATIONS`.
    mu : float
        Initial value of every output bias :math:`c_u` (the best constant for the loss).
    generator : torch.Generator
        Draws ``V`` (:math:`U(\pm 1/\sqrt{n_{\text{users}}})`), then ``W`` (:math:`U(\pm 1/\sqrt d)`).
    """

    def __init__(self, n_users: int, n_factors: int, act: str, mu: float, generator: torch.Generator):
        super().__init__()
        self.act = act
        self.V = nn.Parameter(uniform((n_users, n_factors), n_users, generator))    # encoder, (n_users, d)
        self.b = nn.Parameter(torch.zeros(n_factors))                               # (d,)
        self.W = nn.Parameter(uniform((n_users, n_factors), n_factors, generator))  # decoder, (n_users, d)
        self.c = nn.Parameter(torch.full((n_users,), float(mu)))                    # (n_users,)

    def encode(self, cols, vals, offsets):
        """Codes ``(B, d)`` of a batch of item columns given as sparse entries (user ``cols``, rating ``vals``)."""
        pre = F.embedding_bag(cols, self.V, offsets, mode="sum", per_sample_weights=vals)  # (B, d)
        return activation(self.act)(pre + self.b)

    def decode(self, h):
        """Every user's reconstructed rating of each coded item: ``(B, n_users)``."""
        return h @ self.W.T + self.c

    def decode_pairs(self, h, owner, users):
        """Only the cells asked for: item ``owner[j]`` (a row of ``h``) for user ``users[j]``, shape ``(n,)``."""
        return (h[owner] * self.W[users]).sum(1) + self.c[users]

    def forward(self, cols, vals, offsets):
        """The full reconstruction ``(B, n_users)`` of a batch of item columns."""
        return self.decode(self.encode(cols, vals, offsets))


class DAENet(nn.Module):
    r"""A CDAE-like denoising autoencoder over users' 0/1 rows (Wu et al. 2016).

    .. math:: z_u = g\Big(\sum_i \tilde y_{ui} W_i + V_u + b\Big), \qquad \text{logits}_u = W' z_u + b'

    where :math:`\tilde y_u` is the row after input dropout (rate ``corruption``, training only) and
    :math:`V_u` the optional user node.

    Parameters
    ----------
    n_users, n_items : int
        Users (rows of the user node) and modelled items (input and output width).
    n_factors : int
        Size :math:`d` of the code :math:`z_u`.
    act : str
        The activation :math:`g`, one of :data:`~recsys_course.networks.layers.ACTIVATIONS`.
    user_node : bool
        Add a learned vector :math:`V_u` per user to the hidden layer.
    corruption : float
        Input-dropout rate :math:`q`: each 1 is dropped with probability :math:`q`, the survivors scaled by
        :math:`1/(1-q)`.
    generator : torch.Generator
        Draws ``W``, then ``V`` (with ``user_node``), then ``W_out``, each :math:`U(\pm 1/\sqrt{\text{fan\_in}})`.
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int, act: str, user_node: bool, corruption: float,
                 generator: torch.Generator):
        super().__init__()
        self.act = act
        self.corruption = float(corruption)
        self.W = nn.Parameter(uniform((n_items, n_factors), n_items, generator))        # encoder, (n_items, d)
        self.b = nn.Parameter(torch.zeros(n_factors))                                   # (d,)
        self.V = nn.Parameter(uniform((n_users, n_factors), n_items, generator)) if user_node else None  # (U, d)
        self.W_out = nn.Parameter(uniform((n_items, n_factors), n_factors, generator))  # decoder, (n_items, d)
        self.b_out = nn.Parameter(torch.zeros(n_items))                                 # (n_items,)

    def encode(self, cols, vals, offsets, user_ids):
        """Codes ``(B, d)`` of a batch of user rows (sparse entries) of users ``user_ids``."""
        q = self.corruption
        vals = F.dropout(vals, q, self.training) if q > 0 else vals  # corruption: training only
        pre = F.embedding_bag(cols, self.W, offsets, mode="sum", per_sample_weights=vals)  # (B, d)
        if self.V is not None:
            pre = pre + self.V[user_ids]
        return activation(self.act)(pre + self.b)

    def forward(self, cols, vals, offsets, user_ids):
        """Logits ``(B, n_items)`` of every modelled item for each user of the batch."""
        return self.encode(cols, vals, offsets, user_ids) @ self.W_out.T + self.b_out


class MultVAENet(nn.Module):
    r"""Mult-VAE (Liang et al. 2018): encoder :math:`x \to (\mu, \log\sigma^2)`, decoder :math:`z \to` logits.

    The input row is normalised, :math:`x / \lVert x\rVert`, and dropped out (rate ``dropout``, training only);
    the encoder is ``n_items → hidden[0] → … → hidden[-1] → 2·n_factors`` with tanh between layers (with no
    hidden layer the first layer gives :math:`(\mu, \log\sigma^2)` directly), and the decoder mirrors it,
    ``n_factors → hidden[-1] → … → hidden[0] → n_items``. In training
    :math:`z = \mu + \sigma\odot\varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)` (the
    reparameterisation trick); in eval mode :math:`z = \mu`.

    Parameters
    ----------
    n_items : int
        Modelled items (input and output width).
    hidden : tuple of int
        Widths of the encoder's hidden layers, in order (possibly empty).
    n_factors : int
        Size :math:`k` of the latent code :math:`z`.
    dropout : float
        Input-dropout rate on the normalised row.
    generator : torch.Generator
        Draws the first layer ``W_in``, then the encoder's layers, ``to_stats`` and the decoder's layers, each
        weight :math:`U(\pm 1/\sqrt{\text{fan\_in}})`, every bias 0.
    """

    def __init__(self, n_items: int, hidden: tuple, n_factors: int, dropout: float, generator: torch.Generator):
        super().__init__()
        hidden, latent = tuple(int(h) for h in hidden), int(n_factors)
        self.n_factors = latent
        self.dropout = float(dropout)
        first = hidden[0] if hidden else 2 * latent
        self.W_in = nn.Parameter(uniform((n_items, first), n_items, generator))  # first layer, (n_items, h_1)
        self.b_in = nn.Parameter(torch.zeros(first))
        enc, width = [], first
        for h in hidden[1:]:
            enc.append(_linear(width, h, generator))
            width = h
        self.enc = nn.ModuleList(enc)
        self.to_stats = _linear(width, 2 * latent, generator) if hidden else None
        dec, width = [], latent
        for h in reversed(hidden):
            dec.append(_linear(width, h, generator))
            width = h
        dec.append(_linear(width, n_items, generator))
        self.dec = nn.ModuleList(dec)

    def encode(self, cols, vals, offsets, owner):
        """:math:`(\\mu, \\log\\sigma^2)`, each ``(B, k)``, of a batch of user rows given as sparse entries."""
        k = self.n_factors
        norm = torch.zeros(len(offsets), device=vals.device).index_add_(0, owner, vals ** 2).sqrt()  # (B,)
        v = vals / norm.clamp_min(1e-12)[owner]  # x / ||x||
        v = F.dropout(v, self.dropout, self.training) if self.dropout > 0 else v
        h = F.embedding_bag(cols, self.W_in, offsets, mode="sum", per_sample_weights=v) + self.b_in  # (B, h_1)
        if self.to_stats is None:  # no hidden layer: the first layer gives the statistics directly
            return h[:, :k], h[:, k:]
        h = torch.tanh(h)
        for layer in self.enc:
            h = torch.tanh(layer(h))
        stats = self.to_stats(h)  # (B, 2k)
        return stats[:, :k], stats[:, k:]

    def decode(self, z):
        """Logits ``(B, n_items)`` of codes ``z`` ``(B, k)``."""
        h = z
        for layer in self.dec[:-1]:
            h = torch.tanh(layer(h))
        return self.dec[-1](h)

    def forward(self, cols, vals, offsets, owner):
        """``(logits (B, n_items), mu (B, k), logvar (B, k))`` of a batch of user rows."""
        mu, logvar = self.encode(cols, vals, offsets, owner)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu  # reparameterisation
        return self.decode(z), mu, logvar


def _linear(n_in: int, n_out: int, generator: torch.Generator) -> nn.Linear:
    """An ``nn.Linear`` with its weight drawn from ``generator`` (:math:`U(\\pm 1/\\sqrt{n_{in}})`), bias 0."""
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(uniform((n_out, n_in), n_in, generator))
        layer.bias.zero_()
    return layer
