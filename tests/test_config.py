"""Invalid configuration fails before any job runs, naming the offending key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, copy_workflow, snakemake
from lionsweep.config import validate
from lionsweep.errors import LionSweepError


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def dry_run(workdir: Path, override: dict, name: str):
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(override))
    return snakemake(workdir, "-n", "--configfile", str(path), check=False)


def test_default_and_test_configs_are_valid(workdir: Path) -> None:
    proc = snakemake(workdir, "-n", "--configfile", "config/test.yaml", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "train_shard" in proc.stdout + proc.stderr


BAD = {
    "unknown_cost_model": (
        {"sweep": {"shard_cost_model": 99}},
        ["invalid configuration: sweep.shard_cost_model: unknown version 99; known: [1]"],
    ),
    "wrong_type": (
        {"training": {"epochs": "ten"}},
        ["invalid configuration: training.epochs: 'ten' is not an integer"],
    ),
    "unknown_dataset_key": (
        {"datasets": {"titanic": {"colour": "red"}}},
        ["datasets.titanic: unknown key 'colour' (allowed keys: categorical,"],
    ),
    "beta1_out_of_range": (
        {"optimizers": {"lion": {"defaults": {"beta1": 1.0}}}},
        ["optimizers.lion.defaults.beta1: 1.0 is not in [0, 1)"],
    ),
    "lr_not_positive": (
        {"optimizers": {"adamw": {"grid": [{"param": "lr", "values": [0.001, 0.0]}]}}},
        ["optimizers.adamw.grid[0] (lr): 0.0 is not in (0, inf)"],
    ),
    "empty_grid": (
        {"optimizers": {"lion": {"grid": [{"param": "weight_decay", "values": []}]}}},
        ["optimizers.lion.grid[0] (weight_decay): `values` must be a non-empty list"],
    ),
    "bad_dataset_name": (
        {
            "datasets": {
                "My-Data": {
                    "sha256": "0" * 64,
                    "file": "x.csv",
                    "read": {"header": True},
                    "target": "y",
                    "positive": 1,
                }
            }
        },
        ["My-Data"],
    ),
    "unsafe_file_name": (
        {"datasets": {"titanic": {"file": "t$(touch X).csv"}}},
        ["datasets.titanic.file: 't$(touch X).csv' is not allowed"],
    ),
    "undefined_dataset": ({"study": {"datasets": ["titanic", "iris"]}}, ["iris", "study.datasets"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_config_fails_naming_the_key(workdir: Path, case: str) -> None:
    override, needles = BAD[case]
    proc = dry_run(workdir, override, case)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"
    assert "Job stats" not in output  # failed before planning any job
    assert "Traceback" not in output and "$defs" not in output  # no schema dump


# Unit tests of lionsweep.config.validate: fast, and exact about the message.

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _edit(config: dict, path: str, value) -> dict:
    """A deep copy of ``config`` with the dotted key ``path`` set to ``value``."""
    config = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
    return config


def _message(config: dict) -> str:
    with pytest.raises(LionSweepError) as err:
        validate(config, SCHEMA)
    message = str(err.value)
    assert "\n" not in message and "$defs" not in message and "{'type'" not in message
    return message


MESSAGES = {
    "unknown key": (
        "datasets.titanic.colour",
        "red",
        "datasets.titanic: unknown key 'colour' (allowed keys: categorical, description,",
    ),
    "wrong type": ("training.epochs", "ten", "training.epochs: 'ten' is not an integer"),
    "enum": (
        "training.device",
        "gpu",
        "training.device: 'gpu' is not one of the allowed values: auto, cpu, cuda",
    ),
    "pattern": (
        "datasets.titanic.sha256",
        "abc",
        "datasets.titanic.sha256: 'abc' is not allowed: use 64 lowercase hexadecimal digits",
    ),
    "minimum": ("training.epochs", 0, "training.epochs: 0 is less than the minimum of 1"),
    "oneOf, deepest branch": (
        "optimizers.lion.grid.1",
        {"param": "beta1", "start": 0.5, "stop": 1.5, "num": "3"},
        "optimizers.lion.grid[1].num: '3' is not an integer",
    ),
    "oneOf, every branch": (
        "datasets.titanic.categorical",
        "yes",
        "datasets.titanic.categorical: 'yes' is not a list or 'yes' is not allowed: "
        "the only allowed value is 'all'",
    ),
    "sep too long": (
        "datasets.titanic.read.sep",
        ";;",
        "datasets.titanic.read.sep: ';;' is too long: at most 1 character(s)",
    ),
    "yaml boolean": (
        "datasets.titanic.positive",
        True,
        "datasets.titanic.positive: True is not a string or a number (YAML reads yes/no",
    ),
    "duplicate columns": (
        "datasets.spambase.read.columns",
        ["a", "b", "a"],
        "datasets.spambase.read.columns: duplicate entries ['a']",
    ),
    "duplicate features": (
        "datasets.titanic.features",
        ["Sex", "Age", "Pclass", "Embarked", "Age"],
        "datasets.titanic.features: duplicate entries ['Age']",
    ),
    "duplicate categorical": (
        "datasets.titanic.categorical",
        ["Sex", "Sex"],
        "datasets.titanic.categorical: duplicate entries ['Sex']",
    ),
    "empty features": ("datasets.titanic.features", [], "datasets.titanic.features: [] should"),
}


# Optimizer names, hyperparameter names and ranges come from lionsweep.optim.registry's registry
# (the schema checks shapes only): one line each, naming the key.
REGISTRY_MESSAGES = {
    "unknown studied optimizer": (
        "study.optimizers",
        ["lion", "rmsprop"],
        "study.optimizers: unknown optimizer 'rmsprop'; expected one of lion, adamw, adam, sgd",
    ),
    "unknown optimizer entry": (
        "optimizers.rmsprop",
        {"grid": [{"param": "lr", "values": [0.1]}]},
        "optimizers.rmsprop: unknown optimizer 'rmsprop'; expected one of lion, adamw, adam, sgd",
    ),
    "grid axis of another optimizer": (
        "optimizers.lion.grid",
        [{"param": "momentum", "values": [0.9]}],
        "optimizers.lion.grid[0]: `param` must be one of ['lr', 'beta1', 'beta2', "
        "'weight_decay'] (lion's hyperparameters), ['ema_decay'] (weight EMA) or ['epochs'] "
        "(training), not 'momentum'",
    ),
    "default of another optimizer": (
        "optimizers.adamw.defaults",
        {"momentum": 0.9},
        "optimizers.adamw.defaults.momentum: adamw has no hyperparameter 'momentum' (it has "
        "lr, beta1, beta2, eps, weight_decay, ema_decay)",
    ),
    "default out of range": (
        "optimizers.lion.defaults",
        {"beta2": 1.0},
        "optimizers.lion.defaults.beta2: 1.0 is not in [0, 1)",
    ),
    "range axis leaves the range": (
        "optimizers.lion.grid.1",
        {"param": "beta1", "start": 0.5, "stop": 1.5, "num": 3},
        "optimizers.lion.grid[1] (beta1): 1.0 is not in [0, 1)",
    ),
    "override axis out of range": (
        "optimizers.adamw.grid_overrides.titanic",
        [{"param": "weight_decay", "values": [-0.1]}],
        "optimizers.adamw.grid_overrides.titanic[0] (weight_decay): -0.1 is not in [0, inf)",
    ),
    "nesterov not whole": (
        "optimizers.sgd.grid",
        [{"param": "nesterov", "values": [0, 0.5]}],
        "optimizers.sgd.grid[0] (nesterov): 0.5 is not a whole number in [0, 1]",
    ),
    "nesterov default not whole": (
        "optimizers.sgd.defaults",
        {"nesterov": 0.5},
        "optimizers.sgd.defaults.nesterov: 0.5 is not a whole number in [0, 1]",
    ),
    "momentum 1": (
        "optimizers.sgd.grid",
        [{"param": "momentum", "start": 0.0, "stop": 1.0, "num": 3}],
        "optimizers.sgd.grid[0] (momentum): 1.0 is not in [0, 1)",
    ),
}


@pytest.mark.parametrize("case", list(REGISTRY_MESSAGES))
def test_optimizers_are_checked_against_the_registry(config: dict, case: str) -> None:
    path, value, expected = REGISTRY_MESSAGES[case]
    assert _message(_edit(config, path, value)).startswith(expected)


def test_config_defaults_are_optional_overrides_of_the_registry(config: dict) -> None:
    """No `defaults`: the registry's; a partial `defaults`: the registry's updated by it."""
    from lionsweep.sweep.grid import expand, grid_spec

    config = copy.deepcopy(config)
    del config["optimizers"]["lion"]["defaults"]
    config["optimizers"]["adamw"]["defaults"] = {"lr": 0.005}
    validate(config, SCHEMA)
    lion = expand(grid_spec(config, "spambase", "lion")).iloc[-1]
    assert (lion.lr, lion.beta1, lion.beta2, lion.weight_decay) == (1e-4, 0.9, 0.99, 0.0)
    adamw = expand(grid_spec(config, "spambase", "adamw")).iloc[-1]
    assert (adamw.lr, adamw.beta2, adamw.eps, adamw.weight_decay) == (0.005, 0.999, 1e-8, 0.01)


@pytest.mark.parametrize("case", list(MESSAGES))
def test_schema_error_is_one_line_naming_key_value_and_rule(config: dict, case: str) -> None:
    path, value, expected = MESSAGES[case]
    assert _message(_edit(config, path, value)).startswith(expected)


SHARDING = {
    "zero seconds": ("shard_seconds", 0, "sweep.shard_seconds: 0 is less than or equal to the"),
    "negative": ("shard_seconds", -5, "sweep.shard_seconds: -5 is less than or equal to the"),
    "text": ("shard_seconds", "60", "sweep.shard_seconds: '60' is not a number or null"),
    "nan": ("shard_seconds", float("nan"), "sweep.shard_seconds must be a finite number > 0"),
    "inf": ("shard_seconds", float("inf"), "sweep.shard_seconds must be a finite number > 0"),
    "unknown model": ("shard_cost_model", 2, "sweep.shard_cost_model: unknown version 2;"),
    "model as text": ("shard_cost_model", "1", "sweep.shard_cost_model: '1' is not an integer"),
    "model missing": ("shard_cost_model", None, "sweep.shard_cost_model: None is not an integer"),
}


@pytest.mark.parametrize("case", list(SHARDING))
def test_bad_sharding_is_one_line_naming_the_key(config: dict, case: str) -> None:
    key, value, expected = SHARDING[case]
    assert _message(_edit(config, f"sweep.{key}", value)).startswith(expected)


def test_unknown_cost_model_is_refused_even_with_fixed_size_shards(config: dict) -> None:
    """A version this code does not know stops the run even when shard_seconds is null:
    the typo would otherwise surface only on the day cost-aware shards are switched on."""
    config = _edit(_edit(config, "sweep.shard_seconds", None), "sweep.shard_cost_model", 7)
    assert _message(config) == "sweep.shard_cost_model: unknown version 7; known: [1]"


@pytest.mark.parametrize(
    "name", ["t$(touch X).csv", "a/b.csv", "{x}.csv", "x}.csv", "..", "", ".hidden", "-rf", "x "]
)
def test_unsafe_file_names_are_refused(config: dict, name: str) -> None:
    message = _message(_edit(config, "datasets.titanic.file", name))
    assert message.startswith(f"datasets.titanic.file: {name!r} is not allowed: use a plain")
    assert "letters, digits, '.', '_', '-' and spaces" in message


def test_file_name_with_space_is_accepted(config: dict) -> None:
    validate(_edit(config, "datasets.titanic.file", "my data.csv"), SCHEMA)


CONSISTENCY = {
    "target in features": (
        "datasets.titanic.features",
        ["Sex", "Survived"],
        "datasets.titanic.features lists the target column 'Survived'",
    ),
    "target categorical": (
        "datasets.titanic.categorical",
        ["Sex", "Survived"],
        "datasets.titanic.categorical lists the target column 'Survived'",
    ),
    "categorical not a feature": (
        "datasets.titanic.categorical",
        ["Sex", "Cabin"],
        "datasets.titanic.categorical: ['Cabin'] are not listed in features",
    ),
    "target not a column": (
        "datasets.spambase.target",
        "is_spam",
        "datasets.spambase.target: ['is_spam'] not among read.columns",
    ),
    "line break as sep": (
        "datasets.titanic.read.sep",
        "\n",
        "datasets.titanic.read.sep: '\\n' is a line break and cannot separate fields",
    ),
}


@pytest.mark.parametrize("case", list(CONSISTENCY))
def test_inconsistent_dataset_entry_is_refused(config: dict, case: str) -> None:
    path, value, expected = CONSISTENCY[case]
    assert _message(_edit(config, path, value)) == expected


def test_target_in_features_of_unstudied_dataset_is_refused(config: dict) -> None:
    config = _edit(config, "study.datasets", ["spambase"])
    message = _message(_edit(config, "datasets.titanic.features", ["Survived"]))
    assert message == "datasets.titanic.features lists the target column 'Survived'"


def test_defaults_are_applied_like_snakemake(config: dict) -> None:
    config = copy.deepcopy(config)
    del config["download"]
    validate(config, SCHEMA)
    assert config["download"] == {"timeout_s": 60, "retries": 3}
    assert config["training"]["threads"] == 2
    assert config["datasets"]["spambase"]["max_dropped_fraction"] == 0.1
    assert config["datasets"]["titanic"]["max_dropped_fraction"] == 0.25  # set, not replaced
    assert config["optimizers"]["adamw"]["grid_overrides"]["titanic"][0]["num"] == 20
    assert config["results"]["top_k"] == 10
    # each default is a fresh copy, never shared between entries
    for name in ("lion", "adamw"):
        del config["optimizers"][name]["grid_overrides"]
    validate(config, SCHEMA)
    lion, adamw = (config["optimizers"][n]["grid_overrides"] for n in ("lion", "adamw"))
    assert lion == adamw == {} and lion is not adamw
