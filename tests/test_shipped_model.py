"""The shipped ensemble: loads with its preprocessing contract, matches its model card, and is scored on
held-out real stars (test split only) with the matching rule of ../shared/eval/flare_eval.py."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED
from flarelight.models import MODELS_DIR, default_model_paths, model_card
from flarelight.runtime import FlareModel, find_flares, read_lightcurve

V1 = MODELS_DIR / "flarelight-v1"


@pytest.fixture(scope="module")
def model():
    """flarelight-v1, selectable by name since flarelight-v2 became the default (tests/test_shipped_v2.py)."""
    return FlareModel.named("flarelight-v1")


@pytest.fixture(scope="module")
def flare_eval():
    spec = importlib.util.spec_from_file_location("flare_eval", SHARED / "eval" / "flare_eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_default_model_contract(model):
    assert model.n_models >= 3
    pre = model.preprocessing
    assert (pre.window, pre.offset, pre.edge_mode, pre.normalisation) == (200, 100, "pad", "median+window_noise")
    assert 0.5 <= model.threshold < 1.0
    seeds = [m.seed for m in model.metadata]
    assert len(set(seeds)) == len(seeds)
    for m in model.metadata:
        assert m.training["trainer"] == "flarelight.trainer"
        assert re.fullmatch(r"[0-9a-f]{64}", m.training["data_sha256"])
        assert m.metrics["onnx_max_abs_diff"] <= 1e-5
    other = FlareModel.default()
    assert other is not model and other._sessions[0] is not model._sessions[0]


def test_model_card_lists_every_member_with_its_hash():
    card = model_card()
    for path in default_model_paths():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert path.name in card and digest in card, f"{path.name} or its sha256 missing from MODEL_CARD.md"
    split = json.loads((V1 / "split.json").read_text())
    assert not (set(split["train"]) & set(split["test"])) and not (set(split["val"]) & set(split["test"]))
    assert sum(p.stat().st_size for p in default_model_paths()) < 5e6


def _score(model, flare_eval, status):
    split = set(json.loads((V1 / "split.json").read_text())["test"])
    entries = [e for e in json.load(open(SHARED / "eval" / "dev_manifest.json"))["lightcurves"]
               if e["status"] == status and e["tic"] in split]
    assert entries, f"no {status} test star in the manifest"
    preds = {}
    for e in entries:
        t = find_flares(SHARED / e["file"], model=model)
        starts, stops = np.asarray(t["tstart"]), np.asarray(t["tstop"])
        order = np.argsort(starts)
        assert np.all(starts[order][1:] > stops[order][:-1]), f"overlapping rows in {e['file']}"
        preds[Path(e["file"]).name] = np.column_stack([t["tpeak"], starts, stops]).reshape(-1, 3)
    return flare_eval.evaluate(entries, preds)["pooled"][status]


@pytest.mark.slow
def test_recovers_labelled_flares_on_held_out_stars(model, flare_eval):
    pooled = _score(model, flare_eval, "partial")
    assert pooled["n_true"] >= 20
    assert pooled["recall"] >= 0.6, pooled
    assert pooled["precision"] >= 0.3, pooled
    assert pooled["n_dup"] <= 0.1 * pooled["n_tp"]  # distinct rows inside one long (merged) label interval


@pytest.mark.slow
def test_few_false_positives_on_held_out_flare_free_stars(model, flare_eval):
    pooled = _score(model, flare_eval, "negative")
    assert pooled["exposure_days"] > 50
    assert pooled["fp_per_day"] <= 0.2, pooled


def test_demo_command(tmp_path):
    from flarelight.cli.main import cli

    out = tmp_path / "demo.png"
    res = CliRunner().invoke(cli, ["demo", "-o", str(out)])
    assert res.exit_code == 0, res.output
    found, injected = map(int, re.search(r"recovered (\d+)/(\d+) injected flares", res.output).groups())
    assert injected == 8 and found >= 6
    assert out.stat().st_size > 20000 and out.read_bytes()[:4] == b"\x89PNG"
