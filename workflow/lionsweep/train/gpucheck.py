"""`lionsweep gpu-check`: the CUDA training path, checked for device mismatches and host reads.

Every registry optimizer x every task head trains a few configurations (one of them
diverging) through :func:`lionsweep.train.engine.train_grid`: data to the device, chunks,
the training loop, best-epoch tracking, evaluation and result assembly.

``--simulate`` runs it under torch's ``FakeTensorMode`` on a simulated ``cuda:0``, with
any torch build and no GPU: tensors carry devices, shapes and dtypes but no values, an
op mixing ``cuda`` and ``cpu`` tensors fails, and every host read of a ``cuda`` tensor is
counted and answered with a placeholder (:class:`lionsweep.train.hostreads.HostReads`), so
the results are meaningless and the run goes on. The boundary: a chunk's results reach
the host in :func:`lionsweep.train.trainer.to_host` after its last epoch; those copies (and
the assembly's few index and label-count reads) are counted per chunk, not per step or
epoch. Without ``--simulate`` the same matrix runs on the real CUDA device.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from unittest import mock

import numpy as np

from lionsweep.errors import LionSweepError
from lionsweep.train.heads import TASKS

B = 8  # batch size: STEPS * B training rows = STEPS steps per epoch
STEPS = 2
# A read per step shows as EXTRA_STEPS more reads; few steps keep fake tensors (slow,
# Python-level dispatch) quick, and tests/test_hostreads.py counts 40 on real tensors.
EXTRA_STEPS = 4


@dataclass(frozen=True)
class Reads:
    """Host reads of one (optimizer, task) on one device."""

    chunks: int
    per_step: float
    per_epoch: float
    per_chunk: float  # setup and assembly, averaged over the base run's chunks


def splits_for(task: str, n: int, d: int = 5, seed: int = 0) -> tuple[dict, Any]:
    """Small synthetic splits for ``task`` (val/test drawn first: the same for any n)."""
    from lionsweep.train.heads import Task

    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, 3))

    def make(m: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(m, d)).astype(np.float32)
        z = x @ w
        if task == "multiclass":
            return x, z.argmax(1)
        return x, ((z[:, 0] > 0).astype(np.int64) if task == "binary" else 2.0 + z[:, 0])

    val, test = make(20), make(21)
    splits = {"train": make(n), "val": val, "test": test}
    if task == "multiclass":
        return splits, Task("multiclass", n_classes=3)
    if task == "regression":
        y = splits["train"][1]
        return splits, Task("regression", target_mean=float(y.mean()), target_std=float(y.std()))
    return splits, Task(task)


def hparams_for(optimizer: str, k: int = 3) -> dict[str, np.ndarray]:
    """Registry defaults with the lr spread; the last configuration overflows at once."""
    from lionsweep.optim import registry as optim

    spec = optim.spec(optimizer)
    hp = {h: np.full(k, p.default, dtype=np.float64) for h, p in spec.hparams.items()}
    hp["lr"] = np.geomspace(1e-3, 1e-2, k)
    hp["lr"][-1], hp["weight_decay"][-1] = 1e300, 0.1  # overflows float32 and float64
    return hp


def _expand(t: Any, index: Any) -> list:
    idx = list(index) if isinstance(index, tuple) else [index]
    at = [n for n, i in enumerate(idx) if i is Ellipsis]
    if at:
        real = sum(1 for i in idx if i is not None and i is not Ellipsis)
        idx[at[0] : at[0] + 1] = [slice(None)] * (t.dim() - real)
    return idx


def _index(t: Any, index: Any) -> tuple[Any, list]:
    """``t[index]``'s basic part (ints, slices, None) as ATen views, and the tensor
    indices left for ``aten.index`` / ``aten.index_put_`` (None where none)."""
    import torch

    aten = torch.ops.aten
    out, dim, tensors = t, 0, []
    for i in _expand(t, index):
        if i is None:
            out, dim = aten.unsqueeze.default(out, dim), dim + 1
            tensors.append(None)
        elif isinstance(i, int):
            out = aten.select.int(out, dim, i)
        elif isinstance(i, slice):
            out = aten.slice.Tensor(out, dim, i.start, i.stop, i.step or 1)
            dim += 1
            tensors.append(None)
        else:
            dim += 1
            tensors.append(torch.as_tensor(i, device=t.device))
    while tensors and tensors[-1] is None:
        tensors.pop()
    return out, tensors


class _Indexing:
    """Python indexing, ``copy_``, ``~``, ``nonzero`` and scalar conversions of fake CUDA
    tensors through ATen ops: in a
    CPU-only build these bindings' device guard fails for any CUDA tensor, fake or not
    (the ATen ops themselves need none), so ``t[i]``, ``t[i] = v``, ``t.copy_(s)``, ``~t`` and
    ``t.nonzero()`` are rewritten here into the same ATen ops."""

    def __new__(cls) -> Any:
        import torch
        from torch.overrides import TorchFunctionMode

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                get, put = torch.Tensor.__getitem__, torch.Tensor.__setitem__
                aten_op = {
                    torch.Tensor.copy_: torch.ops.aten.copy_.default,
                    torch.Tensor.__invert__: torch.ops.aten.bitwise_not.default,
                    torch.Tensor.nonzero: torch.ops.aten.nonzero.default,
                    torch.Tensor.contiguous: lambda t, *_, **__: (
                        t
                        if t.is_contiguous()
                        else torch.ops.aten.clone.default(t, memory_format=torch.contiguous_format)
                    ),
                }
                scalar = {
                    torch.Tensor.__bool__: bool,
                    torch.Tensor.__float__: float,
                    torch.Tensor.__int__: int,
                    torch.Tensor.__index__: int,
                    torch.Tensor.item: lambda v: v,
                }
                if func not in (get, put, *aten_op, *scalar) or args[0].device.type != "cuda":
                    return func(*args, **(kwargs or {}))
                if func in scalar:
                    return scalar[func](torch.ops.aten._local_scalar_dense.default(args[0]))
                if func in aten_op:
                    return aten_op[func](*args, **(kwargs or {}))
                out, tensors = _index(args[0], args[1])
                if func is get:
                    return torch.ops.aten.index.Tensor(out, tensors) if tensors else out
                value = args[2]
                if tensors:
                    value = torch.as_tensor(value, dtype=out.dtype, device=out.device)
                    torch.ops.aten.index_put_.default(out, tensors, value)
                elif isinstance(value, torch.Tensor):
                    torch.ops.aten.copy_.default(out, value)
                else:
                    torch.ops.aten.fill_.Scalar(out, value)
                return None

        return Mode()


@contextlib.contextmanager
def simulated_cuda(models_per_chunk: int, per_model: int) -> Iterator[None]:
    """FakeTensorMode, and a device whose free memory fits ``models_per_chunk`` models."""
    import torch
    from torch._prims_common import wrappers
    from torch._subclasses.fake_tensor import FakeTensorMode

    from lionsweep.train.engine import DEVICE_SHARE

    def safe_copy_out(*, copy_from: Any, copy_to: Any, exact_dtype: bool = False) -> Any:
        """torch's out= copy (device check kept) through the ATen op (see _Indexing)."""
        if not wrappers.is_cpu_scalar(copy_from):
            wrappers.check_copy_devices(copy_from=copy_from, copy_to=copy_to)
        return torch.ops.aten.copy_.default(copy_to, copy_from)

    free = int((models_per_chunk + 0.5) * per_model / DEVICE_SHARE)
    with (
        mock.patch.object(torch.cuda, "mem_get_info", lambda *_: (free, 8 * free)),
        mock.patch.object(wrappers, "_safe_copy_out", safe_copy_out),
        FakeTensorMode(),
        _Indexing(),
    ):
        yield


def loop_reads(
    optimizer: str, task: str, n: int, epochs: int, settings: Any, simulate: bool
) -> tuple[int, int, int]:
    """(chunks, reads outside assembly, reads in assembly) of one ``train_grid`` run."""
    from lionsweep.train import engine, trainer
    from lionsweep.train.heads import make_head
    from lionsweep.train.hostreads import HostReads

    splits, task_ = splits_for(task, n)
    settings = replace(settings, epochs=epochs)
    starts: list[int] = []
    ends: list[int] = []

    def assemble(*args: Any, **kwargs: Any) -> Any:
        starts.append(counter.count)
        return trainer.assemble(*args, **kwargs)

    def to_host(*args: Any, **kwargs: Any) -> Any:
        out = trainer.to_host(*args, **kwargs)
        ends.append(counter.count)
        return out

    devices = None if settings.device == "cpu" else {"cuda"}
    width = make_head(task_).width
    per_model = engine.bytes_per_model(
        n, splits["train"][0].shape[1], settings, optimizer, width=width
    )
    sim = simulated_cuda(2, per_model) if simulate else contextlib.nullcontext()
    patches = (
        mock.patch.object(engine, "assemble", assemble),
        mock.patch.object(engine, "to_host", to_host),
    )
    with sim, patches[0], patches[1], HostReads(devices=devices, answer=simulate) as counter:
        engine.train_grid(splits, optimizer, hparams_for(optimizer), 0, settings, False, task_)
    in_assembly = sum(end - start for start, end in zip(starts, ends, strict=True))
    return len(starts), counter.count - in_assembly, in_assembly


def measure(optimizer: str, task: str, settings: Any, simulate: bool) -> Reads:
    """Reads per step and per epoch from three runs: EXTRA_STEPS more steps at equal
    epochs, and one more epoch (STEPS steps), than a 2-epoch run of STEPS steps each."""
    chunks, base, assembly = loop_reads(optimizer, task, STEPS * B, 2, settings, simulate)
    longer = (STEPS + EXTRA_STEPS // 2) * B
    steps = loop_reads(optimizer, task, longer, 2, settings, simulate)[1]
    epoch = loop_reads(optimizer, task, STEPS * B, 3, settings, simulate)[1]
    per_step = (steps - base) / (EXTRA_STEPS * chunks)
    per_epoch = (epoch - base) / chunks - STEPS * per_step
    in_loop = 2 * STEPS * per_step * chunks
    return Reads(chunks, per_step, per_epoch, (base - in_loop + assembly) / chunks)


def check_all(
    device: str,
    simulate: bool,
    dtype: str = "float32",
    optimizers: list[str] | None = None,
    tasks: list[str] | None = None,
) -> tuple[list[str], Reads]:
    """Every optimizer x head (or those given): (one line per failure, the worst counts)."""
    from torch._subclasses.fake_tensor import FakeTensorDeviceMismatchError

    from lionsweep.optim import registry as optim
    from lionsweep.train.engine import TrainSettings

    settings = TrainSettings(hidden=8, dropout=0.25, batch_size=B, dtype=dtype, device=device)
    failures, found = [], []
    for optimizer in optimizers or optim.names():
        for task in tasks or TASKS:
            try:
                found.append(measure(optimizer, task, settings, simulate))
            except FakeTensorDeviceMismatchError as err:
                failures.append(f"{optimizer}/{task}: device mismatch: {str(err).splitlines()[0]}")
            except Exception as err:  # any other failure of the CUDA path: one line
                failures.append(f"{optimizer}/{task}: {type(err).__name__}: {err}".splitlines()[0])
    worst = Reads(
        sum(r.chunks for r in found),
        max((r.per_step for r in found), default=0.0),
        max((r.per_epoch for r in found), default=0.0),
        max((r.per_chunk for r in found), default=0.0),
    )
    return failures, worst


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="simulated CUDA tensors (FakeTensorMode): no GPU needed",
    )
    parser.add_argument(
        "--optimizers", nargs="+", metavar="NAME", help="only these optimizers (default: all)"
    )
    parser.add_argument(
        "--tasks", nargs="+", choices=TASKS, metavar="TASK", help="only these heads (default: all)"
    )


def run(args: argparse.Namespace) -> None:
    import torch

    if not args.simulate and not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA device here, nothing to check (--simulate runs the simulated tier)"
        )
        return
    failures, worst = check_all("cuda", args.simulate, optimizers=args.optimizers, tasks=args.tasks)
    mismatches = sum("device mismatch" in f for f in failures)
    where = "simulated cuda" if args.simulate else f"cuda ({torch.cuda.get_device_name()})"
    for line in failures:
        print(line)
    print(
        f"{where}: {worst.chunks} chunks, {mismatches} device mismatches, "
        f"{worst.per_step:g} host reads per step, {worst.per_epoch:g} per epoch "
        f"({worst.per_chunk:g} per chunk: setup, assembly, results to the host)"
    )
    if failures or worst.per_step > 0:
        raise LionSweepError(
            f"the CUDA path is not clean: {len(failures)} optimizer x task cases failed, "
            f"{worst.per_step:g} host reads per step"
        )
