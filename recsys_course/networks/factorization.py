r"""The factorisation networks of notebook 04: biased matrix factorisation and BPR's scorer.

Both are tables of learned vectors and a dot product. :class:`~recsys_course.models.BiasedMF` trains
:class:`MFNet` on squared error, :class:`~recsys_course.models.BPR` trains :class:`BPRNet` on the pairwise
BPR loss; the losses live in the models, the networks only score.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import normal

__all__ = ["MFNet", "BPRNet"]


class MFNet(nn.Module):
    r"""Biased matrix factorisation, :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`.

    Parameters
    ----------
    n_users, n_items, n_factors : int
        Rows of :math:`P` (users × factors) and :math:`Q` (items × factors).
    mu : float
        The global mean :math:`\mu`, a fixed buffer.
    user_bias, item_bias : array-like
        Starting values of :math:`b_u` (length ``n_users``) and :math:`b_i` (length ``n_items``).
    init_std : float
        :math:`P` and :math:`Q` start at :math:`\mathcal N(0, \text{init\_std}^2)`, drawn from ``generator``
        (``P`` first, then ``Q``).
    train_biases : bool
        Whether the biases are trainable (``requires_grad``) or stay at their starting values.
    generator : torch.Generator
        The seeded source of the initial factors.
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int, mu: float, user_bias, item_bias,
                 init_std: float, train_biases: bool, generator: torch.Generator):
        super().__init__()
        self.P = nn.Parameter(normal((n_users, n_factors), init_std, generator))   # (n_users, k)
        self.Q = nn.Parameter(normal((n_items, n_factors), init_std, generator))   # (n_items, k)
        self.bu = nn.Parameter(torch.as_tensor(user_bias, dtype=torch.float32).clone(),
                               requires_grad=train_biases)                          # (n_users,)
        self.bi = nn.Parameter(torch.as_tensor(item_bias, dtype=torch.float32).clone(),
                               requires_grad=train_biases)                          # (n_items,)
        self.register_buffer("mu", torch.tensor(float(mu)))                        # ()

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Predicted ratings of the pairs ``(u[b], i[b])`` (positions), shape ``(B,)``."""
        return self.mu + self.bu[u] + self.bi[i] + (self.P[u] * self.Q[i]).sum(1)  # (B,)

    def score_all(self, u: torch.Tensor) -> torch.Tensor:
        """Every item's predicted rating for the users ``u``, shape ``(B, n_items)``."""
        return self.mu + self.bu[u][:, None] + self.bi[None, :] + self.P[u] @ self.Q.T  # (B, n_items)


class BPRNet(nn.Module):
    r"""BPR's scorer, :math:`x_{ui} = p_u^\top q_i + b_i`.

    Parameters
    ----------
    n_users, n_items, n_factors : int
        Rows of :math:`P` (users × factors) and :math:`Q` (items × factors).
    init_std : float
        :math:`P` and :math:`Q` start at :math:`\mathcal N(0, \text{init\_std}^2)`, drawn from ``generator``
        (``P`` first, then ``Q``); the item biases :math:`b` start at 0.
    generator : torch.Generator
        The seeded source of the initial factors.
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int, init_std: float, generator: torch.Generator):
        super().__init__()
        self.P = nn.Parameter(normal((n_users, n_factors), init_std, generator))   # (n_users, k)
        self.Q = nn.Parameter(normal((n_items, n_factors), init_std, generator))   # (n_items, k)
        self.b = nn.Parameter(torch.zeros(n_items))                                 # (n_items,)

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Scores of the pairs ``(u[b], i[b])`` (positions), shape ``(B,)``."""
        return (self.P[u] * self.Q[i]).sum(-1) + self.b[i]                          # (B,)

    def score_all(self, u: torch.Tensor) -> torch.Tensor:
        """Every item's score for the users ``u``, shape ``(B, n_items)``."""
        return self.P[u] @ self.Q.T + self.b[None, :]                               # (B, n_items)
