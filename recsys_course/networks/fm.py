"""The factorisation machine's network (notebook 13): :class:`FMNet`, trained by
:class:`recsys_course.models.fm.FM`."""
from __future__ import annotations

import torch
from torch import nn

from .layers import normal

__all__ = ["FMNet"]


class FMNet(nn.Module):
    r"""The factorisation machine on index rows: ``forward(idx)`` takes ``(B, fields)`` feature indices (one active
    feature per field, ``-1`` = none active: that field's :math:`x` is 0) and returns
    :math:`w_0 + \sum_j w_j + \tfrac12 \sum_f [(\sum_j v_{j,f})^2 - \sum_j v_{j,f}^2]` over each row's active
    features :math:`j`, shape ``(B,)``.

    Parameters
    ----------
    n_features, n_factors : int
        Rows of :math:`V` (features × :math:`k`) and of :math:`w`.
    mu : float
        The starting :math:`w_0` (the mean rating); :math:`w` starts at 0.
    init_std : float
        :math:`V \sim \mathcal N(0, \text{init\_std}^2)`, drawn from ``generator``.
    """

    def __init__(self, n_features: int, n_factors: int, mu: float, init_std: float, generator: torch.Generator):
        super().__init__()
        self.w0 = nn.Parameter(torch.tensor(float(mu)))                               # ()
        self.w = nn.Parameter(torch.zeros(n_features))                                 # (n,)
        self.V = nn.Parameter(normal((n_features, n_factors), init_std, generator))   # (n, k)

    def active(self, idx: torch.Tensor):
        """(x, weights, vectors) of each row's fields, ``(B, F)``, ``(B, F)``, ``(B, F, k)``; zero where -1."""
        x = (idx >= 0).to(self.V.dtype)
        j = idx.clamp(min=0)
        return x, self.w[j] * x, self.V[j] * x[..., None]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _, w, e = self.active(idx)
        s = e.sum(1)                                                                   # (B, k)
        return self.w0 + w.sum(1) + 0.5 * (s * s - (e * e).sum(1)).sum(1)             # (B,)
