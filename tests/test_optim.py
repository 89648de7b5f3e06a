"""The batched optimizers equal the reference ones, slice by slice (float64, 1e-12)."""

from __future__ import annotations

import pytest
import torch
from lion_pytorch import Lion as RefLion

from lionsweep.optim import AdamW, Lion, adamw_step, lion_step

K = 4
SHAPES = [(K, 3, 5), (K, 5), (K,)]
HP = {
    "lr": [1e-3, 3e-2, 1e-4, 5e-3],
    "beta1": [0.9, 0.8, 0.95, 0.5],
    "beta2": [0.99, 0.999, 0.9, 0.98],
    "weight_decay": [0.0, 0.1, 0.05, 1.0],
    "eps": [1e-8, 1e-6, 1e-3, 1e-8],
}


def _setup(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES] for _ in range(6)]
    return params, grads


def _hp(name: str) -> torch.Tensor:
    return torch.tensor(HP[name], dtype=torch.float64)


def _run_batched(opt_cls, params, grads, **hp):
    ps = [p.clone().requires_grad_(True) for p in params]
    opt = opt_cls(ps, **hp)
    for gs in grads:
        for p, g in zip(ps, gs, strict=True):
            p.grad = g.clone()
        opt.step()
    return [p.detach() for p in ps]


def _run_reference(ref_factory, params, grads, k):
    ps = [p[k].clone().requires_grad_(True) for p in params]
    opt = ref_factory(ps, k)
    for gs in grads:
        for p, g in zip(ps, gs, strict=True):
            p.grad = g[k].clone()
        opt.step()
    return [p.detach() for p in ps]


def test_lion_slices_match_lion_pytorch():
    params, grads = _setup()
    out = _run_batched(
        Lion,
        params,
        grads,
        lr=_hp("lr"),
        betas=(_hp("beta1"), _hp("beta2")),
        weight_decay=_hp("weight_decay"),
    )
    for k in range(K):
        ref = _run_reference(
            lambda ps, k: RefLion(
                ps,
                lr=HP["lr"][k],
                betas=(HP["beta1"][k], HP["beta2"][k]),
                weight_decay=HP["weight_decay"][k],
            ),
            params,
            grads,
            k,
        )
        for o, r, p0 in zip(out, ref, params, strict=True):
            torch.testing.assert_close(o[k], r, rtol=0, atol=1e-12)
            assert not torch.equal(o[k], p0[k])  # it did move


def test_adamw_slices_match_torch_adamw():
    params, grads = _setup(1)
    out = _run_batched(
        AdamW,
        params,
        grads,
        lr=_hp("lr"),
        betas=(_hp("beta1"), _hp("beta2")),
        eps=_hp("eps"),
        weight_decay=_hp("weight_decay"),
    )
    for k in range(K):
        ref = _run_reference(
            lambda ps, k: torch.optim.AdamW(
                ps,
                lr=HP["lr"][k],
                betas=(HP["beta1"][k], HP["beta2"][k]),
                eps=HP["eps"][k],
                weight_decay=HP["weight_decay"][k],
            ),
            params,
            grads,
            k,
        )
        for o, r in zip(out, ref, strict=True):
            torch.testing.assert_close(o[k], r, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["lion", "adamw"])
def test_scalar_hyperparameters_are_a_drop_in(name):
    """With Python scalars (and defaults) they behave as the reference on a real model."""
    torch.manual_seed(0)
    x, y = torch.randn(32, 4, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64)
    nets = []
    for _ in range(2):
        torch.manual_seed(1)
        nets.append(
            torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1))
        )
        nets[-1].double()
    if name == "lion":
        ours = [Lion(nets[0].parameters(), lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1)]
        refs = [RefLion(nets[1].parameters(), lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1)]
    else:
        ours = [AdamW(nets[0].parameters(), lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1)]
        refs = [
            torch.optim.AdamW(nets[1].parameters(), lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1)
        ]
    for net, opt in ((nets[0], ours[0]), (nets[1], refs[0])):
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_defaults_match_references():
    p = [torch.zeros(2, requires_grad=True)]
    lion, ref = Lion(p).defaults, RefLion(p).defaults
    assert (lion["lr"], lion["betas"], lion["weight_decay"]) == (
        ref["lr"],
        ref["betas"],
        ref["weight_decay"],
    )
    ours, torch_ref = AdamW(p).defaults, torch.optim.AdamW(p).defaults
    for key in ("lr", "betas", "eps", "weight_decay"):
        assert ours[key] == torch_ref[key]


def test_functional_core_on_noncontiguous_views_and_buffers():
    """The engine passes permuted views and scratch buffers; results must not change."""
    _, grads = _setup(2)
    base = torch.randn(3, K, 5, dtype=torch.float64)  # stored [D, K, H]
    view = base.permute(1, 0, 2)  # [K, D, H], non-contiguous
    dense = view.contiguous()
    m1, m2 = torch.zeros_like(dense), torch.zeros_like(dense)
    hp = {"lr": _hp("lr"), "beta1": _hp("beta1"), "beta2": _hp("beta2")}
    for gs in grads:
        g = gs[0]
        lion_step(
            [view],
            [g],
            [m1],
            **hp,
            weight_decay=_hp("weight_decay"),
            buffers=[torch.empty_like(dense)],
        )
        lion_step([dense], [g], [m2], **hp, weight_decay=_hp("weight_decay"))
    torch.testing.assert_close(view, dense, rtol=0, atol=0)
    v1, v2 = torch.zeros_like(dense), torch.zeros_like(dense)
    a, b = torch.zeros_like(dense), torch.zeros_like(dense)
    for step, gs in enumerate(grads, 1):
        g = gs[0]
        adamw_step(
            [view],
            [g],
            [a],
            [v1],
            step=step,
            **hp,
            eps=_hp("eps"),
            weight_decay=_hp("weight_decay"),
            buffers=[torch.empty_like(dense)],
        )
        adamw_step(
            [dense],
            [g],
            [b],
            [v2],
            step=step,
            **hp,
            eps=_hp("eps"),
            weight_decay=_hp("weight_decay"),
        )
    torch.testing.assert_close(view, dense, rtol=0, atol=0)
