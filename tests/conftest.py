"""Shared fixtures: paths to ../shared, and the stella ensemble converted to ONNX at test time."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
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


# ----------------------------------------------------------------------------- trainer and Keras-parity fixtures
@pytest.fixture(scope="session")
def fl_model(stella_onnx_dir):
    """The converted stella ensemble on the per-window engine (the exported graphs themselves, compared with
    Keras here; the sliding engine is compared with this one in tests/test_sliding.py), with an explicit
    modest batch so memory stays bounded beside Keras."""
    from flarelight.runtime import FlareModel

    return FlareModel(stella_onnx_dir, batch_size=1024, engine="windows")


@pytest.fixture(scope="session")
def stella_scored(fl_model):
    """``stella_scored(path)``: ``fl_model.score(path, per_model=True)`` of a real sector, scored once per session
    and shared by the Keras-parity, stella-reference and sliding tests (its arrays are made read-only)."""
    cache = {}

    def get(path):
        key = Path(path).name
        if key not in cache:
            sc = fl_model.score(path, per_model=True)
            for a in (sc.prob, sc.members):
                a.flags.writeable = False
            cache[key] = sc
        return cache[key]

    return get


@pytest.fixture(scope="session")
def keras_models() -> list:
    """stella's ten .keras models loaded with Keras, in the order of STELLA_KERAS."""
    import keras

    return [keras.models.load_model(p, compile=False) for p in STELLA_KERAS]


@pytest.fixture(scope="session")
def keras_predict(keras_models):
    """``keras_predict(k, windows)``: Keras ``predict`` of stella model ``k`` (STELLA_KERAS order), one float32
    score per window (n, 200[, 1]). A window already predicted by model ``k`` in this session (byte-identical
    float32 input, what Keras casts to) is not predicted again: the parity tests compare the same windows of the
    same sectors from independent constructions."""
    import hashlib

    memo = [{} for _ in keras_models]

    def predict(k: int, windows: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(windows, np.float32).reshape(len(windows), -1))
        keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x]
        new = {}
        for i, key in enumerate(keys):
            if key not in memo[k]:
                new.setdefault(key, i)
        if new:
            rows = np.fromiter(new.values(), int, len(new))
            out = np.asarray(keras_models[k].predict(x[rows][:, :, None], batch_size=1024, verbose=0)).reshape(-1)
            memo[k].update(zip(new, out.astype(np.float32)))
        return np.array([memo[k][key] for key in keys], np.float32)

    return predict


@pytest.fixture(scope="session")
def flare_eval():
    """``../shared/eval/flare_eval.py``, the reference matching rule, imported by path (it is not a package)."""
    path = shared_path("eval", "flare_eval.py")
    spec = importlib.util.spec_from_file_location("flare_eval", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------- held-out scoring of shipped models
def group_events(table, name: str = "") -> np.ndarray:
    """One predicted event per flare group of a ``find_flares`` table (the components of a complex flare share
    its ``group``): [tpeak of its strongest component, earliest tstart, latest tstop], an (n, 3) array sorted by
    start. Groups never overlap (asserted)."""
    group = np.asarray(table["group"])
    rows = []
    for g in np.unique(group):
        sel = table[group == g]
        rows.append([float(sel["tpeak"][np.argmax(sel["amplitude"])]), float(np.min(sel["tstart"])),
                     float(np.max(sel["tstop"]))])
    rows = np.asarray(rows, float).reshape(-1, 3)
    rows = rows[np.argsort(rows[:, 1], kind="stable")]
    assert np.all(rows[1:, 1] > rows[:-1, 2]), f"overlapping flare groups in {name}"
    return rows


def held_out_scores(model, flare_eval, status: str) -> dict:
    """flare_eval's pooled scores of ``find_flares`` on the manifest's ``status`` stars of the held-out test split
    (flarelight-v1's split.json, which flarelight-v2 shares), one predicted event per flare group."""
    from flarelight.models import MODELS_DIR
    from flarelight.runtime import find_flares

    split = set(json.loads((MODELS_DIR / "flarelight-v1" / "split.json").read_text())["test"])
    manifest = json.loads(shared_path("eval", "dev_manifest.json").read_text())["lightcurves"]
    entries = [e for e in manifest if e["status"] == status and e["tic"] in split]
    assert entries, f"no {status} test star in the manifest"
    preds = {}
    for e in entries:
        preds[Path(e["file"]).name] = group_events(find_flares(SHARED / e["file"], model=model), e["file"])
    return flare_eval.evaluate(entries, preds)["pooled"][status]
