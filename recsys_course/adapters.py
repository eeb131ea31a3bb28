r"""Parameter-efficient fine-tuning by hand: freezing, counting parameters, and low-rank adapters (notebook 08).

**Freezing.** :func:`freeze` sets ``requires_grad = False`` on every parameter of a module (optionally only
those whose name contains one of ``names``); an optimiser built over the *trainable* parameters
(:func:`trainable_parameters`) then never changes them. :func:`unfreeze` undoes it.

**LoRA** (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"). A pretrained linear layer
:math:`y = W x + b` (:math:`W \in \mathbb R^{d_{out} \times d_{in}}`, frozen) gets a trainable low-rank update

.. math:: y = W x + b + \frac{\alpha}{r}\, B A x, \qquad A \in \mathbb R^{r \times d_{in}},\;
          B \in \mathbb R^{d_{out} \times r},\; r \ll \min(d_{in}, d_{out}),

with :math:`A` drawn at random (here :math:`\mathcal N(0, 1/d_{in})`) and :math:`B = 0`, so at initialisation the
adapted layer computes exactly what the pretrained one did. Only :math:`A` and :math:`B` train:
:math:`r\,(d_{in} + d_{out})` parameters per adapted matrix instead of :math:`d_{in} d_{out}`
(:func:`lora_parameter_count`). The scale :math:`\alpha / r` keeps the size of the update roughly independent of
:math:`r`, so the learning rate need not be re-tuned when :math:`r` changes. After training the update can be
merged, :math:`W' = W + \frac{\alpha}{r} B A` (:meth:`LoRALinear.merged`): no extra cost at serving time.

:func:`add_lora` swaps the ``nn.Linear`` children with the given attribute names (e.g. ``("q", "v")``, the
query and value projections Hu et al. adapt) for :class:`LoRALinear` wrappers, anywhere in a module tree.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["LoRALinear", "add_lora", "freeze", "unfreeze", "trainable_parameters", "count_parameters",
           "lora_parameter_count", "lora_modules"]


def _check_rank_alpha(r, alpha) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"LoRA rank r must be a positive integer, got {r!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"LoRA alpha must be a positive number, got {alpha!r}")


class LoRALinear(nn.Module):
    r""":math:`y = W x + b + \frac{\alpha}{r} B A x` around a frozen ``nn.Linear`` (``base``).

    ``A`` (``r × d_in``) starts as :math:`\mathcal N(0, 1/d_{in})` (from ``generator`` if given), ``B``
    (``d_out × r``) as zeros, so the output equals ``base(x)`` until ``B`` has been trained. ``base``'s weight
    and bias are frozen here; ``A`` and ``B`` are the only trainable parameters: ``r * (d_in + d_out)``.
    """

    def __init__(self, base: nn.Linear, r: int = 4, alpha: float = 8.0, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        _check_rank_alpha(r, alpha)
        if r > min(base.in_features, base.out_features):
            raise ValueError(f"LoRA rank r={r} exceeds min(d_in, d_out) = {min(base.in_features, base.out_features)}:"
                             " the update would not be low-rank")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha = r, float(alpha)
        self.scaling = self.alpha / r
        w = base.weight
        a = torch.randn(r, base.in_features, generator=generator) / math.sqrt(base.in_features)
        self.A = nn.Parameter(a.to(device=w.device, dtype=w.dtype))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, device=w.device, dtype=w.dtype))

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        r""":math:`\frac{\alpha}{r} B A`, the ``(d_out, d_in)`` update the adapter adds to :math:`W`."""
        return self.scaling * (self.B @ self.A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * ((x @ self.A.T) @ self.B.T)

    def merged(self) -> nn.Linear:
        r"""A plain ``nn.Linear`` with :math:`W' = W + \frac{\alpha}{r}BA` (same bias): the adapter folded in."""
        out = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None)
        out = out.to(device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}"


def add_lora(module: nn.Module, r: int = 4, alpha: float = 8.0, targets: Iterable[str] = ("q", "v"),
             generator: torch.Generator | None = None) -> list[str]:
    r"""Replace every ``nn.Linear`` child whose attribute name is in ``targets`` by a :class:`LoRALinear`.

    Works anywhere in the module tree (``blocks.0.attn.q`` matches ``"q"``). Returns the dotted names of the
    adapted layers, in ``named_modules`` order. Raises ``ValueError`` if a target name matches nothing (a
    typo would otherwise silently train nothing) and ``TypeError`` if it names something that is not a linear
    layer. Does not freeze the rest of the module: call :func:`freeze` first.
    """
    _check_rank_alpha(r, alpha)
    if isinstance(targets, str):
        targets = (targets,)
    targets = tuple(targets)
    if not targets:
        raise ValueError("targets is empty: name at least one linear layer to adapt, e.g. ('q', 'v')")
    found: dict[str, list] = {t: [] for t in targets}
    for name, parent in list(module.named_modules()):
        for child_name, child in list(parent.named_children()):
            if child_name not in found or isinstance(parent, LoRALinear):
                continue
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, LoRALinear):
                raise ValueError(f"{full} already has a LoRA adapter")
            if not isinstance(child, nn.Linear):
                raise TypeError(f"LoRA target {child_name!r} matches {full}, a {type(child).__name__}, "
                                "not an nn.Linear")
            found[child_name].append(full)
    missing = [t for t, hits in found.items() if not hits]
    if missing:
        linears = sorted({n.rsplit(".", 1)[-1] for n, m in module.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"LoRA target(s) {missing} match no nn.Linear in {type(module).__name__}; its linear layers "
                         f"are called {linears}")
    adapted = []
    for name, parent in list(module.named_modules()):
        if isinstance(parent, LoRALinear):
            continue
        for child_name, child in list(parent.named_children()):
            if child_name in found and isinstance(child, nn.Linear):
                setattr(parent, child_name, LoRALinear(child, r, alpha, generator))
                adapted.append(f"{name}.{child_name}" if name else child_name)
    return adapted


def lora_modules(module: nn.Module) -> dict[str, LoRALinear]:
    """The :class:`LoRALinear` layers inside ``module``, by dotted name."""
    return {name: m for name, m in module.named_modules() if isinstance(m, LoRALinear)}


def _select(module: nn.Module, names):
    if names is None:
        return list(module.parameters())
    if isinstance(names, str):
        names = (names,)
    picked = [p for n, p in module.named_parameters() if any(s in n for s in names)]
    if not picked:
        raise ValueError(f"no parameter name of {type(module).__name__} contains any of {list(names)}")
    return picked


def freeze(module: nn.Module, names: Iterable[str] | None = None) -> nn.Module:
    """``requires_grad = False`` for every parameter (or those whose name contains one of ``names``); returns
    ``module``. A frozen parameter gets no gradient, so an optimiser over :func:`trainable_parameters` leaves it
    exactly as it is."""
    for p in _select(module, names):
        p.requires_grad_(False)
    return module


def unfreeze(module: nn.Module, names: Iterable[str] | None = None) -> nn.Module:
    """``requires_grad = True`` for every parameter (or those whose name contains one of ``names``)."""
    for p in _select(module, names):
        p.requires_grad_(True)
    return module


def trainable_parameters(module: nn.Module) -> list:
    """The parameters with ``requires_grad``: what an optimiser should be given."""
    return [p for p in module.parameters() if p.requires_grad]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (each shared tensor counted once); only trainable ones if ``trainable_only``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def lora_parameter_count(d_in: int, d_out: int, r: int, n_matrices: int = 1) -> int:
    r"""Trainable parameters of LoRA on ``n_matrices`` matrices of shape ``d_out × d_in``:
    :math:`n \cdot r\,(d_{in} + d_{out})` (A is ``r × d_in``, B is ``d_out × r``)."""
    for name, v in [("d_in", d_in), ("d_out", d_out), ("r", r), ("n_matrices", n_matrices)]:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return n_matrices * r * (d_in + d_out)
