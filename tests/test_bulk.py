"""Bulk processing (flarelight.runtime.bulk, `flarelight find --out-dir`): real TESS files plus broken ones."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from flarelight.runtime import FlareModel, ModelFileError, find_flares, read_catalogue
from flarelight.runtime.bulk import RUN_TABLE, process_files, read_run_table

from conftest import PARITY_FILES

REAL = PARITY_FILES[1:]  # an EB with a flare (S1, 2 min) and a quiet star (S10)
pytestmark = pytest.mark.filterwarnings("ignore:File may have been truncated")
OLD = 1_000_000_000  # an mtime (2001) set on outputs to see whether they were rewritten


def cat_path(out: Path, f: Path) -> Path:
    return out / f.name.replace(".fits", ".flares.ecsv")


def assert_tables_equal(a: Table, b: Table) -> None:
    assert a.colnames == b.colnames
    for name in a.colnames:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        assert a[name].unit == b[name].unit, name
    assert dict(a.meta) == dict(b.meta)


def run_rows(t: Table) -> list[tuple]:
    """A run table without its timings, row by row."""
    return [tuple(r[c] for c in t.colnames if c != "seconds") for r in t]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    """Two real light curves, a truncated copy of one and a text file named .fits."""
    d = tmp_path_factory.mktemp("inputs")
    truncated = d / "truncated_lc.fits"
    truncated.write_bytes(REAL[0].read_bytes()[: 2880 * 20])
    fake = d / "fake_lc.fits"
    fake.write_text("SIMPLE  = this is not a FITS file\n" * 200)
    return [*REAL, truncated, fake]


@pytest.fixture(scope="module")
def first(inputs, tmp_path_factory) -> tuple[Path, Table]:
    """One in-process run (with probabilities) into a fresh folder."""
    out = tmp_path_factory.mktemp("first")
    return out, process_files(inputs, out, write_probabilities=True, threads_per_worker=2)


@pytest.fixture
def copy(first, tmp_path) -> Path:
    """A copy of the first run's folder, its outputs aged to OLD."""
    out = tmp_path / "out"
    shutil.copytree(first[0], out)
    for p in out.iterdir():
        os.utime(p, (OLD, OLD))
    return out


def test_outputs_match_find_flares(inputs, first):
    out, run = first
    assert list(run["status"]) == ["ok", "ok", "error", "error"]
    assert list(run["file"]) == [str(f) for f in inputs]
    model = FlareModel.default(threads=2)
    for f, row in zip(REAL, run[:2]):
        direct, lc, prob = find_flares(f, model, return_prob=True)
        written = read_catalogue(cat_path(out, f))
        assert_tables_equal(written, direct)
        assert row["n_flares"] == len(direct) and row["output"] == cat_path(out, f).name
        with np.load(out / f.name.replace(".fits", ".prob.npz")) as npz:
            np.testing.assert_array_equal(npz["time"], lc.time)
            np.testing.assert_array_equal(npz["prob"], prob)
    assert sum(run["n_flares"][:2]) > 0  # the comparison is not between empty tables


def test_bad_files_are_error_rows(inputs, first):
    out, run = first
    for row in run[2:]:
        assert row["status"] == "error" and row["error_type"] == "LightCurveReadError"
        assert Path(row["file"]).name in row["message"]
        assert row["n_flares"] == -1
        assert not (out / row["output"]).exists()
    assert not list(out.glob(".*part*"))  # no temporary files left behind


def test_second_run_skips_and_leaves_outputs(inputs, copy):
    run = process_files(inputs, copy, write_probabilities=True)
    assert list(run["status"]) == ["skipped", "skipped", "error", "error"]  # errors are retried
    assert all(p.stat().st_mtime == OLD for p in copy.iterdir() if p.name != RUN_TABLE)
    # without probabilities written before, asking for them now reprocesses
    for p in copy.glob("*.npz"):
        p.unlink()
    assert list(process_files(REAL[:1], copy, write_probabilities=True)["status"]) == ["ok"]


def test_overwrite_reprocesses(first, copy):
    run = process_files(REAL[:1], copy, overwrite=True)
    assert list(run["status"]) == ["ok"]
    assert cat_path(copy, REAL[0]).stat().st_mtime != OLD
    assert_tables_equal(read_catalogue(cat_path(copy, REAL[0])), read_catalogue(cat_path(first[0], REAL[0])))


def test_run_table_round_trips_and_merges(inputs, first, copy):
    saved = read_run_table(first[0] / RUN_TABLE)
    assert run_rows(saved) == run_rows(first[1])
    cat_path(copy, REAL[1]).unlink()
    run = process_files([REAL[1], inputs[3]], copy)  # one re-processed file, one error again
    merged = read_run_table(copy / RUN_TABLE)
    assert len(merged) == 4 and len(set(merged["output"])) == 4
    by_file = {r["file"]: r for r in merged}
    assert by_file[str(REAL[0])]["status"] == "ok"  # kept from the first run
    assert by_file[str(inputs[2])]["error_type"] == "LightCurveReadError"  # kept
    assert by_file[str(REAL[1])]["seconds"] == run["seconds"][0]  # replaced by this run's row
    assert by_file[str(inputs[3])]["seconds"] == run["seconds"][1]


def test_duplicate_names_refused(tmp_path):
    with pytest.raises(ValueError, match="same output"):
        process_files([REAL[0], tmp_path / REAL[0].name], tmp_path / "out")


def test_missing_model_fails_fast(tmp_path):
    with pytest.raises(ModelFileError, match="nope.onnx"):
        process_files(REAL[:1], tmp_path, model_paths=[tmp_path / "nope.onnx"])
    assert not list(tmp_path.iterdir())


def test_two_workers_identical(inputs, first, tmp_path):
    run = process_files(inputs, tmp_path, workers=2)
    assert run_rows(run) == run_rows(first[1])
    for f in REAL:
        assert_tables_equal(read_catalogue(cat_path(tmp_path, f)), read_catalogue(cat_path(first[0], f)))


def test_dask_local_identical(inputs, first, tmp_path):
    pytest.importorskip("distributed")
    run = process_files(inputs, tmp_path, workers=2, dask_address="local")
    assert run_rows(run) == run_rows(first[1])
    for f in REAL:
        assert_tables_equal(read_catalogue(cat_path(tmp_path, f)), read_catalogue(cat_path(first[0], f)))


def test_cli_out_dir(inputs, first, tmp_path):
    from flarelight.cli.main import cli

    args = ["find", str(REAL[0]), str(inputs[3]), "--out-dir", str(tmp_path), "--probabilities"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "1 ok, 0 skipped, 1 error(s)" in result.output and "LightCurveReadError" in result.output
    assert_tables_equal(read_catalogue(cat_path(tmp_path, REAL[0])), read_catalogue(cat_path(first[0], REAL[0])))
    assert (tmp_path / REAL[0].name.replace(".fits", ".prob.npz")).exists()
    result = CliRunner().invoke(cli, args[:2] + args[3:5])
    assert result.exit_code == 0 and "0 ok, 1 skipped, 0 error(s)" in result.output
    result = CliRunner().invoke(cli, args[:2] + args[3:5] + ["-o", str(tmp_path / "x.ecsv")])
    assert result.exit_code == 2 and "mutually exclusive" in result.output
