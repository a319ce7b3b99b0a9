"""flarelight.trainer training: tiny seeded ensembles on synthetic injected flares, saved and exported."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.train

from flarelight.runtime import FlareModel, Preprocessing  # noqa: E402
from flarelight.runtime.simulate import simulate_lightcurve  # noqa: E402
from flarelight.trainer.inject import inject_flares  # noqa: E402
from flarelight.trainer.windows import build_dataset  # noqa: E402

TINY = {"filters": (4, 8), "kernels": (7, 3), "dense": 8}


def synthetic_set(n_stars: int = 6, mode: str = "valid", seed: int = 0):
    lcs, tabs = [], []
    for i in range(n_stars):
        lc, _ = simulate_lightcurve(n_days=5, seed=seed + i, n_flares=0, gap_days=(2.5, 2.8))
        lc.meta["tic"] = 100 + i
        new, tab = inject_flares(lc, 12, seed=seed + i, amplitude=(0.02, 0.3), fwhm_minutes=(6, 40))
        lcs.append(new)
        tabs.append(tab)
    return lcs, tabs, build_dataset(lcs, tabs, Preprocessing(edge_mode=mode), seed=seed,
                                    description="synthetic test set")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from flarelight.trainer.train import train_ensemble

    lcs, tabs, ts = synthetic_set()
    out = tmp_path_factory.mktemp("ens")
    members = train_ensemble(ts, out, seeds=[0, 1], epochs=6, patience=3, batch_size=32, cnn=TINY)
    return lcs, tabs, ts, out, members


def test_loss_decreases_and_history_saved(trained):
    _, _, ts, out, members = trained
    assert len(members) == 2
    for m in members:
        h = json.loads((out / f"model_s{m.seed:04d}.history.json").read_text())
        assert h["seed"] == m.seed and len(h["loss"]) == h["epochs_run"] >= 2
        assert h["loss"][-1] < h["loss"][0]
        assert "val_loss" in h and h["monitor"] == "val_loss"
        assert (out / f"model_s{m.seed:04d}.keras").is_file() and (out / f"model_s{m.seed:04d}.history.png").is_file()
    summary = json.loads((out / "ensemble.json").read_text())
    assert summary["training_set"]["sha256"] == ts.content_hash() and len(summary["members"]) == 2


def test_onnx_metadata_and_runtime_use(trained):
    lcs, _, ts, out, members = trained
    model = FlareModel(out)  # the runtime loads the whole folder as an ensemble
    assert model.n_models == 2 and model.preprocessing == ts.preprocessing
    assert model.model_id == "model (2 members)"
    for meta, m in zip(model.metadata, members):
        assert meta.seed == m.seed and meta.model_id == f"model/s{m.seed}"
        assert meta.training["data_sha256"] == ts.content_hash()
        assert meta.training["description"] == "synthetic test set"
        assert "test_average_precision" in meta.metrics and meta.metrics["onnx_max_abs_diff"] <= 1e-5
        assert meta.flarelight_version
    # ONNX == Keras on held-out real windows, and on a whole light curve through the runtime
    from flarelight.trainer.evaluate import keras_predictor

    test = ts.subset("test")
    onnx = model.score_windows(test.x)
    for k, m in enumerate(members):
        keras_p = np.asarray(m.model.predict(test.x, verbose=0)).reshape(-1)
        assert np.max(np.abs(onnx[k] - keras_p)) <= 1e-5
    p_rt = FlareModel(members[0].onnx_path).predict(lcs[0])
    p_k = keras_predictor(members[0].model, ts.preprocessing)(lcs[0])
    ok = np.isfinite(p_rt)
    assert ok.sum() > 1000 and np.array_equal(ok, np.isfinite(p_k))
    assert np.max(np.abs(p_rt[ok] - p_k[ok])) <= 1e-5


def test_training_is_seeded(trained):
    from flarelight.trainer.train import train_model

    _, _, ts, _, members = trained
    again = train_model(ts, 0, epochs=6, patience=3, batch_size=32, cnn=TINY)
    assert np.allclose(again.history["loss"], members[0].history["loss"], rtol=1e-5)
    assert not np.allclose(members[0].history["loss"], members[1].history["loss"], rtol=1e-5)


def test_evaluation_on_heldout_lightcurves(trained, tmp_path):
    from flarelight.trainer.evaluate import evaluate_lightcurves, write_report

    lcs, tabs, ts, out, _ = trained
    test_stars = set(np.unique(ts.star[ts.split == "test"]))
    idx = [i for i, lc in enumerate(lcs) if lc.meta["tic"] in test_stars]
    model = FlareModel(out)
    res = evaluate_lightcurves(model.predict, [lcs[i] for i in idx], [tabs[i] for i in idx])
    c, e = res["cadence"], res["event"]
    assert c["n"] > 1000 and c["n_positive"] > 0 and 0 <= c["average_precision"] <= 1
    assert e["n_true"] > 0 and e["n_recovered"] <= e["n_true"] and e["n_tp"] <= e["n_pred"]
    paths = write_report(c, np.r_[0, 1, 0, 1], np.r_[0.1, 0.9, 0.4, 0.6], tmp_path)
    assert all(p.is_file() for p in paths) and len(paths) == 3


def test_build_cnn_is_stella_by_default():
    from flarelight.trainer.cnn import ModelConfigError, build_cnn

    m = build_cnn()
    assert m.count_params() == 105_729  # stella's published model
    assert [type(l).__name__ for l in m.layers[1:]] == [
        "Conv1D", "MaxPooling1D", "Dropout", "Conv1D", "MaxPooling1D", "Dropout", "Flatten", "Dense", "Dropout", "Dense"]
    assert tuple(build_cnn(200, 2, **TINY).input_shape) == (None, 200, 2)
    with pytest.raises(ModelConfigError):
        build_cnn(filters=(4,), kernels=(3, 3))


def test_training_needs_a_train_split():
    from flarelight.trainer.train import TrainingError, member_id, train_model
    from flarelight.trainer.trainingset import from_arrays

    ts = from_arrays(np.ones((6, 200), np.float32), [0, 1, 0, 1, 0, 1])
    with pytest.raises(TrainingError, match="no 'train' windows"):
        train_model(ts, 0, epochs=1)
    assert member_id("flarelight-v1", 1000) == "flarelight-v1/s1000"
    with pytest.raises(TrainingError, match="without '/'"):
        member_id("a/b", 1)
