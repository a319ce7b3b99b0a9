"""Shared fixtures: paths to ../shared, and the stella ensemble converted to ONNX at test time."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
DATA = SHARED / "data"
TESS = DATA / "tess"
STELLA_KERAS = sorted((SHARED / "models" / "stella").glob("*.keras"))

#: three real SPOC sectors used for parity (AU Mic S1 with many flares, an EB with a flare, a quiet star)
PARITY_FILES = [
    TESS / "tess2018206045859-s0001-0000000441420236-0120-s_lc.fits",
    TESS / "tess2018206045859-s0001-0000000032150630-0120-s_lc.fits",
    TESS / "tess2019085135100-s0010-0000000093000166-0140-s_lc.fits",
]

HAVE_TF = importlib.util.find_spec("tensorflow") is not None


def shared_path(*parts: str) -> Path:
    """A path under ../shared; fails loudly (not a skip) if the reference data is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"reference data {p} missing: ../shared must sit beside the project root")
    return p


@pytest.fixture(scope="session")
def stella_onnx_dir(tmp_path_factory) -> Path:
    """stella's ten published models converted to flarelight ONNX (by the trainer) in a temp folder."""
    if len(STELLA_KERAS) != 10:
        pytest.fail(f"expected 10 stella models in {SHARED / 'models' / 'stella'}, found {len(STELLA_KERAS)}")
    from flarelight.trainer.export import convert_stella

    out = tmp_path_factory.mktemp("stella_onnx")
    convert_stella(STELLA_KERAS, out)
    return out


@pytest.fixture(scope="session")
def stella_model(stella_onnx_dir):
    from flarelight.runtime import FlareModel

    return FlareModel(stella_onnx_dir)
