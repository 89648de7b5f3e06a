"""Count the host reads of device tensors: the points where a GPU would stall.

A host read is any operation whose Python-visible result depends on a tensor's values:
``bool(t)``, ``.item()``, ``.tolist()``, ``.numpy()``, a device-to-host copy (``.cpu()``),
``torch.equal``, ``nonzero`` (its output shape depends on the data), boolean-mask
indexing. On a GPU each one waits until every queued kernel has finished.
:class:`HostReads` counts them at two levels: ATen ops
(a :class:`~torch.utils._python_dispatch.TorchDispatchMode`) and the Tensor methods that
copy to NumPy or Python without an ATen op (a :class:`~torch.overrides.TorchFunctionMode`).

With ``answer=True`` (the simulated-CUDA tier, under ``FakeTensorMode``, whose tensors
have no values) each read is answered with a placeholder (1/True, zeros, half the
indices) instead of failing, so that a run goes on to the end and every read is counted;
the numbers it returns are meaningless by construction.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
# ATen ops whose output is a host value or has a data-dependent shape.
READ_OPS = {
    aten._local_scalar_dense,
    aten.equal,
    aten.nonzero,
    aten.masked_select,
    aten._unique2,
    aten.unique_consecutive,
    aten.unique_dim,
}
# Tensor methods that hand values to Python/NumPy without an ATen read op on CPU.
READ_METHODS = {torch.Tensor.numpy, torch.Tensor.tolist}
NUMPY = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64}


MASK_INDEX_OPS = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}


def _bool_mask(func, args: tuple) -> Any:
    """The boolean mask of ``t[mask]`` / ``t[mask] = v`` (its positions are a read), or None."""
    if func.overloadpacket not in MASK_INDEX_OPS or len(args) < 2:
        return None
    masks = [i for i in args[1] if isinstance(i, torch.Tensor) and i.dtype == torch.bool]
    return masks[0] if masks else None


def _to_host(func, args: tuple, kwargs: dict) -> Any:
    """The device tensor a copy to the host reads, or None (not such a copy)."""
    if func.overloadpacket is aten._to_copy:
        dst = kwargs.get("device")
        if dst is not None and torch.device(dst).type == "cpu" and args[0].device.type != "cpu":
            return args[0]
    copy = func.overloadpacket is aten.copy_ and len(args) > 1
    if copy and args[0].device.type == "cpu" and args[1].device.type != "cpu":
        return args[1]
    return None


def _fake(t: Any) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor)


class _Dispatch(TorchDispatchMode):
    def __init__(self, owner: HostReads) -> None:
        super().__init__()
        self.owner = owner

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        mask = _bool_mask(func, args)
        if mask is not None:
            self.owner.record("bool_mask_index", mask)
            if self.owner.answer and _fake(mask):
                if func.overloadpacket is aten.index:  # the mask picks half its positions
                    at, src = [i is mask for i in args[1]].index(True), args[0]
                    shape = (*src.shape[:at], mask.numel() // 2, *src.shape[at + mask.dim() :])
                    return torch.zeros(shape, dtype=src.dtype, device=src.device)
                return args[0]
            return func(*args, **kwargs)
        if func.overloadpacket not in READ_OPS:
            src = _to_host(func, args, kwargs)
            if src is not None:  # a device-to-host copy (``.cpu()``)
                self.owner.record("to_host", src)
            return func(*args, **kwargs)
        src = args[0]
        self.owner.record(func.overloadpacket.__name__, src)
        if not (self.owner.answer and _fake(src)):
            return func(*args, **kwargs)
        if func.overloadpacket is aten._local_scalar_dense:
            return True if src.dtype == torch.bool else 1
        if func.overloadpacket is aten.equal:
            return True
        if func.overloadpacket is aten.nonzero:  # half of the positions: a valid index set
            return torch.zeros(src.numel() // 2, src.dim(), dtype=torch.long, device=src.device)
        return torch.zeros(src.numel() // 2, dtype=src.dtype, device=src.device)


class _Function(TorchFunctionMode):
    def __init__(self, owner: HostReads) -> None:
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in READ_METHODS or not args or not isinstance(args[0], torch.Tensor):
            return func(*args, **kwargs)
        src = args[0]
        self.owner.record(func.__name__, src)
        if self.owner.answer and _fake(src):
            zeros = np.zeros(tuple(src.shape), dtype=NUMPY.get(src.dtype, np.bool_))
            return zeros if func is torch.Tensor.numpy else zeros.tolist()
        return func(*args, **kwargs)


class HostReads:
    """Context manager counting host reads (``count``; ``ops``: by op name).

    ``devices``: count reads of tensors on these device types only (``{"cuda"}`` in the
    simulated tier: a read of a host tensor stalls no GPU); None counts every read (the
    CPU path, where the question is whether the loop would read a device tensor).
    """

    def __init__(self, devices: set[str] | None = None, answer: bool = False) -> None:
        self.devices, self.answer = devices, answer
        self.count = 0
        self.ops: Counter[str] = Counter()
        self._modes = (_Function(self), _Dispatch(self))

    def record(self, name: str, src: torch.Tensor) -> None:
        if self.devices is None or src.device.type in self.devices:
            self.count += 1
            self.ops[name] += 1

    def __enter__(self) -> HostReads:
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
