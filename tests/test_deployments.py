"""Deployments are declared once and agree: infra/prefect.yaml (production) and flows/serve.py (local)."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from prefect import Flow

from flows.serve import deployments
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_production_yaml_and_serve_declare_the_same_deployments() -> None:
    spec = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text(encoding="utf-8"))
    production = {}
    for d in spec["deployments"]:
        module, name = d["entrypoint"].split(":")
        flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), name)
        assert isinstance(flow, Flow)
        production[(flow.name, d["name"])] = d
    local = {(d.flow_name, d.name): d for d in deployments(Settings())}
    assert (
        set(production)
        == set(local)
        == {
            ("instant-restore", "on-demand"),
            ("data-recycling", "nightly"),
            ("forget", "on-request"),
            ("train-base", "weekly"),
            ("train-voice-base", "weekly"),
        }
    )
    nightly = production[("data-recycling", "nightly")]
    assert nightly["schedules"][0]["cron"] == Settings().recycle_cron
    assert nightly["concurrency_limit"]["limit"] == 1
    assert local[("data-recycling", "nightly")].schedules
