"""Declarative build definitions (one YAML per pipeline), installed as voxbox.pipelines."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def pipeline_path(name: str) -> Path:
    return HERE / f"{name}.yaml"


def available() -> list:
    return sorted(p.stem for p in HERE.glob("*.yaml"))
