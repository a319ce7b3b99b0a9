"""The `flarelight` command group: every subcommand the runtime offers, run as a user runs it."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from flarelight.cli.main import cli
from flarelight.runtime import FlareModel
from flarelight.runtime.catalogue import read_catalogue

from lcfiles import small_fits


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lcs")
    return [small_fits(d / "a_lc.fits", 1), small_fits(d / "b_lc.fits", 2)]


def run(*args: str, ok: bool = True):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert res.exit_code == 0, res.output
    return res


def test_every_option_has_help():
    from flarelight.cli.main import COMMANDS, LazyGroup

    group = LazyGroup()
    ctx = cli.make_context("flarelight", ["--help"], resilient_parsing=True)
    for name in COMMANDS:
        cmd = group.get_command(ctx, name)
        assert cmd is not None and cmd.help, name
        for param in cmd.params:
            if param.param_type_name == "option" and not param.hidden:
                assert param.help, f"flarelight {name} {param.opts}: no help text"


def test_find_and_plot(files, tmp_path):
    f, f2 = files
    res = run("find", f)
    assert "tpeak" in res.output
    out = tmp_path / "flares.ecsv"
    bad = tmp_path / "broken_lc.fits"
    bad.write_bytes(b"not a fits file" * 300)
    res = run("find", f, bad, f2, "-o", out, ok=False)
    assert res.exit_code == 1  # one file failed, the others were written
    assert "broken_lc.fits" in res.output
    t = read_catalogue(out)
    assert len(t) > 0 and t.colnames[:3] == ["file", "tic", "sector"]
    assert set(t["file"]) <= {"a_lc.fits", "b_lc.fits"} and len(t.meta["files"]) == 2
    assert t.meta["model_id"] == FlareModel.default().model_id
    res = run("find", f, "-o", out, ok=False)
    assert res.exit_code != 0 and "--overwrite" in res.output
    png = tmp_path / "lc.png"
    pytest.importorskip("matplotlib")
    run("plot", f, "-o", png)
    assert png.stat().st_size > 10_000


def test_predict_writes_probabilities_and_resumes(files, tmp_path):
    out = tmp_path / "probs"
    res = run("predict", *files, "--out-dir", out)
    assert "cadences scored" in res.output
    model = FlareModel.default()
    for f in files:
        with np.load(out / (f.name[:-5] + ".npz")) as z:
            np.testing.assert_array_equal(z["prob"], model.predict(f))
            assert str(z["model_id"]) == model.model_id
    res = run("predict", *files, "--out-dir", out)
    assert res.output.count("skipped (resume)") == 2
    res = run("predict", files[0], "-o", tmp_path / "legacy")
    assert "deprecated" in res.output and (tmp_path / "legacy" / "a_lc.npz").exists()
    res = run("predict", files[0], ok=False)
    assert res.exit_code == 2 and "--out-dir" in res.output


def test_models_and_model_by_name(files):
    from flarelight.models import DEFAULT_MODEL

    res = run("models")
    assert f"{DEFAULT_MODEL} (default)" in res.output and "member" in res.output
    assert "## " in run("models", DEFAULT_MODEL).output
    assert run("models", "nope", ok=False).exit_code == 1
    by_name = run("find", files[0], "--model", DEFAULT_MODEL).output
    assert by_name == run("find", files[0]).output
    res = run("find", files[0], "--model", "no-such-model", ok=False)
    assert res.exit_code == 2 and "not a shipped model" in res.output


def test_demo_runs_on_the_shipped_model(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "demo.png"
    res = run("demo", "-o", png)
    assert f"model: {FlareModel.default().model_id}" in res.output
    assert "recovered" in res.output and png.stat().st_size > 10_000


# ----------------------------------------------------------------------------- find --out-dir (bulk runs)
@pytest.fixture(scope="module")
def bulk_inputs(tmp_path_factory):
    """Three simulated files in nested folders, a checksum-broken copy and a truncated one; the fast peak model."""
    pytest.importorskip("onnx")
    from bulk_helpers import broken_files, peak_model, write_spoc_like

    d = tmp_path_factory.mktemp("bulk")
    (d / "sub").mkdir()
    good = [write_spoc_like(d / "s1_lc.fits", 1), write_spoc_like(d / "sub" / "s2_lc.fits", 2),
            write_spoc_like(d / "sub" / "s3_lc.fits", 3)]
    bad = broken_files(d / "sub", good[0])
    for kind in ("corrupted", "notlc", "empty", "text"):
        bad.pop(kind).unlink()
    return d, good, bad, peak_model(d / "peak.onnx")


def test_find_out_dir_prints_each_error_once_and_a_summary(bulk_inputs, tmp_path):
    d, good, bad, model = bulk_inputs
    out = tmp_path / "out"
    res = run("find", d, "--out-dir", out, "-m", model, ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output
    for f in bad.values():
        assert res.output.count(f.name) == 1  # one line per error, not a log warning and an error line
    assert "CorruptFileError" in res.output and "checksum" in res.output
    assert "3 ok, 0 skipped (done before), 2 error(s)" in res.output and "flares.fits" in res.output
    assert "files/s" not in res.output.split("summary")[0]  # no progress bar when not on a terminal
    assert (out / "flares.fits").exists() and (out / "stars.ecsv").exists()
    res = run("find", d, "--out-dir", out, "-m", model, "-q", ok=False)  # errors only
    assert "3 file(s) already done" not in res.output and "summary" not in res.output
    assert res.output.count("error:") == 2
    res = run("-q", "find", str(d / "sub" / "s*_lc.fits"), f"@{_listing(tmp_path, good[0])}", "--out-dir", out,
              "-m", model)
    assert res.output == ""  # everything done, nothing to say


def _listing(tmp_path, *files):
    p = tmp_path / "inputs.txt"
    p.write_text("# inputs\n" + "\n".join(map(str, files)) + "\n")
    return p


def test_find_checksum_can_be_skipped(bulk_inputs):
    d, good, bad, model = bulk_inputs
    res = run("find", bad["checksum"], "-m", model, ok=False)
    assert res.exit_code == 1 and "--no-verify-checksum" in res.output
    res = run("find", bad["checksum"], "-m", model, "--no-verify-checksum")
    assert "flare" in res.output


def test_find_out_dir_bad_inputs_are_one_line(bulk_inputs, tmp_path):
    d, good, bad, model = bulk_inputs
    twin = tmp_path / "s1_lc.fits"
    twin.write_bytes(good[0].read_bytes())
    res = run("find", good[0], twin, "--out-dir", tmp_path / "out", "-m", model, ok=False)
    assert res.exit_code == 1 and "would both write s1_lc.flares.ecsv" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    res = run("find", str(tmp_path / "*.nothing"), "--out-dir", tmp_path / "out", "-m", model, ok=False)
    assert res.exit_code == 1 and "no file matches" in res.output
    pytest.importorskip("distributed")
    res = run("find", good[0], "--out-dir", tmp_path / "out", "-m", model, "--dask", "tcp://127.0.0.1:9",
              "--dask-timeout", "1", ok=False)
    assert res.exit_code == 1 and "cannot reach the Dask scheduler" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_find_out_dir_with_local_dask_is_quiet_and_leaves_no_scratch(bulk_inputs, tmp_path):
    """In a fresh process (as a user runs it): no distributed log lines, nothing of Dask's in the temp dir."""
    import os
    import subprocess
    import sys

    pytest.importorskip("distributed")
    d, good, bad, model = bulk_inputs
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = subprocess.run([sys.executable, "-c", "from flarelight.cli import main; main()", "find", *map(str, good),
                           "--out-dir", str(tmp_path / "out"), "-m", str(model), "--dask", "local", "--workers", "2"],
                          capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp)}, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "3 ok" in done.stderr and "distributed" not in done.stderr and "INFO" not in done.stderr
    assert not [p for p in tmp.iterdir() if "dask" in p.name or p.is_dir()]


def test_find_keep_all_and_template(bulk_inputs, tmp_path):
    """--keep-all adds the rows vetting rejects (a superset of the default rows); --template mendoza fits the
    Mendoza template (other fits, recorded in the meta); a bulk run passes both to every file's catalogue."""
    d, good, bad, model = bulk_inputs

    def table(*options: str):
        out = tmp_path / f"t{len(list(tmp_path.glob('t*.ecsv')))}.ecsv"
        run("find", good[0], "-m", model, "-o", out, *options)
        return read_catalogue(out)

    default, everything, mendoza = table(), table("--keep-all"), table("--template", "mendoza")
    assert (default.meta["template"], default.meta["keep_all"]) == ("davenport2014", False)
    assert len(default) > 0 and default["vetted"].all()
    assert everything.meta["keep_all"] and len(everything) == everything.meta["n_rows_all"] >= len(default)
    vetted = everything[everything["vetted"]]
    for c in default.colnames:
        np.testing.assert_array_equal(vetted[c], default[c], err_msg=c)
    strict, strict_all = table("--min-snr", "1e9"), table("--min-snr", "1e9", "--keep-all")  # every row low_snr
    assert len(strict) == 0 < len(strict_all) and strict_all["low_snr"].all() and not strict_all["vetted"].any()
    assert mendoza.meta["template"] == "mendoza2022"
    assert len(mendoza) != len(default) or not np.allclose(mendoza["fwhm"], default["fwhm"])
    res = run("find", good[0], "-m", model, "--template", "gaussian", ok=False)
    assert res.exit_code == 2 and "davenport" in res.output and "mendoza" in res.output

    out = tmp_path / "bulk"
    run("find", *good, "--out-dir", out, "-m", model, "--keep-all", "--template", "mendoza", "-q")
    for f in good:
        t = read_catalogue(out / f"{f.name[:-5]}.flares.ecsv")
        assert (t.meta["template"], t.meta["keep_all"]) == ("mendoza2022", True) and len(t) == t.meta["n_rows_all"]
    single = table("--keep-all", "--template", "mendoza")
    np.testing.assert_array_equal(read_catalogue(out / "s1_lc.flares.ecsv")["tpeak"], single["tpeak"])


def test_find_progress_bar_on_a_terminal():
    """On a terminal: files done, files/s, errors so far and ETA; with -q nothing but the error lines."""
    import io

    rich_console = pytest.importorskip("rich.console")
    from flarelight.cli.find_progress import BulkProgress

    rows = [{"file": f"f{i}.fits", "status": "error" if i == 1 else "ok", "error_type": "CorruptFileError",
             "message": f"f{i}.fits: checksum fails"} for i in range(3)]
    for quiet in (False, True):
        progress = BulkProgress(quiet=quiet)
        buf = io.StringIO()
        progress.console = rich_console.Console(file=buf, force_terminal=True, width=150, highlight=False)
        progress.begin(3, 2)
        for row in rows:
            progress.file_done(row)
        progress.close()
        out = buf.getvalue()
        assert out.count("error: f1.fits: CorruptFileError: checksum fails") == 1
        if quiet:
            assert "files/s" not in out and "already done" not in out
        else:
            assert "3/3" in out and "files/s" in out and "1 errors" in out and "ETA" in out
            assert "2 file(s) already done (skipped); 3 to process" in out


def test_find_on_a_file_equals_find_flares_on_its_path(tmp_path):
    """`flarelight find FILE` (which reads the file, then builds the catalogue) gives the rows of find_flares(path):
    the default model's own quality rule applies to both, so AU Mic's ImpulsiveOutlier (512) flare peaks, kept by
    the default model, are in both."""
    from conftest import TESS
    from flarelight.runtime import find_flares, read_lightcurve

    path = TESS / "tess2018206045859-s0001-0000000441420236-0120-s_lc.fits"
    model = FlareModel.default()
    assert not model.preprocessing.quality_bitmask & 512 and (read_lightcurve(path).quality & 512 != 0).sum() > 5
    out = tmp_path / "aumic.ecsv"
    run("find", path, "-o", out)
    cli_rows, direct = read_catalogue(out), find_flares(path, model)
    assert len(direct) > 20 and len(cli_rows) == len(direct)
    np.testing.assert_allclose(np.asarray(cli_rows["tpeak"]), np.asarray(direct["tpeak"]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(cli_rows["ed"]), np.asarray(direct["ed"]), rtol=1e-9)
