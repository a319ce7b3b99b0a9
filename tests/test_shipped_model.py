"""The shipped ensemble: loads with its preprocessing contract, matches its model card, and is scored on
held-out real stars (test split only) with the matching rule of ../shared/eval/flare_eval.py."""
from __future__ import annotations

import hashlib
import json
import re

import pytest
from click.testing import CliRunner

from conftest import held_out_scores
from flarelight.models import MODELS_DIR, default_model_paths, model_card, model_paths
from flarelight.runtime import FlareModel

V1 = MODELS_DIR / "flarelight-v1"


@pytest.fixture(scope="module")
def model():
    """flarelight-v1, selectable by name since flarelight-v2 became the default (tests/test_shipped_v2.py)."""
    return FlareModel.named("flarelight-v1")


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
    assert other is not model and other.members[0].session is not model.members[0].session


def test_names_say_what_they_are(model):
    assert model.model_id == f"flarelight-v1 ({model.n_models} members)" and "flarelight-v1" in repr(model)
    assert [m.model_id for m in model.metadata] == [f"flarelight-v1/s{m.seed}" for m in model.metadata]
    assert [p.name for p in model.paths] == [f"flarelight-v1_s{m.seed}.onnx" for m in model.metadata]
    assert FlareModel.named("flarelight-v1").paths == model.paths


def test_gap_rule_agrees_across_metadata_card_and_training_record(model):
    """3.5 cadences everywhere (the members were trained with 4.0 and re-stamped; the card and record say so)."""
    assert model.preprocessing.gap_tolerance == 3.5
    card = model_card("flarelight-v1")
    assert "step exceeds 3.5 x the median cadence" in card and "trained with 4.0 and re-stamped" in card
    restamps = json.loads((V1 / "training.json").read_text())["restamps"]
    assert {m["file"] for m in restamps[-1]["members"]} == {p.name for p in model.paths}
    assert all(m["gap_tolerance"] == [4.0, 3.5] for m in restamps[-1]["members"])


@pytest.mark.train
def test_weights_are_those_recorded_in_the_card():
    """The model without its metadata hashes to the 'weights sha256' of the card and the re-stamp record, so a
    metadata re-stamp provably left the trained weights alone."""
    pytest.importorskip("onnx")
    from flarelight.trainer.export import graph_sha256

    card = model_card("flarelight-v1")
    recorded = {m["file"]: m["graph_sha256"] for m in json.loads((V1 / "training.json").read_text())["restamps"][-1]["members"]}
    for path in model_paths("flarelight-v1"):
        g = graph_sha256(path)
        assert g == recorded[path.name] and f"`{g}`" in card


def test_model_card_lists_every_member_with_its_hash():
    card = model_card()
    for path in default_model_paths():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert path.name in card and digest in card, f"{path.name} or its sha256 missing from MODEL_CARD.md"
    split = json.loads((V1 / "split.json").read_text())
    assert not (set(split["train"]) & set(split["test"])) and not (set(split["val"]) & set(split["test"]))
    assert sum(p.stat().st_size for p in default_model_paths()) < 5e6


@pytest.mark.slow
def test_recovers_labelled_flares_on_held_out_stars(model, flare_eval):
    pooled = held_out_scores(model, flare_eval, "partial")
    assert pooled["n_true"] >= 20
    assert pooled["recall"] >= 0.6, pooled
    assert pooled["precision"] >= 0.3, pooled
    assert pooled["n_dup"] <= 0.1 * pooled["n_tp"]  # distinct rows inside one long (merged) label interval


@pytest.mark.slow
def test_few_false_positives_on_held_out_flare_free_stars(model, flare_eval):
    pooled = held_out_scores(model, flare_eval, "negative")
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

