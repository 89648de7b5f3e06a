"""Validate the configuration (JSON schema, then what a schema cannot express).

The schema (workflow/schemas/config.schema.yaml) checks types and ranges; ``check``
checks cross-references (every studied dataset is defined, grids exist, the target
is not a feature) so that every mistake is reported before any job runs, as one
line naming the offending key, never as a dump of the schema.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lionsweep.data.fetch import MIRROR_ENV
from lionsweep.errors import LionSweepError
from lionsweep.sweep.grid import check_defaults, check_grid, registry_hparams
from lionsweep.sweep.halving import check_config as check_halving
from lionsweep.sweep.sampling import check_sampling
from lionsweep.sweep.shardcost import check_sharding

# Keys of a schema node that explain its `pattern` in words (an annotation that
# jsonschema ignores); without one, the message shows the regular expression.
PATTERN_HELP = "patternHelp"
MAX_VALUE_CHARS = 60
TYPE_WORDS = {
    "array": "a list",
    "object": "a mapping",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


def validate(config: dict[str, Any], schema_path: str | os.PathLike[str]) -> None:
    """Validate ``config`` against the schema, fill in its defaults, then ``check`` it.

    Defaults are applied like Snakemake's ``validate(..., set_default=True)``, but only
    to a valid config (a failed ``oneOf`` branch must not leave defaults behind), and
    the first error becomes one readable line instead of jsonschema's schema dump.
    """
    import yaml
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        raise LionSweepError(describe(error))
    _set_defaults(config, schema, schema)
    check(config)


def _set_defaults(instance: Any, node: dict[str, Any], root: dict[str, Any]) -> None:
    """Fill schema defaults into a valid instance: `properties`, `additionalProperties`,
    `$ref` and `allOf` (the keywords whose subschemas all apply to the instance)."""
    if "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        _set_defaults(instance, target, root)
    for sub in node.get("allOf", []):
        _set_defaults(instance, sub, root)
    if not isinstance(instance, dict):
        return
    properties = node.get("properties", {})
    for key, sub in properties.items():
        if "default" in sub:
            instance.setdefault(key, copy.deepcopy(sub["default"]))
        if key in instance:
            _set_defaults(instance[key], sub, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in properties:
                _set_defaults(value, extra, root)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def _duplicates(items: list[Any]) -> list[Any]:
    """Entries listed more than once, in order of first repetition."""
    seen: list[Any] = []
    dups: list[Any] = []
    for item in items:
        if item in seen and item not in dups:
            dups.append(item)
        seen.append(item)
    return dups


def _key_path(error: Any) -> str:
    """``a.b[2].c``: list positions in brackets, as lionsweep.sweep.grid names grid axes."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return text.lstrip(".") or "the configuration"


def _leaves(error: Any) -> Iterator[Any]:
    """The innermost sub-errors of a failed oneOf/anyOf (each branch's own complaint)."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        for sub in error.context:
            yield from _leaves(sub)
    else:
        yield error


def _what_is_wrong(error: Any) -> str:
    """The complaint about ``error.instance``, without the key path."""
    kind, value, rule = error.validator, _short(error.instance), error.validator_value
    if kind == "enum":
        return f"{value} is not one of the allowed values: {', '.join(map(str, rule))}"
    if kind == "const":
        return f"{value} is not allowed: the only allowed value is {rule!r}"
    if kind == "pattern":
        words = error.schema.get(PATTERN_HELP) or f"the regular expression {rule}"
        return f"{value} is not allowed: use {words}"
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = ", ".join(repr(k) for k in error.instance if k not in allowed)
        where = f" (allowed keys: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {unknown}{where}"
    if kind == "uniqueItems":
        return f"duplicate entries {_duplicates(error.instance)}"
    if kind == "type":
        types = " or ".join(
            TYPE_WORDS.get(t, t) for t in ([rule] if isinstance(rule, str) else rule)
        )
        hint = (
            " (YAML reads yes/no/true/false as booleans: quote it)"
            if error.instance in (True, False)
            else ""
        )
        return f"{value} is not {types}{hint}"
    if kind in ("maxLength", "minLength"):
        size, bound = ("long", "at most") if kind == "maxLength" else ("short", "at least")
        return f"{value} is too {size}: {bound} {rule} character(s)"
    return error.message if len(error.message) <= 2 * MAX_VALUE_CHARS else f"{value} is invalid"


def describe(error: Any) -> str:
    """One line: the key path, the offending value and what would be allowed."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        leaves = list(_leaves(error))
        deepest = max(len(e.absolute_path) for e in leaves)
        leaves = [e for e in leaves if len(e.absolute_path) == deepest]
        if deepest > len(error.absolute_path) or len(leaves) == 1:
            return describe(leaves[0])
        options = " or ".join(dict.fromkeys(_what_is_wrong(e) for e in leaves))
        return f"{_key_path(error)}: {options}"
    if "propertyNames" in error.relative_schema_path:
        return f"{_key_path(error)}: key {_what_is_wrong(error)}"
    return f"{_key_path(error)}: {_what_is_wrong(error)}"


def check(config: dict[str, Any]) -> None:
    """Raise LionSweepError naming the first inconsistent key."""
    datasets = config["datasets"]
    for name in config["study"]["datasets"]:
        if name not in datasets:
            raise LionSweepError(
                f"study.datasets names {name!r}, which has no entry under `datasets` "
                f"(defined: {sorted(datasets)})"
            )
    for name, spec in datasets.items():
        check_dataset(name, spec)
    check_optimizers(config)
    check_confirm(config)
    check_sharding(config["sweep"])
    check_halving(config)


def confirm_seeds(config: dict[str, Any]) -> list[int]:
    """The confirmation stage's seeds: ``confirm.seeds`` of them from ``confirm.first_seed``
    (a validated config has both: the schema's defaults)."""
    section = config["confirm"]
    return list(range(section["first_seed"], section["first_seed"] + section["seeds"]))


def check_confirm(config: dict[str, Any]) -> None:
    """Confirmation seeds must be fresh: one shared with the sweep would report the
    selection's own seed luck again, which is what the stage exists to remove."""
    seeds = confirm_seeds(config)
    shared = sorted(set(seeds) & set(config["sweep"]["seeds"]))
    if shared:
        raise LionSweepError(
            f"confirm.first_seed: confirmation seeds {seeds[0]}..{seeds[-1]} overlap "
            f"sweep.seeds at {shared}; start them after the sweep's (e.g. first_seed: "
            f"{max(config['sweep']['seeds']) + 1})"
        )


def check_optimizers(config: dict[str, Any]) -> None:
    """Optimizer names, defaults and grid axes against the registry (lionsweep.optim.registry):
    the schema checks shapes only, so a new registry entry needs no schema change."""
    for opt in config["study"]["optimizers"]:
        registry_hparams(opt, "study.optimizers")
        if opt not in config["optimizers"]:
            raise LionSweepError(
                f"study.optimizers names {opt!r}, which has no entry under `optimizers`"
            )
    for opt, entry in config["optimizers"].items():
        registry_hparams(opt, f"optimizers.{opt}")
        check_defaults(entry.get("defaults"), f"optimizers.{opt}.defaults", opt)
        check_sampling(entry, f"optimizers.{opt}")
        check_grid(entry["grid"], f"optimizers.{opt}.grid", opt)
        for name, grid in entry.get("grid_overrides", {}).items():
            if grid is not None:
                check_grid(grid, f"optimizers.{opt}.grid_overrides.{name}", opt)


# Separators the CSV reader cannot use: they end a line or quote a field.
FORBIDDEN_SEPS = {"\n": "a line break", "\r": "a line break", '"': "the quote character"}


def check_dataset(name: str, spec: dict[str, Any]) -> None:
    """What one dataset entry says about its columns must be consistent, before reading
    the file: the target is never a feature, every categorical column is a feature, and
    (without a header) every named column exists. Duplicates are the schema's job."""
    key = f"datasets.{name}"
    read, target = spec["read"], spec["target"]
    columns = read.get("columns")
    if not read["header"] and not columns:
        raise LionSweepError(f"{key}.read.columns is required when header is false")
    sep = read.get("sep", ",")
    if sep in FORBIDDEN_SEPS:
        raise LionSweepError(
            f"{key}.read.sep: {sep!r} is {FORBIDDEN_SEPS[sep]} and cannot separate fields"
        )
    task = spec.get("task")
    if task in (None, "binary") and "positive" not in spec:
        other = "" if task else " (or set task: multiclass or regression)"
        raise LionSweepError(
            f"{key}.positive is required for a binary task: the target value counted as 1{other}"
        )
    if task not in (None, "binary") and "positive" in spec:
        raise LionSweepError(f"{key}.positive applies to task: binary only, not {task}")
    features = spec.get("features")
    categorical = spec.get("categorical", [])
    if features is not None and target in features:
        raise LionSweepError(f"{key}.features lists the target column {target!r}")
    if categorical != "all":
        if target in categorical:
            raise LionSweepError(f"{key}.categorical lists the target column {target!r}")
        if features is not None:
            extra = [c for c in categorical if c not in features]
            if extra:
                raise LionSweepError(f"{key}.categorical: {extra} are not listed in features")
    if columns and not read["header"]:
        for field, names in (("target", [target]), ("features", features or [])):
            unknown = [c for c in names if c not in columns]
            if unknown:
                raise LionSweepError(f"{key}.{field}: {unknown} not among read.columns")
    check_primary_metric(key, spec)


def check_primary_metric(key: str, spec: dict[str, Any]) -> None:
    """`primary_metric` must be one of its task's metrics (lionsweep.train.metrics' lists;
    imported only here, so that a config without one never imports torch)."""
    metric = spec.get("primary_metric")
    if metric is None:
        return
    from lionsweep.train.metrics import METRICS, MULTICLASS_METRICS, REGRESSION_METRICS

    task = spec.get("task") or "binary"
    allowed = {"binary": METRICS, "multiclass": MULTICLASS_METRICS}.get(task, REGRESSION_METRICS)
    if metric not in allowed:
        raise LionSweepError(
            f"{key}.primary_metric: {metric!r} is not a metric of task {task}: use one of "
            f"{', '.join(allowed)}"
        )


def export_job_environment(package_root: str, python: str, mirror: Path | None) -> None:
    """Set what every job (local, conda or SLURM) inherits from Snakemake's environment.

    - PYTHONPATH: the package beside the rules is importable without installing it;
    - PATH: jobs run `python` from the environment Snakemake itself runs in (e.g.
      .venv) even when it was not activated; `--sdm conda` puts its own env first;
    - LIONSWEEP_DATA_MIRROR: jobs read the mirror from the environment, so that
      switching between mirror and download reruns nothing (the sha256 guarantees
      the same bytes).
    """
    env = os.environ
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join((str(Path(python).parent), env.get("PATH", "")))
    if mirror is not None:
        env[MIRROR_ENV] = str(mirror.resolve())
