r"""The network of the text rating models of notebook 07 (:class:`~recsys_course.models.BERTBasedCF`,
:class:`~recsys_course.models.BERTOffsetCF`): heads over the text vectors of a BERT-family encoder.

With :math:`z_u` the text vector of user :math:`u`'s history text (``h`` dims), :math:`y_i` that of film
:math:`i`'s text, :math:`\mu, b_u, b_i` a fixed bias baseline and :math:`k` = ``n_factors``:

.. math:: p_u = W z_u + c \;(+\, u_0[u]), \qquad
          q_i = Q[i] \ \text{(an item table)} \quad\text{or}\quad q_i = B y_i + i_0[i] \ \text{(text + offset)},

.. math:: \hat r_{ui} = \mu + b_u + b_i + f(p_u, q_i), \qquad
          f(p, q) = \mathrm{MLP}([p; q; p \odot q]) \ (\texttt{head="mlp"}) \quad\text{or}\quad p^\top q
          \ (\texttt{head="dot"}).
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import uniform

__all__ = ["TextCFNet", "head_scores"]


def _seeded_linear(n_in: int, n_out: int, generator: torch.Generator) -> nn.Linear:
    """``nn.Linear(n_in, n_out)`` with its default initialisation :math:`U(\\pm 1/\\sqrt{n_{in}})`, drawn from
    ``generator`` (weight, then bias)."""
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(uniform((n_out, n_in), n_in, generator))
        layer.bias.copy_(uniform((n_out,), n_in, generator))
    return layer


class TextCFNet(nn.Module):
    r"""Rating of (user, film) pairs from text vectors: :math:`\hat r_{ui} = \mu + b_u + b_i + f(p_u, q_i)`.

    * User side, :math:`p_u = W z_u + c` (``user_proj``), plus a learned offset :math:`u_0[u]` (``u0``, from 0)
      with ``user_offsets=True``. :math:`z_u` is a precomputed text vector (``user_text``, a frozen encoder) or
      the mean-pooled output of fine-tuned transformer layers (``top_layers``) over the cached hidden states
      below them (``hidden_states`` with their ``attention_mask``).
    * Film side, either an item table :math:`q_i = Q[i]` (``Q``, :math:`\mathcal N(0, \text{init\_std}^2)`;
      without ``item_text``) or :math:`q_i = B y_i + i_0[i]` (``item_proj`` over the films' text vectors
      ``item_text``, plus an offset ``i0`` from 0).
    * Head: ``head="mlp"`` is :math:`f(p, q) = \mathrm{MLP}([p; q; p \odot q])`, Linear-ReLU per width of
      ``hidden`` then Linear to 1; ``head="dot"`` is :math:`p^\top q`.
    * :math:`\mu, b_u, b_i` are buffers (fixed: a :class:`~recsys_course.models.BiasBaseline`).

    The text inputs (``user_text``, ``hidden_states``, ``attention_mask``, ``item_text``) are plain attributes,
    not parameters or buffers: they stay out of ``state_dict`` (early stopping copies it every epoch) and must
    already live on the network's device.

    Initialisation, seeded: the item table from ``generator``; every dense layer (``user_proj``, ``item_proj``,
    the head, in this order; ``nn.Linear``'s default :math:`U(\pm 1/\sqrt{\text{fan\_in}})`) from a second
    stream that starts at ``generator``'s initial state — the draws the course's first version made from
    torch's global RNG seeded with the same seed, so the numbers are unchanged.
    """

    def __init__(self, n_users: int, n_items: int, text_dim: int, n_factors: int, *, mu: float, user_bias,
                 item_bias, generator: torch.Generator, user_text: torch.Tensor | None = None,
                 top_layers: nn.ModuleList | None = None, hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, item_text: torch.Tensor | None = None,
                 user_offsets: bool = False, head: str = "mlp", hidden: tuple = (64,), init_std: float = 0.01):
        super().__init__()
        k = n_factors
        dense = torch.Generator().set_state(generator.get_state())  # the dense layers' stream (see above)
        self.head_kind = head
        self.user_proj = _seeded_linear(text_dim, k, dense)                        # z_u (h,) -> p_u (k,)
        self.top = top_layers  # fine-tuned transformer layers (trainable), or None: a frozen encoder
        if item_text is None:
            self.Q = nn.Parameter(torch.randn(n_items, k, generator=generator) * init_std)      # (n_items, k)
        else:
            self.item_proj = _seeded_linear(item_text.shape[1], k, dense)          # y_i (h,) -> (k,)
            self.i0 = nn.Parameter(torch.zeros(n_items, k))                       # (n_items, k)
        if user_offsets:
            self.u0 = nn.Parameter(torch.zeros(n_users, k))                       # (n_users, k)
        if head == "mlp":
            widths = [3 * k, *hidden]
            layers = []
            for n_in, n_out in zip(widths[:-1], widths[1:]):
                layers += [_seeded_linear(n_in, n_out, dense), nn.ReLU()]
            self.head = nn.Sequential(*layers, _seeded_linear(widths[-1], 1, dense))
        self.register_buffer("mu", torch.tensor(float(mu)))
        self.register_buffer("bu", torch.as_tensor(user_bias, dtype=torch.float32))  # (n_users,)
        self.register_buffer("bi", torch.as_tensor(item_bias, dtype=torch.float32))  # (n_items,)
        self.z = user_text                                  # (n_users, h) or None
        self.hidden_in, self.mask = hidden_states, attention_mask  # (n_users, T, h), (n_users, T) or None
        self.y = item_text                                  # (n_items, h) or None

    def user_text(self, users: torch.Tensor) -> torch.Tensor:
        """:math:`z_u` of user positions ``users`` (B,): the precomputed vector, or the fine-tuned layers over
        the cached hidden states (each distinct user once). Returns (B, h)."""
        if self.top is None:
            return self.z[users]
        from ..text import mean_pool

        uniq, inv = torch.unique(users, return_inverse=True)
        h, mask = self.hidden_in[uniq], self.mask[uniq]                  # (U, T, h), (U, T)
        ext = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min  # (U, 1, 1, T) additive mask
        for layer in self.top:
            h = layer(h, attention_mask=ext)
            h = h[0] if isinstance(h, tuple) else h                      # (U, T, h)
        return mean_pool(h, mask)[inv]                                   # (B, h)

    def user_vec(self, users: torch.Tensor) -> torch.Tensor:
        """:math:`p_u` (B, k) of user positions (B,)."""
        p = self.user_proj(self.user_text(users))
        return p + self.u0[users] if hasattr(self, "u0") else p

    def item_vec(self, items: torch.Tensor) -> torch.Tensor:
        """:math:`q_i` (B, k) of item positions (B,)."""
        if hasattr(self, "Q"):
            return self.Q[items]
        return self.item_proj(self.y[items]) + self.i0[items]

    def interact(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """:math:`f(p, q)` of paired rows: (B, k), (B, k) -> (B,)."""
        if self.head_kind == "dot":
            return (p * q).sum(-1)
        return self.head(torch.cat([p, q, p * q], -1)).squeeze(-1)      # (B, 3k) -> (B,)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """:math:`\\hat r_{ui}` (B,) of paired user and item positions (B,), unclipped."""
        return self.mu + self.bu[users] + self.bi[items] + self.interact(self.user_vec(users), self.item_vec(items))


def head_scores(head: nn.Sequential, users: torch.Tensor, items: torch.Tensor, block: int = 16) -> torch.Tensor:
    r"""The MLP head :math:`f(p_u, q_i)` of every (user, item) pair, without building the (U·I, 3k) input.

    The first layer splits as :math:`W_1 [p; q; p \odot q] = W_p p + W_q q + W_{pq} (p \odot q)`: the first two
    parts are computed once per user and once per item; only :math:`p \odot q` is formed per pair, ``block``
    users at a time (memory: ``block × n_items × width``).

    Parameters
    ----------
    head : the ``nn.Sequential`` of :class:`TextCFNet` (Linear, ReLU, ..., Linear to 1).
    users : (U, k) user vectors :math:`p_u`.
    items : (I, k) item vectors :math:`q_i`.

    Returns
    -------
    (U, I) float tensor.
    """
    linears = [m for m in head if isinstance(m, nn.Linear)]
    first, middle, last = linears[0], linears[1:-1], linears[-1]
    k = users.shape[1]
    w_p, w_q, w_pq = first.weight[:, :k], first.weight[:, k:2 * k], first.weight[:, 2 * k:]
    out = torch.empty(len(users), len(items))
    with torch.no_grad():
        a = users @ w_p.T + first.bias                                   # (U, width)
        b = items @ w_q.T                                                # (I, width)
        w_pq_t, w_last = w_pq.T.contiguous(), last.weight[0]
        for s in range(0, len(users), block):
            n = len(users[s:s + block])
            pq = (users[s:s + block, None, :] * items[None]).reshape(-1, k)  # (n * I, k)
            h = (pq @ w_pq_t).view(n, len(items), -1)                    # (n, I, width), in place from here on
            h += b
            h += a[s:s + block, None, :]
            h.relu_()
            for layer in middle:
                h = torch.relu(layer(h))
            out[s:s + block] = h @ w_last + last.bias[0]                 # (n, I)
    return out
