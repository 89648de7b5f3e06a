"""Task metrics for K models at once: binary (logits [n, K]), multiclass, regression.

All metrics are computed in float64 and agree with ``sklearn.metrics`` (tested):

- ``acc``, ``balanced_acc``, ``f1``: prediction is ``logit > 0`` (probability > 0.5;
  an exact 0.5 counts as class 0).
  ``balanced_acc`` averages the recall of the classes present in ``y`` (sklearn
  drops absent classes); ``f1`` is 0 when it is undefined (sklearn's
  ``zero_division`` default).
- ``logloss``: mean BCE computed stably from logits, each sample's loss clipped to
  ``[-log(1 - eps), -log(eps)]`` with ``eps = finfo(float64).eps``: the same clip
  ``sklearn.metrics.log_loss`` applies to float64 probabilities (sklearn's own
  ``1 - p`` loses digits once p is within ~1e-12 of 1; ours does not).
- ``auc``: Mann-Whitney statistic with average ranks for ties, identical to
  ``roc_auc_score`` (which also gives ties half credit); NaN if ``y`` has one class.

A model with any non-finite logit gets NaN for every metric.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

METRICS = ("acc", "balanced_acc", "f1", "logloss", "auc")
_EPS = float(torch.finfo(torch.float64).eps)
_LOSS_MIN = -math.log1p(-_EPS)
_LOSS_MAX = -math.log(_EPS)


def bce_per_sample(logits: Tensor, y: Tensor) -> Tensor:
    """Per-sample BCE-with-logits [K, n] in float64, clipped as sklearn clips probabilities.

    Model-major and contiguous, so each model's mean is a reduction over its own
    contiguous row: bitwise the same whatever K (a column reduction was not).
    """
    z = logits.t().to(torch.float64).contiguous()
    yf = y.to(torch.float64)[None, :].expand_as(z)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yf, reduction="none")
    return loss.clamp_(_LOSS_MIN, _LOSS_MAX)


def logloss(logits: Tensor, y: Tensor) -> Tensor:
    """[K] mean clipped log-loss."""
    return bce_per_sample(logits, y).mean(dim=1)


def accuracy(logits: Tensor, y: Tensor) -> Tensor:
    """[K] accuracy of ``logit > 0``."""
    return ((logits > 0) == (y[:, None] > 0)).to(torch.float64).mean(dim=0)


def auc(logits: Tensor, y: Tensor) -> Tensor:
    """[K] ROC AUC with ties averaged (== sklearn.metrics.roc_auc_score)."""
    pos = y > 0
    n_pos = int(pos.sum())
    n_neg = y.numel() - n_pos
    k = logits.shape[1]
    if n_pos == 0 or n_neg == 0:
        return torch.full((k,), math.nan, dtype=torch.float64, device=logits.device)
    s = logits.t().contiguous()  # [K, n]
    sorted_s, order = torch.sort(s, dim=1)
    # Average rank (1-based) of each sorted value over its tie group.
    lo = torch.searchsorted(sorted_s, sorted_s, side="left")
    hi = torch.searchsorted(sorted_s, sorted_s, side="right")
    ranks = (lo + hi + 1).to(torch.float64) * 0.5
    rank_sum = (ranks * pos[order].to(torch.float64)).sum(dim=1)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def binary_metrics(logits: Tensor, y: Tensor) -> dict[str, Tensor]:
    """All of :data:`METRICS` as [K] float64 tensors for logits [n, K] and labels [n]."""
    pred = logits > 0
    truth = (y > 0)[:, None]
    tp = (pred & truth).sum(dim=0).to(torch.float64)
    fp = (pred & ~truth).sum(dim=0).to(torch.float64)
    n_pos = float(truth.sum())
    n_neg = y.numel() - n_pos
    fn = n_pos - tp
    tn = n_neg - fp
    recalls = []
    if n_pos > 0:
        recalls.append(tp / n_pos)
    if n_neg > 0:
        recalls.append(tn / n_neg)
    balanced = sum(recalls) / len(recalls)
    denom = 2 * tp + fp + fn
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(denom))
    out = {
        "acc": (tp + tn) / y.numel(),
        "balanced_acc": balanced,
        "f1": f1,
        "logloss": logloss(logits, y),
        "auc": auc(logits, y),
    }
    # A model with any non-finite logit has no meaningful metric (a mask: no host read).
    bad = ~torch.isfinite(logits).all(dim=0)
    for v in out.values():
        v.masked_fill_(bad, math.nan)
    return out


def _nan_where_non_finite(out: dict[str, Tensor], outputs: Tensor) -> dict[str, Tensor]:
    """NaN for every metric of a model with any non-finite output ([K, C, n])."""
    bad = ~torch.isfinite(outputs).flatten(1).all(dim=1)
    for v in out.values():  # a mask, not ``if bad.any()``: no host read
        v.masked_fill_(bad, math.nan)
    return out


MULTICLASS_METRICS = ("acc", "balanced_acc", "f1_macro", "logloss", "auc_ovr")


def _mc_logloss(logp: Tensor, y: Tensor) -> Tensor:
    """[K] mean clipped cross-entropy from log-probabilities [K, C, n]."""
    nll = -logp.gather(1, y[None, None, :].expand(len(logp), 1, -1)).squeeze(1)
    return nll.clamp_(_LOSS_MIN, _LOSS_MAX).mean(dim=1)


def multiclass_curve(outputs: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """([K] logloss, [K] acc) as :func:`multiclass_metrics` computes them, without the
    other metrics and their host reads of class counts (the per-epoch curve)."""
    z = outputs.to(torch.float64)
    logp = torch.log_softmax(z, dim=1)
    return _mc_logloss(logp, y), (z.argmax(dim=1) == y).to(torch.float64).mean(dim=1)


def multiclass_metrics(outputs: Tensor, y: Tensor) -> dict[str, Tensor]:
    """:data:`MULTICLASS_METRICS` as [K] float64 for logits [K, C, n] and labels [n] in 0..C-1.

    As sklearn: ``balanced_acc`` averages the recall of the classes present in
    ``y``; ``f1_macro`` averages F1 over the classes present in ``y`` or predicted
    (``f1_score(average="macro", zero_division=0)``); ``logloss`` clips each
    sample as :func:`bce_per_sample`; ``auc_ovr`` is ``roc_auc_score(multi_class=
    "ovr")`` on softmax probabilities, averaged over the classes that have both
    positives and negatives in ``y`` (sklearn refuses absent classes; NaN if none).
    """
    c = outputs.shape[1]
    z = outputs.to(torch.float64)
    logp = torch.log_softmax(z, dim=1)  # [K, C, n]
    prob = torch.softmax(z, dim=1)
    pred = z.argmax(dim=1)  # [K, n]; ties go to the first class, as numpy's argmax
    truth = torch.nn.functional.one_hot(y, c).to(torch.float64)  # [n, C]
    hits = torch.nn.functional.one_hot(pred, c).to(torch.float64)  # [K, n, C]
    tp = torch.einsum("knc,nc->kc", hits, truth)
    n_true, n_pred = truth.sum(dim=0), hits.sum(dim=1)
    present = n_true > 0
    recall = tp[:, present] / n_true[present]
    listed = (n_true + n_pred) > 0  # classes sklearn's macro average counts
    f1 = torch.where(listed, 2 * tp / (n_true + n_pred).clamp(min=1), 0.0)
    aucs = [
        auc(prob[:, j].t(), (y == j).to(torch.int64))
        for j in range(c)
        if 0 < int(n_true[j]) < len(y)
    ]
    out = {
        "acc": (pred == y).to(torch.float64).mean(dim=1),
        "balanced_acc": recall.mean(dim=1),
        "f1_macro": f1.sum(dim=1) / listed.sum(dim=1),
        "logloss": _mc_logloss(logp, y),
        "auc_ovr": torch.stack(aucs).mean(dim=0)
        if aucs
        else torch.full((len(z),), math.nan, dtype=torch.float64, device=z.device),
    }
    return _nan_where_non_finite(out, outputs)


REGRESSION_METRICS = ("rmse", "mae", "r2")


def regression_metrics(pred: Tensor, y: Tensor) -> dict[str, Tensor]:
    """:data:`REGRESSION_METRICS` as [K] float64 for predictions [K, 1, n] and targets [n],
    both in the target's own units. ``r2`` is sklearn's ``r2_score`` (with a constant
    target: 1 for a perfect fit, else 0, as its ``force_finite``)."""
    p = pred[:, 0].to(torch.float64)
    t = y.to(torch.float64)
    err = p - t[None, :]
    ss_res = err.square().sum(dim=1)
    ss_tot = (t - t.mean()).square().sum()
    # torch.where, not ``if ss_tot > 0``: no host read (the per-epoch r2 curve)
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot, (ss_res == 0).to(torch.float64))
    out = {
        "rmse": err.square().mean(dim=1).sqrt(),
        "mae": err.abs().mean(dim=1),
        "r2": r2,
    }
    return _nan_where_non_finite(out, pred)
