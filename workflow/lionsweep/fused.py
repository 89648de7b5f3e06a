"""Fused optimizer updates: one memory pass per parameter where eager PyTorch takes many.

Why: with both GEMMs in oneDNN, the optimizer was the largest remaining cost of a
training step. Its eager kernels are memory-bound and walk the K stacked models'
parameters again for every small op: Lion 13 reads/writes of a parameter-sized
tensor per step, AdamW ~24. :file:`fused.c` does Lion in one pass (5 reads/writes)
and AdamW in two around PyTorch's own ``sqrt`` (eager's ``torch.sqrt`` is MKL's, not
the correctly rounded one, so it stays), 3x and ~1.8x less traffic.

The numbers do not change: each C expression mirrors one eager ATen kernel rounding
for rounding, and the library is used only after a probe on this machine found it
bit-identical to the eager kernels (:mod:`lionsweep.kernels`, which remain the
fallback: another device, dtype or layout, no C compiler, a failed probe, or
``LIONSWEEP_FUSED=0``). Resumed sweeps therefore mix fused and eager shards freely.

The C source has no PyTorch headers: it compiles in well under a second with the
system compiler (``$CC``, else ``cc``) for this CPU (``-march=native``) into a cache
keyed by source, flags, compiler and CPU (``$LIONSWEEP_CACHE``, else
``~/.cache/lionsweep``), written atomically so concurrent jobs share one build. It is
called through ctypes, which releases the GIL. Threads split the K models through
OpenMP, linked to the ``libgomp.so.1`` PyTorch has already loaded: a separate pool
(pthreads, the fallback build) competed with PyTorch's spinning OpenMP workers on a
2-core machine and made training 4-30% *slower* although the update alone was faster.
Measured inside the engine (5 epochs, 2 threads, alternating runs): Lion 1.03-1.14x,
AdamW 1.13-1.22x faster than eager on the three datasets.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("fused.c")
FLAGS = ("-O3", "-ffp-contract=off", "-fPIC", "-shared", "-pthread")
NATIVE = ("-march=native",)
OPENMP = ("-fopenmp",)  # shares PyTorch's libgomp.so.1 (loaded first, same soname)
_state: dict = {"eager": False, "loaded": False, "why": ""}
_LIB: list[ctypes.CDLL | None] = [None]


def cache_dir() -> Path:
    """Where built libraries live: ``$LIONSWEEP_CACHE``, else the user's cache folder."""
    if os.environ.get("LIONSWEEP_CACHE"):
        return Path(os.environ["LIONSWEEP_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lionsweep"


def _cpu_id() -> str:
    """What ``-march=native`` depends on: the machine and its CPU feature flags."""
    flags = ""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next((ln for ln in lines if ln.startswith(("flags", "Features"))), "")
    return f"{platform.machine()} {flags}"


def _compile(cc: str, flags: Sequence[str], target: Path) -> None:
    """Build :data:`SOURCE` into ``target`` atomically (a temp file, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        cmd = [cc, *flags, str(SOURCE), "-o", tmp, "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def build() -> Path:
    """The library for this machine, compiled on first use (raises on failure)."""
    cc = os.environ.get("CC", "cc")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    source, cpu = SOURCE.read_text(), _cpu_id()
    last: Exception | None = None
    # Without OpenMP or -march=native support: pthreads, portable code.
    for flags in (FLAGS + OPENMP + NATIVE, FLAGS + OPENMP, FLAGS + NATIVE, FLAGS):
        key = "\n".join([source, " ".join(flags), version.stdout, cpu])
        target = cache_dir() / f"fused-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
        if target.exists():
            return target
        try:
            _compile(cc, flags, target)
            return target
        except (OSError, subprocess.SubprocessError) as err:
            last = err
    raise OSError(f"{cc} could not build {SOURCE.name}: {last}")


@functools.cache
def library() -> ctypes.CDLL | None:
    """The checked library, or None (then :func:`reason` says why) once per process."""
    _state["loaded"] = True  # the probe below runs the kernels through _ready
    if os.environ.get("LIONSWEEP_FUSED", "1") == "0":
        _state["why"] = "LIONSWEEP_FUSED=0"
        return None
    try:
        lib = ctypes.CDLL(str(build()))
        for fn in (lib.lion_update, lib.adam_moments, lib.adam_apply):
            fn.restype = None
        _LIB[0] = lib
        why = "" if _probe() else "results differ from the eager kernels on this machine"
    except Exception as err:  # no compiler, a failed build or load: eager kernels
        why = f"{type(err).__name__}: {err}".splitlines()[0]
    if why:
        _LIB[0], _state["why"] = None, why
        print(f"lionsweep: fused optimizer kernels off ({why})", file=sys.stderr)
    return _LIB[0]


def reason() -> str:
    """Why the fused kernels are off ('' when they are on)."""
    library()
    return _state["why"]


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Use the eager kernels inside this block (tests, the probe)."""
    old, _state["eager"] = _state["eager"], True
    try:
        yield
    finally:
        _state["eager"] = old


def _per_model(t: Tensor | float | None, k: int) -> Tensor | None:
    """A [K] float32 view of a broadcast coefficient, or None if it is not one."""
    if not isinstance(t, Tensor) or t.numel() != k or t.dtype != torch.float32:
        return None
    flat = t.reshape(-1)
    return flat if flat.is_contiguous() and flat.device.type == "cpu" else None


def _usable(*tensors: Tensor) -> bool:
    return all(
        t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() for t in tensors
    )


def _call(name: str, k: int, tensors: Sequence[Tensor], coefs: Sequence[Tensor | None]) -> None:
    lib = _LIB[0]
    assert lib is not None
    ptrs = (ctypes.c_void_p * len(coefs))(*(None if c is None else c.data_ptr() for c in coefs))
    n = tensors[0].numel() // k
    args = [ctypes.c_void_p(t.data_ptr()) for t in tensors]
    getattr(lib, name)(torch.get_num_threads(), ctypes.c_long(k), ctypes.c_long(n), *args, ptrs)


def _ready(p: Tensor) -> bool:
    if _state["eager"] or p.numel() == 0:
        return False
    return (_LIB[0] if _state["loaded"] else library()) is not None


def lion(p: Tensor, g: Tensor, m: Tensor, coefs: tuple) -> bool:
    """One fused Lion step (see :func:`lionsweep.kernels.lion_update`); False: not done."""
    if not _usable(p, g, m) or not _ready(p):  # another device: never build the library
        return False
    k = p.shape[0]
    lr, beta1, omb2, decay = (_per_model(c, k) for c in coefs)
    if lr is None or beta1 is None or omb2 is None or (decay is None) != (coefs[3] is None):
        return False
    _call("lion_update", k, (p, g, m), (lr, beta1, omb2, decay))
    return True


def adam(p: Tensor, g: Tensor, m: Tensor, v: Tensor, c, step: int, buffer: Tensor | None) -> bool:
    """One fused Adam/AdamW step (see :func:`lionsweep.kernels.adam_update`)."""
    if not _usable(p, g, m, v) or c.f64 is None or not _ready(p):
        return False
    k = p.shape[0]
    beta1, beta2, eps = (_per_model(t, k) for t in (c.beta1, c.beta2, c.eps))
    decay, l2 = _per_model(c.decay, k), _per_model(c.weight_decay, k)
    if beta1 is None or beta2 is None or eps is None or _per_model(c.lr, k) is None:
        return False
    if (decay is None) != (c.decay is None) or (l2 is None) != (c.weight_decay is None):
        return False
    lrd, b1d, b2d = c.f64
    if lrd.numel() != k or b1d.numel() != k or b2d.numel() != k:
        return False
    _call("adam_moments", k, (p, g, m, v), (1.0 - beta1, beta2, 1.0 - beta2, decay, l2))
    root = torch.sqrt(v, out=buffer) if buffer is not None and _usable(buffer) else v.sqrt()
    bc2 = torch.sqrt(1 - b2d.reshape(-1) ** step).to(torch.float32)
    size = (lrd.reshape(-1) / (1 - b1d.reshape(-1) ** step)).to(torch.float32)
    _call("adam_apply", k, (p, m, root), (eps, bc2, size))
    return True


def _probe() -> bool:
    """True when the library reproduces the eager kernels bit for bit here."""
    from lionsweep import kernels

    gen = torch.Generator().manual_seed(0)
    k = 6
    hp = {
        "lr": torch.rand(k, generator=gen) * 0.1,
        "beta1": torch.tensor([0.9, 0.5, 0.2, 0.99, 0.0, 0.7]),
        "beta2": torch.tensor([0.99, 0.3, 0.999, 0.5, 0.9, 0.98]),
        "weight_decay": torch.tensor([0.0, 0.1, 1.0, 0.0, 2.0, 0.01]),
    }
    eps = torch.tensor([1e-8, 1e-3, 1e-8, 1e-6, 1e-8, 1e-8])
    for shape in ((k, 5, 21), (k, 3)):
        p, g, m = (torch.randn(shape, generator=gen) for _ in range(3))
        v = torch.rand(shape, generator=gen)
        runs = []
        for use_eager in (True, False):
            t = [x.clone() for x in (p, g, m, v)]
            with eager() if use_eager else contextlib.nullcontext():
                kernels.lion_update(t[0], t[1].clone(), t[2], kernels.lion_coefs(t[0], **hp))
                for decoupled in (True, False):
                    c = kernels.adam_coefs(t[0], **hp, eps=eps, decoupled=decoupled)
                    for step in (1, 3):
                        kernels.adam_update(t[0], t[1].clone(), t[2], t[3], c, step)
            runs.append(t)
        if not all(torch.equal(a, b) for a, b in zip(*runs, strict=True)):
            return False
    return True
