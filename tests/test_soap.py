"""SOAP (issue 20) beyond the registry's reference test: why that test uses square
matrices, the gap to the reference's float32 QR, its batched state, and the engine
against nn.Sequential + the reference where the comparison is well posed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import train_alone, train_batched
from test_heads import SEED, SETTINGS, _splits, _task
from test_registry import TEST_HP

from lionsweep.optim import references
from lionsweep.optim import registry as optim
from lionsweep.optim.kernels_soap import Preconditioner
from lionsweep.optim.roles import HIDDEN, HIDDEN_BIAS, OTHER

HP = {h: v[0] for h, v in TEST_HP["soap"].items()} | {"lr": 1e-2, "precondition_frequency": 3}


def _reference_run(w: torch.Tensor, grads: list[torch.Tensor], exact_qr: bool = True):
    p = w.clone().requires_grad_(True)
    ref = references.soap([p], HP, exact_qr=exact_qr)
    for g in grads:
        p.grad = g.clone()
        ref.step()
    return p.detach()


def _grads(shape: tuple[int, ...], steps: int = 8, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(steps)]


@pytest.mark.parametrize(("shape", "well_posed"), [((6, 2), False), ((4, 4), True)])
def test_reference_itself_is_discontinuous_on_rank_deficient_gram(shape, well_posed):
    """The justification of the registry test's square shapes: the reference alone,
    given first gradients that differ in the last bit, ends O(lr) apart when G G^T
    is rank-deficient at the eigendecomposition (the tall matrix: rank 2 of 6; the
    null space's basis is rounding noise), and at the rounding level when it is not."""
    w, grads = torch.zeros(shape, dtype=torch.float64), _grads(shape)
    bumped = [grads[0] * (1 + 2.0**-52), *grads[1:]]
    gap = (_reference_run(w, grads) - _reference_run(w, bumped)).abs().max().item()
    assert (gap < 1e-13) if well_posed else (gap > 1e-4)


def test_float32_qr_of_the_reference_is_a_small_gap():
    """The unmodified reference runs its refresh's QR in float32: ours (float64) stays
    within float32 rounding of it, relative to the distance travelled."""
    w, grads = torch.randn(5, 5, dtype=torch.float64), _grads((5, 5), steps=12)
    ours = w[None].clone()
    states = optim.new_states("soap", [ours], [HIDDEN])
    hpt = {h: torch.tensor([v], dtype=torch.float64) for h, v in HP.items()}
    for step, g in enumerate(grads, 1):
        optim.batched_step("soap", [ours], [g[None].clone()], states, hpt, step, roles=[HIDDEN])
    exact, f32 = _reference_run(w, grads), _reference_run(w, grads, exact_qr=False)
    moved = (exact - w).abs().max()
    torch.testing.assert_close(ours[0], exact, rtol=0, atol=1e-12)
    assert 0 < (f32 - exact).abs().max() <= 1e-5 * moved


def test_state_is_per_model_matrices_and_orthogonal_bases():
    """[K, A, A] / [K, B, B] Gram matrices and orthonormal bases for the weight part of a
    folded-bias matrix and for an output-layer matrix (the reference preconditions every
    2-D parameter); none for vectors."""
    k = 3
    params = [torch.zeros(k, 4, 6), torch.zeros(k, 2, 4), torch.zeros(k, 2)]
    roles = [HIDDEN_BIAS, OTHER, OTHER]
    states = optim.new_states("soap", params, roles)
    pres = states[-1]
    assert [len(p) for p in pres] == [2, 1, 1] and pres[0][1] is None and pres[2][0] is None
    assert [tuple(m.shape) for m in pres[0][0].gg] == [(k, 4, 4), (k, 5, 5)]
    grads = [torch.randn_like(p) for p in params]
    hp = {h: torch.tensor([v] * k) for h, v in HP.items()}
    optim.batched_step("soap", params, grads, states, hp, 1, roles=roles)
    assert all(torch.equal(p, torch.zeros_like(p)) for p in params)  # step 1 only builds
    for pre in (pres[0][0], pres[1][0]):
        assert isinstance(pre, Preconditioner) and pre.q is not None
        for q in pre.q:
            eye = torch.eye(q.shape[-1]).expand_as(q)
            torch.testing.assert_close(q.transpose(-2, -1) @ q, eye, rtol=0, atol=1e-5)


def test_engine_equals_reference_where_well_posed():
    """Through the engine, float64, against nn.Sequential + pytorch_optimizer.SOAP: a
    multiclass head with d = hidden = C = 4 makes every Gram matrix square and full rank
    (the default test network's output layer, C < hidden, never is: see
    test_reference_itself_is_discontinuous_on_rank_deficient_gram)."""
    settings = dataclasses.replace(SETTINGS, hidden=4, dropout=0.0, dtype="float64")
    splits = _splits("multiclass", d=4)
    task = _task("multiclass", splits)
    hp = {h: np.array(v[:3]) for h, v in TEST_HP["soap"].items()}
    hp["lr"] = np.array([3e-3, 1e-2, 1e-3])
    # Softmax gradients sum to zero over classes, so along the output layer's direction
    # (1, ..., 1)/sqrt(C) the rotated gradient is rounding noise (~1e-17) that Adam
    # divides by sqrt(v) + eps: eps 1e-8 lifts that noise to ~1e-9, eps >= 1e-6 keeps it
    # under the tolerance.
    hp["eps"] = np.array([1e-6, 1e-6, 1e-3])
    res, model = train_batched(splits, "soap", hp, settings, SEED, task)
    assert not res["diverged"].any()
    for k in range(3):
        net = train_alone(splits, "soap", hp, k, settings, SEED, task)
        for name, ref in net.state_dict().items():
            torch.testing.assert_close(model.model_state(k)[name], ref, rtol=0, atol=1e-10)
