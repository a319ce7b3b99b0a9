"""The ONNX models shipped with flarelight, by name, and their model cards (package data).

Each shipped model is a folder ``models/<name>/`` holding its members (``*.onnx``, with their sliding forms
``*.sliding.onnx`` where they have one) and ``MODEL_CARD.md``. Older models stay reachable by name after
a newer one becomes the default.
"""
from __future__ import annotations

from pathlib import Path

from flarelight.runtime.errors import ModelFileError

MODELS_DIR = Path(__file__).resolve().parent
#: the name of the model ``FlareModel.default()`` loads
DEFAULT_MODEL = "flarelight-v2"
#: old name of DEFAULT_MODEL, kept for callers of the first release
DEFAULT_ENSEMBLE = DEFAULT_MODEL


def shipped_models() -> list[str]:
    """Names of the shipped models (folders of ``models/`` holding ``.onnx`` files), sorted."""
    return sorted(p.name for p in MODELS_DIR.iterdir() if p.is_dir() and any(p.glob("*.onnx")))


def model_paths(name: str = DEFAULT_MODEL) -> list[Path]:
    """Member files of the shipped model ``name`` (``models/<name>/*.onnx``, sliding forms excluded)."""
    folder = MODELS_DIR / name
    files = sorted(f for f in folder.glob("*.onnx") if not f.name.endswith(".sliding.onnx"))
    if not files:
        known = shipped_models()
        if name not in known:
            raise ModelFileError(f"no shipped model named {name!r}; shipped: {', '.join(known) or 'none'} "
                                 "(`flarelight models` lists them)")
        raise ModelFileError(f"no .onnx files in {folder}: this installation is incomplete; reinstall flarelight, "
                             "or pass your own .onnx files to FlareModel(paths)")
    return files


def default_model_paths() -> list[Path]:
    """Member files of the shipped default model."""
    return model_paths(DEFAULT_MODEL)


def model_card(name: str = DEFAULT_MODEL) -> str:
    """The model card (Markdown) of a shipped model."""
    card = MODELS_DIR / name / "MODEL_CARD.md"
    if not card.is_file():
        raise ModelFileError(f"no model card for {name!r} in {MODELS_DIR}; shipped: {', '.join(shipped_models())}")
    return card.read_text()


def card_summary(name: str) -> str:
    """The first paragraph of a model card's text (after its title), on one line."""
    lines = model_card(name).splitlines()
    para: list[str] = []
    for line in lines[1:]:
        if not line.strip():
            if para:
                break
            continue
        if line.startswith("#"):
            if para:
                break
            continue
        para.append(line.strip())
    return " ".join(para)
