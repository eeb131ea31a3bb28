"""TransE's network (notebook 13): :class:`TransENet`, its distance and loss, trained by
:class:`recsys_course.models.graph.TransE`."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["TransENet", "transe_distance", "margin_ranking_loss"]


def transe_distance(head, relation, tail):
    r"""TransE's distance :math:`d(h, r, t) = \lVert e_h + r - e_t \rVert_2` of stacked vectors (torch tensors,
    last dimension the factors); the triple's score is :math:`-d`."""
    return (head + relation - tail).norm(dim=-1)


def margin_ranking_loss(positive, negative, margin: float):
    r"""Mean of :math:`[\gamma + d(h, r, t) - d(h, r, t')]_+` over the pairs of a true triple's distance
    (``positive``, shape (n,) or (n, 1)) and its corrupted triples' (``negative``, shape (n, m))."""
    positive = positive.reshape(len(positive), -1)
    return torch.clamp(margin + positive - negative, min=0).mean()


class TransENet(torch.nn.Module):
    r"""Entity and relation tables of TransE, initialised as in Bordes et al. (2013): uniform in
    :math:`\pm 6/\sqrt k`, then scaled to unit norm (entities are renormalised again during training)."""

    def __init__(self, n_entities: int, n_relations: int, n_factors: int, generator):
        super().__init__()
        bound = 6.0 / np.sqrt(n_factors)
        entities = (torch.rand(n_entities, n_factors, generator=generator) * 2 - 1) * bound
        relations = (torch.rand(n_relations, n_factors, generator=generator) * 2 - 1) * bound
        self.E = torch.nn.Parameter(entities / entities.norm(dim=1, keepdim=True))
        self.R = torch.nn.Parameter(relations / relations.norm(dim=1, keepdim=True))

    def distance(self, h, r, t):
        """:func:`transe_distance` of node positions ``h``, ``t`` and relation positions ``r``."""
        return transe_distance(self.E[h], self.R[r], self.E[t])

    def tail_scores(self, h, r: int, tails):
        """:math:`-d(h, r, t)` for every head of ``h`` (n,) against every tail of ``tails`` (m,): (n, m)."""
        return -torch.cdist(self.E[h] + self.R[r], self.E[tails])
