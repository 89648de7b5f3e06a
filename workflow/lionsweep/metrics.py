"""Binary-classification metrics for K models at once, from logits [n, K].

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
    # A model with any non-finite logit has no meaningful metric.
    bad = ~torch.isfinite(logits).all(dim=0)
    if bool(bad.any()):
        for v in out.values():
            v.masked_fill_(bad, math.nan)
    return out
