r"""The networks of notebooks 06 and 08: NeuMF, the transformer pieces, SASRec, GRU4Rec and BERT4Rec.

Tokens: a sequence network reads windows of **tokens** ``(B, L)``, item position + 1, right-padded with 0;
BERT4Rec adds ``n_items + 1`` for ``[MASK]``. Its output ``h`` is ``(B, L, d)``, and the score of item :math:`i`
after position :math:`t` is :math:`h_t^\top e_i` with the input embedding :math:`e_i` (``item_emb.weight[i + 1]``):
input and output embeddings are tied. Every network is initialised from the ``generator`` it receives
(:func:`~recsys_course.networks.layers.seeded_init`), so a fit on the CPU is repeatable bit for bit. The models
that train them live in :mod:`recsys_course.models.sequential` and :mod:`recsys_course.models.masked`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import normal, seeded_init, uniform

__all__ = ["NeuMFNet", "SelfAttention", "Block", "SASRecNet", "GRU4RecNet", "BERT4RecNet"]


class NeuMFNet(nn.Module):
    r"""NeuMF (He et al. 2017): a generalised MF path and an MLP path over separate embeddings, fused.

    .. math:: \hat y_{ui} = \sigma\big(h^\top [\,p_u^G \odot q_i^G \,;\, \mathrm{MLP}([p_u^M; q_i^M])\,] + b\big)

    ``forward(u, i)`` returns the logit :math:`h^\top[\cdot] + b` of each pair. Embeddings start as
    :math:`\mathcal N(0, 0.01^2)`, the dense layers as :math:`U(\pm 1/\sqrt{\text{fan\_in}})` with zero biases.

    Parameters
    ----------
    n_users, n_items : int
    n_factors : int
        Size of the GMF embeddings :math:`p_u^G, q_i^G`.
    mlp_layers : tuple of int
        Widths of the MLP tower, its input included: ``mlp_layers[0] / 2`` is the size of each MLP embedding.
    dropout : float
        After every hidden MLP layer.
    generator : torch.Generator
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int, mlp_layers: tuple, dropout: float,
                 generator: torch.Generator):
        super().__init__()
        half = mlp_layers[0] // 2
        std = 0.01
        self.P_gmf = nn.Parameter(normal((n_users, n_factors), std, generator))
        self.Q_gmf = nn.Parameter(normal((n_items, n_factors), std, generator))
        self.P_mlp = nn.Parameter(normal((n_users, half), std, generator))
        self.Q_mlp = nn.Parameter(normal((n_items, half), std, generator))
        layers = []
        for d_in, d_out in zip(mlp_layers[:-1], mlp_layers[1:]):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout)]
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(n_factors + mlp_layers[-1], 1)
        with torch.no_grad():  # the dense layers from the generator too
            for lin in self._linears() + [self.out]:
                lin.weight.copy_(uniform(lin.weight.shape, lin.in_features, generator))
                lin.bias.zero_()

    def _linears(self) -> list:
        return [m for m in self.mlp if isinstance(m, nn.Linear)]

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Logits of the pairs ``(u[b], i[b])``: ``(B,)``."""
        gmf = self.P_gmf[u] * self.Q_gmf[i]                                    # (B, n_factors)
        mlp = self.mlp(torch.cat([self.P_mlp[u], self.Q_mlp[i]], -1))          # (B, mlp_layers[-1])
        return self.out(torch.cat([gmf, mlp], -1)).squeeze(-1)                 # (B,)

    def score_all(self, u: torch.Tensor, chunk_floats: int = 1 << 21) -> torch.Tensor:
        r"""Logits of users ``u`` for every item, ``(len(u), n_items)``.

        The first MLP layer is split as :math:`W[p; q] = W_p p + W_q q`, so it is computed once per user and
        once per item; the rest runs on chunks of about ``chunk_floats`` numbers.
        """
        n_items = self.Q_gmf.shape[0]
        w = self.out.weight[0]
        k = self.P_gmf.shape[1]
        gmf = (self.P_gmf[u] * w[:k]) @ self.Q_gmf.T                            # (U, I)
        linears = self._linears()
        if not linears:
            mlp_in = torch.cat([self.P_mlp[u][:, None, :].expand(-1, n_items, -1),
                                self.Q_mlp[None].expand(len(u), -1, -1)], -1)  # (U, I, mlp_layers[0])
            return gmf + mlp_in @ w[k:] + self.out.bias
        first = linears[0]
        half = self.P_mlp.shape[1]
        A = self.P_mlp[u] @ first.weight[:, :half].T                           # (U, h1)
        B = self.Q_mlp @ first.weight[:, half:].T + first.bias                  # (I, h1)
        rows = max(1, chunk_floats // (n_items * first.out_features))
        parts = []
        for s in range(0, len(u), rows):
            h = torch.relu(A[s:s + rows, None, :] + B[None])                   # (rows, I, h1)
            for m in list(self.mlp)[2:]:
                h = m(h)                                                       # (rows, I, mlp_layers[-1])
            parts.append(h @ w[k:])                                            # (rows, I)
        return gmf + torch.cat(parts, 0) + self.out.bias


class SelfAttention(nn.Module):
    r"""Multi-head self-attention :math:`\mathrm{softmax}\big(QK^\top/\sqrt{d_h} + M\big)V`, then a projection.

    ``causal=True`` (SASRec): position :math:`t` only sees positions :math:`s \le t`, :math:`M_{ts} = -\infty` for
    :math:`s > t`. ``causal=False`` (BERT4Rec): every position sees the whole window, and ``pad`` (``(B, L)``,
    True on padding) sets :math:`M_{ts} = -\infty` for padding keys :math:`s`. ``keep_attention = True`` stores
    the last attention weights ``(B, heads, L, L)`` in ``attention_``.
    """

    def __init__(self, d: int, n_heads: int, dropout: float, causal: bool = True):
        super().__init__()
        self.n_heads = n_heads
        self.causal = causal
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.proj = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)
        self.keep_attention = False

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, L, d)`` → ``(B, L, d)``."""
        B, L, d = x.shape
        h = self.n_heads

        def heads(t):
            return t.view(B, L, h, d // h).transpose(1, 2)                    # (B, h, L, d_h)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        att = q @ k.transpose(-2, -1) / math.sqrt(d // h)                     # (B, h, L, L)
        if self.causal:
            future = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)
            att = att.masked_fill(future, float("-inf"))
        if pad is not None:
            att = att.masked_fill(pad[:, None, None, :], float("-inf"))
        att = att.softmax(-1)
        if self.keep_attention:
            self.attention_ = att.detach()
        y = (self.drop(att) @ v).transpose(1, 2).reshape(B, L, d)             # (B, L, d)
        return self.proj(y)


class Block(nn.Module):
    r"""Pre-LayerNorm transformer block: :math:`H' = H + \mathrm{Attn}(\mathrm{LN}(H))`, then
    :math:`H'' = H' + \mathrm{FFN}(\mathrm{LN}(H'))` with the FFN :math:`d \to d \to d`.

    SASRec: causal attention, ReLU. BERT4Rec: ``causal=False``, ``activation="gelu"`` (as in BERT).
    """

    def __init__(self, d: int, n_heads: int, dropout: float, causal: bool = True, activation: str = "relu"):
        super().__init__()
        act = {"relu": nn.ReLU, "gelu": nn.GELU}[activation]
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = SelfAttention(d, n_heads, dropout, causal=causal)
        self.ffn = nn.Sequential(nn.Linear(d, d), act(), nn.Dropout(dropout), nn.Linear(d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, L, d)`` → ``(B, L, d)``; ``pad`` as in :class:`SelfAttention`."""
        x = x + self.drop(self.attn(self.ln1(x), pad))
        return x + self.drop(self.ffn(self.ln2(x)))


class SASRecNet(nn.Module):
    r"""SASRec: :math:`H^{(0)} = E_x + P` (item plus learned positional embedding), ``n_blocks`` causal
    :class:`Block` s and a final LayerNorm; :math:`h_t` depends on tokens :math:`1..t` only.

    ``forward(tokens)``: ``(B, L)`` tokens → ``(B, L, d)`` states, scored against ``item_emb``.
    """

    def __init__(self, n_items: int, d: int, max_len: int, n_blocks: int, n_heads: int, dropout: float,
                 generator: torch.Generator):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, d)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(d, n_heads, dropout) for _ in range(n_blocks)])
        self.ln = nn.LayerNorm(d)
        seeded_init(self, generator)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` ``(B, L)`` → states ``(B, L, d)``; row ``t`` depends on tokens ``0..t`` only."""
        L = tokens.shape[1]
        x = self.item_emb(tokens) + self.pos_emb(torch.arange(L, device=tokens.device))[None]   # (B, L, d)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)                                                        # (B, L, d)
        return self.ln(x)


class GRU4RecNet(nn.Module):
    r"""GRU4Rec-style: item embeddings → ``n_layers`` GRU layers (hidden size ``d``) → :math:`h_t`, scored against
    the same item embeddings. Dropout on the embeddings and on the GRU output.

    ``forward(tokens)``: ``(B, L)`` tokens → ``(B, L, d)`` states.
    """

    def __init__(self, n_items: int, d: int, n_layers: int, dropout: float, generator: torch.Generator):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(d, d, num_layers=n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)
        seeded_init(self, generator)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` ``(B, L)`` → GRU states ``(B, L, d)``."""
        out, _ = self.gru(self.drop(self.item_emb(tokens)))                    # (B, L, d)
        return self.drop(out)


class BERT4RecNet(nn.Module):
    r"""BERT4Rec: :math:`H^{(0)} = E_x + P` where ``[MASK]`` (token ``n_items + 1``) has its own vector
    ``mask_emb``, ``n_blocks`` bidirectional :class:`Block` s (GELU; padding keys hidden), a final LayerNorm and a
    linear ``head`` :math:`h \mapsto W_h h + b_h`, the identity at initialisation.

    ``encode(tokens)``: ``(B, L)`` → ``(B, L, d)`` before the head; ``forward(tokens)``: after it.
    """

    def __init__(self, n_items: int, d: int, max_len: int, n_blocks: int, n_heads: int, dropout: float,
                 generator: torch.Generator):
        super().__init__()
        self.n_items = n_items
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.mask_emb = nn.Parameter(torch.zeros(d))
        self.pos_emb = nn.Embedding(max_len, d)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(d, n_heads, dropout, causal=False, activation="gelu")
                                     for _ in range(n_blocks)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, d)
        seeded_init(self, generator)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(d))
            self.head.bias.zero_()

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` ``(B, L)`` (``[MASK]`` allowed) → states ``(B, L, d)`` before the head."""
        L = tokens.shape[1]
        is_mask = tokens > self.n_items                                         # (B, L)
        x = self.item_emb(tokens.masked_fill(is_mask, 0))                       # (B, L, d)
        x = torch.where(is_mask[..., None], self.mask_emb.expand_as(x), x)
        x = self.drop(x + self.pos_emb(torch.arange(L, device=tokens.device))[None])
        pad = tokens == 0
        for block in self.blocks:
            x = block(x, pad)                                                   # (B, L, d)
        return self.ln(x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` ``(B, L)`` → states after the head ``(B, L, d)``, scored against ``item_emb``."""
        return self.head(self.encode(tokens))                                  # (B, L, d)
