"""Export to ONNX (verified against Keras), pad-mode models, and the train/evaluate/export/convert-stella CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.train

from conftest import DATA, STELLA_KERAS, TESS  # noqa: E402
from flarelight.cli.main import cli  # noqa: E402
from flarelight.runtime import STELLA_PREPROCESSING, FlareModel, ModelMetadata  # noqa: E402

TINY = {"filters": (4, 8), "kernels": (7, 3), "dense": 8}


@pytest.fixture(scope="module")
def pad_member(tmp_path_factory):
    """A tiny 2-channel ("pad" edge mode) model trained 2 epochs, saved and exported."""
    from test_trainer_train import synthetic_set

    from flarelight.trainer.train import save_member, train_model

    lcs, _, ts = synthetic_set(n_stars=4, mode="pad", seed=20)
    out = tmp_path_factory.mktemp("pad")
    m = train_model(ts, 3, epochs=2, batch_size=32, cnn=TINY)
    return lcs, ts, save_member(ts, m, out)


def test_pad_model_scores_cadences_near_gaps(pad_member):
    lcs, ts, m = pad_member
    model = FlareModel(m.onnx_path)
    assert model.preprocessing.edge_mode == "pad" and model.preprocessing.n_channels == 2
    p = model.predict(lcs[0])
    assert np.all(np.isfinite(p[lcs[0].good]))  # every kept cadence, including those near the gap and the ends
    keras_p = np.asarray(m.model.predict(ts.x[:64], verbose=0)).reshape(-1)
    assert np.max(np.abs(model.score_windows(ts.x[:64])[0] - keras_p)) <= 1e-5


def test_export_refuses_a_mismatch(pad_member, tmp_path, monkeypatch):
    from flarelight.trainer import export as ex
    from flarelight.trainer.cnn import build_cnn

    _, ts, m = pad_member
    other = build_cnn(200, 2, seed=99, **TINY)  # different weights: its ONNX disagrees with m.model
    real = ex.to_onnx_proto
    monkeypatch.setattr(ex, "to_onnx_proto", lambda model, opset=17: real(other, opset))
    dest = tmp_path / "bad.onnx"
    with pytest.raises(ex.ExportMismatchError, match="differs from Keras"):
        ex.export_onnx(m.model, dest, ModelMetadata(preprocessing=ts.preprocessing), real_windows=ts.x[:16])
    assert not dest.exists() and not list(tmp_path.iterdir())


def test_export_cli_uses_sidecar_metadata(pad_member, tmp_path):
    _, ts, m = pad_member
    dest = tmp_path / "exported.onnx"
    r = CliRunner().invoke(cli, ["export", str(m.keras_path), "-o", str(dest)])
    assert r.exit_code == 0, r.output
    meta = FlareModel(dest).metadata[0]
    assert meta.training["data_sha256"] == ts.content_hash() and meta.seed == 3
    assert meta.model_id == "model/s3" and "model/s3" in r.output
    assert meta.metrics["onnx_max_abs_diff"] <= 1e-5
    r = CliRunner().invoke(cli, ["export", str(m.keras_path), "-o", str(dest)])
    assert r.exit_code != 0 and "--overwrite" in r.output


def test_convert_stella_cli(tmp_path):
    assert len(STELLA_KERAS) == 10
    src = STELLA_KERAS[0]
    r = CliRunner().invoke(cli, ["convert-stella", str(src), "--out-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    out = tmp_path / (src.stem + ".onnx")
    members = [p.name for p in tmp_path.glob("*.onnx") if not p.name.endswith(".sliding.onnx")]
    assert out.is_file() and members == [out.name]
    model = FlareModel(out)
    assert model.preprocessing == STELLA_PREPROCESSING
    assert model.metadata[0].metrics["onnx_max_abs_diff"] <= 1e-5
    seed = int(src.name.split("_")[1][1:])  # ensemble_s0004_... -> 4
    assert model.metadata[0].model_id == f"stella/s{seed}" and model.metadata[0].seed == seed
    # re-stamping the metadata keeps the member's sliding form in use (same graph, new member bytes)
    from flarelight.trainer.export import restamp

    engine = model.engine
    restamp(out, threshold=0.8)
    again = FlareModel(out)
    assert again.threshold == pytest.approx(0.8) and again.engine == engine
    r = CliRunner().invoke(cli, ["convert-stella", str(src), "--out-dir", str(tmp_path)])
    assert r.exit_code != 0 and "--overwrite" in r.output
    # -o for the folder: a deprecated alias for one release, with a warning
    r = CliRunner().invoke(cli, ["convert-stella", str(src), "-o", str(tmp_path), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert "-o is deprecated" in r.output and "--out-dir" in r.output
    r = CliRunner().invoke(cli, ["convert-stella", str(TESS / "stella_training_npy"), "--out-dir", str(tmp_path)])
    assert r.exit_code != 0 and "without .keras" in r.output
    r = CliRunner().invoke(cli, ["convert-stella", str(src)])
    assert r.exit_code != 0 and "--out-dir" in r.output


def test_train_and_evaluate_cli_on_stella_training_lightcurves(tmp_path):
    files = sorted((TESS / "stella_training_npy").glob("*.npy"))
    cat = DATA / "catalogs" / "guenther2020_flare_catalog.csv"
    out = tmp_path / "models"
    ds = tmp_path / "set.npz"
    args = ["train", *map(str, files), "--labels", str(cat), "--out-dir", str(out), "--epochs", "2", "--filters",
            "4,8", "--dense", "8", "--split", "0.6,0.2,0.2", "--save-dataset", str(ds), "--seed", "1", "--name", "tiny"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    ens = json.loads((out / "ensemble.json").read_text())
    assert ens["members"][0]["seed"] == 1 and (out / "tiny_s0001.onnx").is_file() and ens["model_name"] == "tiny"
    assert FlareModel(out / "tiny_s0001.onnx").model_id == "tiny/s1"
    assert "guenther2020_flare_catalog.csv" in ens["training_set"]["description"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code != 0 and "--overwrite" in r.output
    ev = tmp_path / "eval"
    model = FlareModel(out / "tiny_s0001.onnx")
    r = CliRunner().invoke(cli, ["evaluate", str(files[0]), "--labels", str(cat), "-m", str(out / "tiny_s0001.onnx"),
                                 "--dataset", str(ds), "--out-dir", str(ev), "--threshold", "0.5"])
    assert r.exit_code == 0, r.output
    res = json.loads((ev / "metrics.json").read_text())
    assert res["windows"]["split"] == "test" and res["windows"]["n"] > 0
    assert res["model"] == "tiny/s1" and res["threshold"] == 0.5
    lc_res = res["lightcurves"]
    assert lc_res["event"]["n_true"] > 0 and "find_flares" in lc_res["event_rule"]
    # the events scored are the catalogue's rows for that light curve
    from flarelight.runtime import find_flares
    from flarelight.trainer.stella_format import read_stella_npy

    rows = find_flares(read_stella_npy(files[0]), model, threshold=0.5)
    assert lc_res["event"]["n_pred"] == len(rows) == lc_res["per_lightcurve"][0]["event"]["n_pred"]
    for png in ("windows_pr_curve.png", "windows_confusion.png", "cadences_pr_curve.png"):
        assert (ev / png).is_file()


def test_train_cli_errors(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--out-dir", str(tmp_path)])
    assert r.exit_code != 0 and "FILES" in r.output
    f = sorted((TESS / "stella_training_npy").glob("*.npy"))[:1]
    r = CliRunner().invoke(cli, ["train", str(f[0])])
    assert r.exit_code != 0 and "--out-dir" in r.output
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    r = CliRunner().invoke(cli, ["train", str(f[0]), "--labels", str(empty), "--out-dir", str(tmp_path / "m")])
    assert r.exit_code != 0 and "empty catalogue" in r.output
    # the old names still work for one release (-c/--catalog for --labels, -o for --out-dir), with a warning
    r = CliRunner().invoke(cli, ["train", str(f[0]), "-c", str(empty), "-o", str(tmp_path / "m")])
    assert r.exit_code != 0 and "empty catalogue" in r.output
    assert "-c/--catalog is deprecated" in r.output and "-o is deprecated" in r.output
    r = CliRunner().invoke(cli, ["evaluate", str(f[0]), "--catalog", str(empty), "-o", str(tmp_path / "e")])
    assert r.exit_code != 0 and "empty catalogue" in r.output and "use --labels" in r.output


def test_import_guard_names_the_extra():
    import subprocess
    import sys

    code = "import sys; sys.modules['tensorflow'] = None\nimport flarelight.trainer"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "pip install flarelight[train]" in r.stderr
