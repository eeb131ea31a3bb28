"""recsys_course.adapters: LoRA by hand, freezing and parameter counts (tiny modules, runs in a second)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from recsys_course.adapters import (
    LoRALinear,
    add_lora,
    count_parameters,
    freeze,
    lora_modules,
    lora_parameter_count,
    trainable_parameters,
    unfreeze,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Tiny(nn.Module):
    def __init__(self, d=6):
        super().__init__()
        torch.manual_seed(0)
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, 4)
        self.inner = nn.ModuleDict({"q": nn.Linear(d, d), "act": nn.ReLU()})

    def forward(self, x):
        return self.v(torch.relu(self.inner["q"](self.q(x)) + self.k(x)))


def test_b_zero_leaves_the_output_unchanged_at_initialisation():
    net = Tiny()
    x = torch.randn(5, 6)
    before = net(x)
    adapted = add_lora(net, r=2, alpha=4.0, targets=("q", "v"), generator=torch.Generator().manual_seed(0))
    assert adapted == ["q", "v", "inner.q"]
    assert torch.equal(net(x), before)
    for m in lora_modules(net).values():
        assert torch.count_nonzero(m.B) == 0 and torch.count_nonzero(m.A) > 0


def test_forward_is_the_formula_and_merges():
    base = nn.Linear(3, 2)
    lora = LoRALinear(base, r=1, alpha=2.0)
    with torch.no_grad():
        lora.A.copy_(torch.tensor([[1.0, -1.0, 0.5]]))
        lora.B.copy_(torch.tensor([[2.0], [0.0]]))
    x = torch.randn(4, 3)
    want = x @ base.weight.T + base.bias + 2.0 * (x @ lora.A.T @ lora.B.T)
    assert torch.allclose(lora(x), want, atol=1e-6)
    assert torch.allclose(lora.merged()(x), want, atol=1e-6)


@pytest.mark.parametrize("r", [1, 2, 4])
def test_trainable_count_is_r_times_d_in_plus_d_out(r):
    net = Tiny()
    freeze(net)
    add_lora(net, r=r, targets=("q", "v"))
    # q: 6→6 (twice, top level and inner), v: 6→4
    want = lora_parameter_count(6, 6, r, 2) + lora_parameter_count(6, 4, r)
    assert count_parameters(net, trainable_only=True) == want == r * (12 + 12 + 10)
    assert count_parameters(net) == count_parameters(Tiny()) + want


def test_frozen_parameters_do_not_change_after_a_step():
    net = Tiny()
    freeze(net)
    add_lora(net, r=2, targets=("q",))
    frozen = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad}
    opt = torch.optim.Adam(trainable_parameters(net), lr=0.1)
    loss = net(torch.randn(8, 6)).pow(2).sum()
    loss.backward()
    opt.step()
    for n, p in net.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert any(torch.count_nonzero(m.B) for m in lora_modules(net).values())  # the adapters did move


def test_freeze_unfreeze_by_name():
    net = Tiny()
    freeze(net, ["k."])
    assert not net.k.weight.requires_grad and net.q.weight.requires_grad
    unfreeze(net)
    assert count_parameters(net, trainable_only=True) == count_parameters(net)


def test_bad_arguments():
    net = Tiny()
    with pytest.raises(ValueError, match="match no nn.Linear"):
        add_lora(net, targets=("query",))
    with pytest.raises(TypeError, match="not an nn.Linear"):
        add_lora(net, targets=("act",))
    with pytest.raises(ValueError, match="rank r"):
        add_lora(net, r=0)
    with pytest.raises(ValueError, match="alpha"):
        LoRALinear(nn.Linear(3, 3), alpha=-1)
    with pytest.raises(ValueError, match="low-rank"):
        LoRALinear(nn.Linear(3, 2), r=3)
    with pytest.raises(ValueError, match="empty"):
        add_lora(net, targets=())
    add_lora(net, targets=("k",))
    with pytest.raises(ValueError, match="already"):
        add_lora(net, targets=("k",))
    with pytest.raises(ValueError, match="positive integer"):
        lora_parameter_count(4, 4, 0)
