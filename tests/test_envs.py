"""The pip pins (what CI installs) and the conda environment (what --sdm conda builds) agree."""

from __future__ import annotations

import re

import yaml

from conftest import ROOT


def pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            out[name.strip().lower()] = version.strip()
    return out


def test_conda_env_pins_equal_requirements() -> None:
    pip_pins = pins((ROOT / "envs" / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "envs" / "lionsweep.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == pip_pins
    assert pip_pins["torch"] == "2.13.0"  # the CPU build on CI's disk; see README


def test_every_rule_names_the_conda_env() -> None:
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    jobs = re.findall(r"^(?:rule|checkpoint) \w+:", rules, flags=re.M)  # prepare: a checkpoint
    assert len(jobs) == rules.count('conda:\n        "../../envs/lionsweep.yaml"')
