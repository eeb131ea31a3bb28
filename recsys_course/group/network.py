r"""The network of :class:`recsys_course.group.AttentionAggregator` (in the spirit of AGREE, Cao et al. 2018).

Importing this module imports torch; :mod:`recsys_course.group` imports it only when a model is fitted.
"""
from __future__ import annotations

import torch
from torch import nn

from ..networks.layers import normal, uniform

__all__ = ["GroupAttentionNet"]


class GroupAttentionNet(nn.Module):
    r"""Attention over a group's members, then a group vector that scores items.

    With fixed member vectors :math:`x_m` and item vectors :math:`y_i` (buffers) and a learned user embedding
    :math:`e_m`:

    .. math:: \ell_m = v^\top \tanh(W [x_m; e_m] + b), \qquad a_m = \frac{e^{\ell_m}}{\sum_{m' \in g} e^{\ell_{m'}}},
              \qquad g = \sum_{m \in g} a_m x_m, \qquad \mathrm{score}(g, i) = \tau\, g^\top y_i + c_i,

    with a learned temperature :math:`\tau = e^{\rho}` (the given vectors fix the scale of :math:`g^\top y_i`) and
    learned item biases :math:`c_i`. A member's logit :math:`\ell_m` depends on the member only, so it is a
    learned *influence*.

    Parameters
    ----------
    member_vectors : tensor (n_users, d)
    item_vectors : tensor (n_items, d)
    n_factors : int
        Size of :math:`e_m` and of the attention's hidden layer.
    generator : torch.Generator
        Seeds :math:`e` (:math:`\mathcal N(0, 0.1^2)`), :math:`W` and :math:`v` (``uniform``); :math:`b, \rho, c`
        start at 0.
    """

    def __init__(self, member_vectors: torch.Tensor, item_vectors: torch.Tensor, n_factors: int,
                 generator: torch.Generator):
        super().__init__()
        n_users, d = member_vectors.shape
        self.register_buffer("members", member_vectors.float().clone())              # (n_users, d)
        self.register_buffer("items", item_vectors.float().clone())                  # (n_items, d)
        self.user_emb = nn.Parameter(normal((n_users, n_factors), 0.1, generator))    # (n_users, k)
        self.W = nn.Parameter(uniform((n_factors, d + n_factors), d + n_factors, generator))
        self.b = nn.Parameter(torch.zeros(n_factors))
        self.v = nn.Parameter(uniform((n_factors,), n_factors, generator))
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.item_bias = nn.Parameter(torch.zeros(len(item_vectors)))

    def logits(self, users: torch.Tensor) -> torch.Tensor:
        """The attention logit :math:`\\ell_m` of each user position (any shape)."""
        z = torch.cat([self.members[users], self.user_emb[users]], -1)              # (..., d + k)
        return torch.tanh(z @ self.W.T + self.b) @ self.v                             # (...)

    def forward(self, users: torch.Tensor, user_mask: torch.Tensor, items: torch.Tensor,
                item_mask: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, C)`` of the candidates ``items`` (B, C) for the groups ``users`` (B, S); masked entries
        (padding) are ignored among the members and scored ``-inf`` among the candidates."""
        attention = torch.softmax(self.logits(users).masked_fill(~user_mask, float("-inf")), 1)   # (B, S)
        group = (attention[..., None] * self.members[users]).sum(1)                                 # (B, d)
        scores = self.log_scale.exp() * (self.items[items] * group[:, None, :]).sum(-1) + self.item_bias[items]
        return scores.masked_fill(~item_mask, float("-inf"))                                       # (B, C)
