"""Fused optimizer updates: one memory pass per parameter where eager PyTorch takes many.

Why: with both GEMMs in oneDNN, the optimizer was the largest remaining cost of a
training step. Its eager kernels are memory-bound and walk the K stacked models'
parameters again for every small op: Lion 13 reads/writes of a parameter-sized
tensor per step, AdamW ~24. :file:`fused.c` does Lion in one pass (5 reads/writes)
and AdamW in two around PyTorch's own ``sqrt`` (eager's ``torch.sqrt`` is MKL's, not
the correctly rounded one, so it stays), 3x and ~1.8x less traffic.

The numbers do not change: each C expression mirrors one eager ATen kernel rounding
for rounding, and the library is used only after a probe on this machine found it
bit-identical to the eager kernels (:mod:`lionsweep.optim.kernels`, which remain the
fallback: another device, dtype or layout, no C compiler, a failed probe, or
``LIONSWEEP_FUSED=0``, the one reason not printed). Resumed sweeps therefore mix fused
and eager shards freely.

The C source has no PyTorch headers: it compiles in well under a second with the
system compiler (``$CC``, else ``cc``) for this CPU (``-march=native``) into a cache
keyed by source, flags, compiler and CPU (``$LIONSWEEP_CACHE``, else
``~/.cache/lionsweep``), written atomically so concurrent jobs share one build. Loading
a library runs its constructors, so only one this user built is loaded: the folder and
files must be theirs alone and the library's sha256 the one recorded at build time
(else one line, and a rebuild). It is
called through ctypes, which releases the GIL. Threads split the K models through
OpenMP, linked to the ``libgomp.so.1`` PyTorch has already loaded: a separate pool
(pthreads, the fallback build) competed with PyTorch's spinning OpenMP workers on a
2-core machine and made training *slower* although the update alone was faster.
Measured speedups over eager, per host: docs/performance.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import re
import shutil
import stat
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


def _not_private(st: os.stat_result) -> str:
    """Why a file or folder is not this user's alone ('' when it is)."""
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by this user's uid {os.geteuid()}"
    if st.st_mode & 0o022:
        return f"writable by group or others: mode {stat.S_IMODE(st.st_mode):04o}"
    return ""


def _folder_problem(folder: Path) -> str:
    """Why ``folder`` may not hold libraries we load ('' if it may); created if missing.

    Anyone who can write there could swap in a library whose constructor runs at dlopen.
    """
    if os.path.lexists(folder) and not folder.is_dir():  # a file, a dangling symlink
        return "not a folder"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return _not_private(folder.stat())
    except OSError as err:
        return f"cannot create it: {err.strerror or err}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _private_file(path: Path) -> str:
    st = os.lstat(path)
    return _not_private(st) if stat.S_ISREG(st.st_mode) else "not a regular file"


def _recorded(folder: Path, key: str) -> Path | None:
    """The library a build recorded here for ``key`` if it still checks out, else None.

    Checked before dlopen, which runs a library's constructors: the record and the
    library are this user's alone and the library's sha256 is the recorded one. What
    fails a check is removed (one line says why), so the caller rebuilds it.
    """
    record, lib = folder / f"fused-{key}.sha256", None
    if not os.path.lexists(record):
        return None
    try:
        why = _private_file(record)
        digest = "" if why else record.read_text().strip()
        if not why and not re.fullmatch("[0-9a-f]{64}", digest):
            why = f"{record.name} holds no sha256"
        if not why:
            lib = folder / f"fused-{key}-{digest[:16]}.so"
            why = _private_file(lib) or ("" if _sha256(lib) == digest else "its sha256 differs")
            why = why and f"{lib.name}: {why}"
    except OSError as err:
        why = f"{err.strerror or err}: {err.filename}"
    if not why:
        return lib
    print(
        f"lionsweep: not loading the fused kernels in {folder} ({why}); rebuilding them",
        file=sys.stderr,
    )
    for path in filter(None, (record, lib)):
        with contextlib.suppress(OSError):
            os.unlink(path)
    return None


def _compile(cc: str, flags: Sequence[str], folder: Path, key: str) -> Path:
    """Build :data:`SOURCE` as ``fused-{key}-{sha256}.so``, then record that sha256 in
    ``fused-{key}.sha256``; both renamed into place, so concurrent builds are safe."""
    fd, tmp = tempfile.mkstemp(prefix=".fused-", suffix=".so", dir=folder)
    os.close(fd)
    try:
        cmd = [cc, *flags, str(SOURCE), "-o", tmp, "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        os.chmod(tmp, 0o755)  # whatever the umask: never writable by group or others
        digest = _sha256(Path(tmp))
        lib = folder / f"fused-{key}-{digest[:16]}.so"
        os.replace(tmp, lib)
        fd, tmp = tempfile.mkstemp(prefix=".fused-", suffix=".sha256", dir=folder)  # 0600
        with os.fdopen(fd, "w") as fh:
            fh.write(digest + "\n")
        os.replace(tmp, folder / f"fused-{key}.sha256")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return lib


def _build_folder() -> Path:
    """The cache folder if it is this user's alone, else (one line says why) a private
    temporary folder for this process only."""
    folder = cache_dir()
    why = _folder_problem(folder)
    if not why:
        return folder
    _state["private"] = private = Path(tempfile.mkdtemp(prefix="lionsweep-fused-"))
    print(
        f"lionsweep: not using {folder} for the fused kernels ({why}); building them in "
        f"{private} for this process (set LIONSWEEP_CACHE to a folder of your own)",
        file=sys.stderr,
    )
    return private


def build() -> Path:
    """The library for this machine, compiled on first use (raises on failure)."""
    cc = os.environ.get("CC", "cc")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    source, cpu = SOURCE.read_text(), _cpu_id()
    folder = _build_folder()
    last: Exception | None = None
    # Without OpenMP or -march=native support: pthreads, portable code.
    for flags in (FLAGS + OPENMP + NATIVE, FLAGS + OPENMP, FLAGS + NATIVE, FLAGS):
        key = "\n".join([source, " ".join(flags), version.stdout, cpu])
        key = hashlib.sha256(key.encode()).hexdigest()[:16]
        lib = _recorded(folder, key)
        if lib is not None:
            return lib
        try:
            return _compile(cc, flags, folder, key)
        except (OSError, subprocess.SubprocessError) as err:
            last = err
    raise OSError(f"{cc} could not build {SOURCE.name}: {last}")


def _load() -> str:
    """Build, load and probe the library into :data:`_LIB`; why it is unusable ('' if not)."""
    try:
        try:
            lib = ctypes.CDLL(str(build()))
        finally:  # a loaded library stays mapped: its private folder can go
            if "private" in _state:
                shutil.rmtree(_state.pop("private"), ignore_errors=True)
        for fn in (lib.lion_update, lib.adam_moments, lib.adam_apply):
            fn.restype = None
        _LIB[0] = lib
        return "" if _probe() else "results differ from the eager kernels on this machine"
    except Exception as err:  # no compiler, a failed build or load: eager kernels
        return f"{type(err).__name__}: {err}".splitlines()[0]


@functools.cache
def library() -> ctypes.CDLL | None:
    """The checked library, or None (then :func:`reason` says why) once per process.

    ``LIONSWEEP_FUSED=0`` switches it off silently (it was asked for); any other reason,
    an unknown value of the switch included, is said in one line on stderr.
    """
    _state["loaded"] = True  # the probe below runs the kernels through _ready
    switch = os.environ.get("LIONSWEEP_FUSED", "1")
    if switch == "0":
        _state["why"] = "LIONSWEEP_FUSED=0"
        return None
    why = _load() if switch in ("", "1") else f"LIONSWEEP_FUSED={switch!r} is neither 0 nor 1"
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
    """One fused Lion step (see :func:`lionsweep.optim.kernels.lion_update`); False: not done."""
    if not _usable(p, g, m) or not _ready(p):  # another device: never build the library
        return False
    k = p.shape[0]
    lr, beta1, omb2, decay = (_per_model(c, k) for c in coefs)
    if lr is None or beta1 is None or omb2 is None or (decay is None) != (coefs[3] is None):
        return False
    _call("lion_update", k, (p, g, m), (lr, beta1, omb2, decay))
    return True


def adam(p: Tensor, g: Tensor, m: Tensor, v: Tensor, c, step: int, buffer: Tensor | None) -> bool:
    """One fused Adam/AdamW step (see :func:`lionsweep.optim.kernels.adam_update`)."""
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
    from lionsweep.optim import kernels

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
