"""The fused optimizer kernels (lionsweep.optim.fused) give the eager kernels' numbers bit for
bit, on their own and through whole trainings, for any thread count; without a C
compiler, or when switched off, training falls back to the eager kernels."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lionsweep.optim import fused, kernels
from lionsweep.train.engine import TrainSettings, train_grid

needs_lib = pytest.mark.skipif(fused.library() is None, reason=f"fused off: {fused.reason()}")
SHAPES = [(9, 7, 13), (9, 1, 64), (9, 1), (9, 64, 58), (1, 3, 3)]


def _hp(k: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Per-model hyperparameters across both lerp branches (|weight| < 0.5 and >= 0.5)."""
    pick = torch.tensor([0.0, 0.2, 0.4999, 0.5, 0.9, 0.99, 1.0, 0.3, 0.7])
    return {
        "lr": torch.rand(k, generator=gen) * 0.3,
        "beta1": pick.roll(1)[:k].clone() if k > 1 else torch.tensor([0.9]),
        "beta2": pick.roll(4)[:k].clone() if k > 1 else torch.tensor([0.99]),
        "weight_decay": torch.rand(k, generator=gen) * (torch.arange(k) % 3 != 0),
    }


def _tensors(shape, gen):
    p, g, m = (torch.randn(shape, generator=gen) for _ in range(3))
    v = torch.rand(shape, generator=gen)
    p.view(-1)[0], g.view(-1)[-1] = float("inf"), float("nan")  # a diverging model
    return p, g, m, v


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equal, NaN included."""
    return bool((a.view(torch.int32) == b.view(torch.int32)).all())


def _run(update, tensors, use_eager: bool):
    out = [t.clone() for t in tensors]
    if use_eager:
        with fused.eager():
            update(*out)
    else:
        update(*out)
    return out


@pytest.mark.skipif(
    shutil.which(os.environ.get("CC", "cc")) is None or os.environ.get("LIONSWEEP_FUSED") == "0",
    reason="no C compiler, or fused kernels switched off",
)
def test_on_wherever_a_compiler_exists():
    """A kernel that drifted from eager is switched off by the probe, which would quietly
    skip every bitwise test below: with a compiler, the library must be on."""
    assert fused.reason() == ""
    assert fused.library() is not None


@needs_lib
@pytest.mark.parametrize("shape", SHAPES)
def test_lion_bitwise(shape):
    gen = torch.Generator().manual_seed(len(shape) + shape[-1])
    hp, tensors = _hp(shape[0], gen), _tensors(shape, gen)[:3]

    def update(p, g, m):
        for _ in range(3):
            kernels.lion_update(p, g, m, kernels.lion_coefs(p, **hp))

    eager, fast = _run(update, tensors, True), _run(update, tensors, False)
    assert all(_same(a, b) for a, b in zip(eager, fast, strict=True))
    assert not _same(eager[0], tensors[0])  # it did update


@needs_lib
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("decoupled", [True, False])
def test_adam_bitwise(shape, decoupled):
    gen = torch.Generator().manual_seed(shape[-1])
    hp, tensors = _hp(shape[0], gen), _tensors(shape, gen)
    hp["beta2"] = hp["beta2"].clamp(max=0.999)
    eps = torch.full((shape[0],), 1e-8)
    eps[0] = 1e-3

    def update(p, g, m, v):
        c = kernels.adam_coefs(p, **hp, eps=eps, decoupled=decoupled)
        for step in (1, 2, 9):
            kernels.adam_update(p, g.clone(), m, v, c, step, torch.empty_like(p))

    eager, fast = _run(update, tensors, True), _run(update, tensors, False)
    assert all(_same(a, b) for a, b in zip(eager, fast, strict=True))


@needs_lib
def test_fused_path_is_taken():
    """A check that could fail: the engine's layout really goes through the library."""
    p = torch.zeros(4, 2, 3)
    coefs = kernels.lion_coefs(p, **_hp(4, torch.Generator().manual_seed(0)))
    assert fused.lion(p, torch.ones_like(p), torch.zeros_like(p), coefs)
    with fused.eager():
        assert not fused.lion(p, torch.ones_like(p), torch.zeros_like(p), coefs)
    # scalars, float64 and non-contiguous views stay on the eager kernels
    scalar = kernels.lion_coefs(p, lr=0.1, beta1=0.9, beta2=0.99, weight_decay=0.0)
    assert not fused.lion(p, p.clone(), p.clone(), scalar)
    assert not fused.lion(p.double(), p.double(), p.double(), coefs)
    t = torch.zeros(4, 3, 2).transpose(1, 2)
    assert not fused.lion(t, t.clone(), t.clone(), coefs)


def _splits(seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=5)

    def make(n):
        x = rng.normal(size=(n, 5)).astype(np.float32)
        return x, (x @ w > 0).astype(np.int64)

    return {"train": make(70), "val": make(20), "test": make(21)}


@needs_lib
@pytest.mark.parametrize("optimizer", ["lion", "adamw", "adam"])
def test_training_bitwise_any_threads(optimizer):
    """Whole trainings (with a diverging model): fused = eager, 1 thread = 2 threads."""
    k = 12
    rng = np.random.default_rng(1)
    hp = {
        "lr": np.geomspace(1e-4, 3.0, k),
        "beta1": rng.uniform(0.3, 0.99, k),
        "beta2": rng.uniform(0.9, 0.999, k),
        "weight_decay": rng.uniform(0, 0.5, k),
        "eps": np.full(k, 1e-8),
    }
    hp["lr"][-1] = 1e8
    if optimizer == "lion":
        del hp["eps"]
    settings = TrainSettings(hidden=16, epochs=3, batch_size=16, threads=2)
    runs = [train_grid(_splits(), optimizer, hp, 3, settings, progress=False)]
    with fused.eager():
        runs.append(train_grid(_splits(), optimizer, hp, 3, settings, progress=False))
    one = TrainSettings(hidden=16, epochs=3, batch_size=16, threads=1)
    runs.append(train_grid(_splits(), optimizer, hp, 3, one, progress=False))
    for key in runs[0]:
        if key != "device":
            for other in runs[1:]:
                np.testing.assert_array_equal(runs[0][key], other[key], err_msg=key)


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    inherited = {k: v for k, v in os.environ.items() if k not in ("LIONSWEEP_FUSED", "CC")}
    full = {**inherited, "PYTHONPATH": str(root / "workflow"), **env}
    return subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=300
    )


SMOKE = (
    "import numpy as np; from lionsweep import fused; from lionsweep.train.engine import *;"
    "rng = np.random.default_rng(0); x = rng.normal(size=(40, 3)).astype('float32');"
    "s = {n: (x, (x[:, 0] > 0).astype('int64')) for n in ('train', 'val', 'test')};"
    "hp = dict(lr=[1e-3, 1e-2], beta1=[0.9, 0.95], beta2=[0.99, 0.99], weight_decay=[0, 1]);"
    "r = train_grid(s, 'lion', hp, 0, TrainSettings(hidden=4, epochs=2), progress=False);"
    "print(fused.library() is None); print(fused.reason()); print(r['val_logloss'].tolist())"
)


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"LIONSWEEP_FUSED": "0"}, "LIONSWEEP_FUSED=0"),
        ({"CC": "/nonexistent/cc"}, "FileNotFoundError"),
        ({"CC": "false"}, "could not build"),
    ],
)
def test_fallback_without_compiler(tmp_path, env, why):
    """No compiler (or switched off): one stderr line, eager numbers, nothing cached."""
    off = _python(SMOKE, {"LIONSWEEP_CACHE": str(tmp_path / "c"), **env})
    assert off.returncode == 0, off.stderr
    is_off, reason, accuracy = off.stdout.splitlines()
    assert is_off == "True" and why in reason
    assert list((tmp_path / "c").glob("*.so")) == []
    if "LIONSWEEP_FUSED" not in env:  # said once, in one line
        assert off.stderr.count("fused optimizer kernels off") == 1
    on = _python(SMOKE, {"LIONSWEEP_CACHE": str(tmp_path / "d")})
    assert on.stdout.splitlines()[2] == accuracy  # the same numbers either way


@needs_lib
def test_build_is_cached(tmp_path):
    """One build per source/flags/compiler/CPU; a second process reuses it."""
    env = {"LIONSWEEP_CACHE": str(tmp_path)}
    first = _python("from lionsweep import fused; print(fused.build())", env)
    built = list(tmp_path.glob("fused-*.so"))
    assert first.returncode == 0 and len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    second = _python("from lionsweep import fused; print(fused.build())", env)
    assert second.stdout == first.stdout and built[0].stat().st_mtime_ns == stamp


# ----------------------------------------------------------- what the cache may load

PLANTED = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w");
    if (f) { fputs("constructor ran", f); fclose(f); }
}
"""
LOAD = "from lionsweep import fused; print(fused.library() is not None); print(fused.reason())"
OTHER_UID = 65534  # nobody


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A cache as this code builds it (library, and what it records beside it)."""
    if fused.library() is None:
        pytest.skip(f"fused off: {fused.reason()}")
    cache = tmp_path_factory.mktemp("reference")
    proc = _python("from lionsweep import fused; fused.build()", {"LIONSWEEP_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    return cache


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path]:
    """A shared library whose constructor writes a marker file, and that marker."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        pytest.skip("no C compiler")
    base = tmp_path_factory.mktemp("planted")
    marker, src, lib = base / "marker", base / "planted.c", base / "planted.so"
    src.write_text(PLANTED)
    cmd = [cc, "-shared", "-fPIC", f'-DMARKER="{marker}"', str(src), "-o", str(lib)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return lib, marker


def _plant(reference: Path, cache: Path, planted: Path, *, digest: bool = True) -> None:
    """Put ``planted`` under every library name of the reference cache; with ``digest``,
    record its sha256 the way a build does (an attacker who could write there)."""
    cache.mkdir(mode=0o700, exist_ok=True)
    for path in reference.iterdir():
        if path.suffix == ".so":
            shutil.copy(planted, cache / path.name)
        elif path.suffix == ".sha256" and digest:
            (cache / path.name).write_text(hashlib.sha256(planted.read_bytes()).hexdigest())


def _load(cache: Path | str) -> tuple[bool, str, list[str]]:
    proc = _python(LOAD, {"LIONSWEEP_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    on, why = proc.stdout.splitlines()
    return on == "True", why, proc.stderr.splitlines()


def _as_root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")


def _setup(case: str, cache: Path, reference: Path, lib: Path) -> None:
    if case == "planted, no digest":
        _plant(reference, cache, lib, digest=False)
    elif case == "group-writable folder":
        _plant(reference, cache, lib)
        cache.chmod(0o775)
    elif case == "sticky world-writable folder (like /tmp)":
        _plant(reference, cache, lib)
        cache.chmod(0o1777)
    elif case == "files of another user":
        _as_root_only()
        _plant(reference, cache, lib)
        for path in cache.iterdir():
            os.chown(path, OTHER_UID, -1)
    elif case == "folder of another user":
        _as_root_only()
        _plant(reference, cache, lib)
        os.chown(cache, OTHER_UID, -1)
    elif case == "library is a symlink":
        _plant(reference, cache, lib)
        for path in cache.glob("*.so"):
            path.unlink()
            path.symlink_to(lib)


PLANTED_CASES = [
    "planted, no digest",
    "group-writable folder",
    "sticky world-writable folder (like /tmp)",
    "files of another user",
    "folder of another user",
    "library is a symlink",
]


@pytest.mark.parametrize("case", PLANTED_CASES)
def test_a_planted_library_is_never_loaded(tmp_path, reference, planted, case):
    """A library someone else could have put in the cache is refused in one line, before
    dlopen (its constructor never runs), and the kernels are rebuilt: still on."""
    lib, marker = planted
    cache = tmp_path / "cache"
    _setup(case, cache, reference, lib)
    on, why, stderr = _load(cache)
    assert not marker.exists(), "the planted library's constructor ran"
    assert on and why == ""
    if case == "planted, no digest":  # not recorded by a build here: not even looked at
        assert stderr == []
    else:
        assert len(stderr) == 1 and stderr[0].startswith("lionsweep: "), stderr
        assert str(cache) in stderr[0]


@pytest.mark.parametrize("damage", ["tampered digest", "truncated library"])
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, reference, damage):
    """The recorded digest is checked before loading: a library that does not match it
    (truncated by a full disk, or the record edited) is rebuilt, with one line."""
    cache = tmp_path / "cache"
    shutil.copytree(reference, cache)
    cache.chmod(0o700)
    for path in cache.iterdir():
        if damage == "tampered digest" and path.suffix == ".sha256":
            path.write_text("f" * 64 + "\n")
        if damage == "truncated library" and path.suffix == ".so":
            path.write_bytes(path.read_bytes()[:4096])
    on, why, stderr = _load(cache)
    assert on and why == "", why
    assert len(stderr) == 1 and "rebuilding" in stderr[0], stderr
    assert _load(cache)[2] == []  # rebuilt for good: silent next time


@pytest.mark.parametrize("kind", ["file", "dangling symlink", "symlink to a private folder"])
def test_cache_paths_that_are_not_a_private_folder(tmp_path, reference, kind):
    target = tmp_path / "cache"
    if kind == "file":
        target.write_text("")
    elif kind == "dangling symlink":
        target.symlink_to(tmp_path / "missing" / "x")
    else:
        real = tmp_path / "real"
        shutil.copytree(reference, real)
        real.chmod(0o700)
        target.symlink_to(real)
    on, why, stderr = _load(target)
    assert on and why == ""
    assert len(stderr) == (0 if kind.startswith("symlink") else 1), stderr


@pytest.mark.parametrize(
    ("value", "said"),
    [("0", ""), ("off", "LIONSWEEP_FUSED='off' is neither 0 nor 1"), ("", None), ("1", None)],
)
def test_the_switch_says_what_the_readme_says(tmp_path, value, said):
    """docs/training.md: `LIONSWEEP_FUSED=0` is silent (asked for); a value it does not know is off
    with one line (`no`, `off`, `false` were silently on); `1` and empty are on."""
    readme = " ".join(
        (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text().split()
    )
    assert "`LIONSWEEP_FUSED=0` switches them off silently" in readme
    proc = _python(LOAD, {"LIONSWEEP_FUSED": value, "LIONSWEEP_CACHE": str(tmp_path)})
    on, why = proc.stdout.splitlines()
    if said is None:
        assert on == "True" and proc.stderr == ""
    else:
        assert on == "False" and (value == "0" or why == said)
        assert proc.stderr == (f"lionsweep: fused optimizer kernels off ({said})\n" if said else "")
