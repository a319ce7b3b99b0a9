"""The ONNX models shipped with flarelight, and their model cards (package data)."""
from __future__ import annotations

from pathlib import Path

from flarelight.runtime.errors import ModelFileError

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_ENSEMBLE = "flarelight-v1"


def default_model_paths() -> list[Path]:
    """Paths of the members of the shipped default ensemble (``models/<name>/*.onnx``)."""
    folder = MODELS_DIR / DEFAULT_ENSEMBLE
    files = sorted(folder.glob("*.onnx"))
    if not files:
        raise ModelFileError(
            f"no shipped model in {folder}: this installation is incomplete; reinstall flarelight, "
            "or pass your own .onnx files to FlareModel(paths)")
    return files


def model_card(name: str = DEFAULT_ENSEMBLE) -> str:
    """The model card (Markdown) of a shipped ensemble."""
    card = MODELS_DIR / name / "MODEL_CARD.md"
    if not card.is_file():
        raise ModelFileError(f"no model card for {name!r} in {MODELS_DIR}")
    return card.read_text()
