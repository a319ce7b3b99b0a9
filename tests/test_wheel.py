"""The wheel installs into a fresh venv without the `train` extra and predicts without TensorFlow."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from conftest import ROOT, TESS
from onnx_models import linear_model

pytestmark = pytest.mark.slow


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)])
    (whl,) = out.glob("flarelight-*.whl")
    return whl


def test_wheel_contents(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for pkg in ("runtime", "trainer", "models", "cli"):
        assert f"flarelight/{pkg}/__init__.py" in names
    assert not any(n.startswith(("tests/", "bench/", "runtime/")) for n in names)
    shipped = [n for n in names if n.startswith("flarelight/models/") and n.endswith(".onnx")]
    if (ROOT / "models" / "flarelight-v1").is_dir():
        assert shipped, "the shipped ensemble is missing from the wheel"


def pip_install(py: Path, *requirements: str):
    """``pip install`` into the venv of ``py`` with this pip (``--python``: the venv needs no pip of its own, which
    saves bootstrapping one) and without byte-compiling every installed module (the imports compile what they use)."""
    return run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--disable-pip-version-check",
                "--no-compile", *requirements])


def test_fresh_venv_without_train_extra(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    pip_install(py, str(wheel))
    model = linear_model(tmp_path / "lin.onnx")
    script = textwrap.dedent(f"""
        import sys, importlib.util
        import numpy as np
        from flarelight.runtime import FlareModel, read_lightcurve
        for heavy in ("tensorflow", "keras", "click", "matplotlib", "lightkurve"):
            assert importlib.util.find_spec(heavy) is None, heavy + " must not come with the runtime install"
        m = FlareModel({str(model)!r})
        p = m.predict(read_lightcurve({str(TESS / "tess2018206045859-s0001-0000000031740375-0120-s_lc.fits")!r}))
        assert np.isfinite(p).sum() > 10000, np.isfinite(p).sum()
        try:
            import flarelight.trainer
        except ImportError as exc:
            assert "pip install flarelight[train]" in str(exc), exc
        else:
            raise AssertionError("flarelight.trainer imported without the train extra")
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules
        print("OK", int(np.isfinite(p).sum()))
    """)
    res = run([str(py), "-c", script], cwd=tmp_path, env={**os.environ, "PYTHONNOUSERSITE": "1"})
    assert res.stdout.startswith("OK")
    res = subprocess.run([str(env_dir / "bin" / "flarelight"), "--help"], capture_output=True, text=True)
    assert res.returncode == 1 and "pip install flarelight[cli]" in res.stderr, res.stderr
    pip_install(py, f"{wheel}[cli]")
    res = run([str(env_dir / "bin" / "flarelight"), "--help"], cwd=tmp_path)
    assert "predict" in res.stdout and "find" in res.stdout
    res = subprocess.run([str(env_dir / "bin" / "flarelight"), "convert-stella", str(TESS), "-o", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "pip install flarelight[train]" in res.stderr, res.stderr
