"""The corpus catalog (one YAML per corpus), installed as voxbox.manifests."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
