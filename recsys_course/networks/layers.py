r"""Building blocks every network of the course shares: seeded initialisation, sparse rows, activations.

Every network is initialised from a ``torch.Generator`` the model seeds with its ``seed``, so a fit on the
CPU is repeatable bit for bit, whatever else used torch's global random state before.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

__all__ = ["uniform", "normal", "seeded_init", "activation", "ACTIVATIONS", "SparseRows"]

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")


def uniform(shape, fan_in: int, generator: torch.Generator) -> torch.Tensor:
    r"""``nn.Linear``'s default initialisation, seeded: :math:`U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})`."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return (torch.rand(*shape, generator=generator) * 2.0 - 1.0) * bound


def normal(shape, std: float, generator: torch.Generator) -> torch.Tensor:
    r"""Seeded :math:`\mathcal N(0, \text{std}^2)` entries (embedding tables)."""
    return torch.randn(*shape, generator=generator) * std


def seeded_init(module: nn.Module, generator: torch.Generator) -> None:
    r"""Initialise every parameter of ``module`` from ``generator``, by name and shape:

    * embeddings (a name containing ``emb``; :math:`d` = the last dimension, so a single learned vector such
      as BERT4Rec's ``mask_emb`` too): :math:`\mathcal N(0, 1/d)`, and the padding row 0 of ``item_emb`` set to 0;
    * LayerNorm (``ln``): weight 1, bias 0;
    * matrices: :math:`U(\pm 1/\sqrt{\text{fan\_in}})`; GRU biases :math:`U(\pm 1/\sqrt{d})`; other biases 0.
    """
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "emb" in name:
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p.shape[-1]))
            elif name.startswith("ln") or ".ln" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif p.dim() >= 2:
                bound = 1.0 / math.sqrt(p.shape[1])
                p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * bound)
            elif "gru" in name:
                bound = 1.0 / math.sqrt(p.shape[0] // 3)
                p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * bound)
            else:
                p.zero_()
        if hasattr(module, "item_emb"):
            module.item_emb.weight[0].zero_()


def activation(name: str):
    """The element-wise function called ``name``: one of :data:`ACTIVATIONS`."""
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda t: t}[name]


class SparseRows:
    """A CSR matrix kept as torch tensors on a device; ``batch(rows)`` returns what ``embedding_bag`` needs.

    For rows :math:`r_1..r_B` it returns ``cols`` (column of every stored entry, row by row), ``vals`` (their
    values), ``offsets`` (where each row starts in ``cols``) and ``owner`` (the batch position 0..B-1 of each
    entry). The cost of reading a batch is proportional to its number of stored entries, not to its width.
    """

    def __init__(self, matrix: sp.csr_matrix, device):
        m = sp.csr_matrix(matrix, dtype=np.float32)
        m.sort_indices()
        self.shape = m.shape
        self.indptr = torch.as_tensor(m.indptr.astype(np.int64), device=device)
        self.indices = torch.as_tensor(m.indices.astype(np.int64), device=device)
        self.data = torch.as_tensor(m.data, device=device)

    def batch(self, rows):
        rows = rows.to(self.indptr.device).long()
        starts = self.indptr[rows]
        counts = self.indptr[rows + 1] - starts
        offsets = torch.cumsum(counts, 0) - counts
        total = int(counts.sum())
        owner = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), counts)
        entries = starts[owner] + torch.arange(total, device=rows.device) - offsets[owner]
        return self.indices[entries], self.data[entries], offsets, owner

    def dense(self, rows):
        """The rows as a dense ``(B, n_cols)`` float tensor."""
        cols, vals, _, owner = self.batch(rows)
        out = torch.zeros(len(rows), self.shape[1], device=self.indptr.device)
        out[owner, cols] = vals
        return out
