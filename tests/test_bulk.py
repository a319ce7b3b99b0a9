"""Bulk processing (flarelight.runtime.bulk): a 40-file batch of real, simulated and broken files with the
process pool and an in-process Dask cluster against a plain per-file reference; resume, inputs, the
combined catalogue and star table, per-file warnings, dead workers, quiet Dask.

The model is the fast hand-built "peak" model of bulk_helpers (a real file takes milliseconds, not
seconds); the plumbing under test is the same for every model. Signals: tests/test_signals.py."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from flarelight.runtime import FlarelightError, read_catalogue, read_lightcurve
from flarelight.runtime.bulk import FLARES, INDEX, RUN_TABLE, STARS, process_files, read_run_table, resolve_model
from flarelight.runtime.errors import BulkInputError, ModelFileError, SchedulerError
from flarelight.runtime.find import find_flares
from flarelight.runtime.model import FlareModel
from flarelight.runtime.sweep_inputs import expand_inputs

from bulk_helpers import EXPECTED_ERRORS, broken_files, peak_model, write_spoc_like
from conftest import PARITY_FILES

pytest.importorskip("onnx")  # builds the peak model
pytestmark = pytest.mark.filterwarnings("ignore:File may have been truncated")
REAL = PARITY_FILES[1:]  # an EB with a flare (S1) and a quiet star (S10)
OLD = 1_000_000_000  # an mtime (2001) set on outputs to see whether they were rewritten
#: bulk adds these to each catalogue's meta (what a stars.ecsv row needs)
BULK_META = ("camera", "ccd", "n_cadences", "n_used", "observing_d", "source")


def assert_tables_equal(a: Table, b: Table, skip_meta: tuple = ()) -> None:
    assert a.colnames == b.colnames
    for name in a.colnames:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        assert a[name].unit == b[name].unit, name
    strip = lambda m: {k: v for k, v in m.items() if k not in skip_meta}  # noqa: E731
    assert strip(dict(a.meta)) == strip(dict(b.meta))


def run_rows(t: Table, skip: tuple = ()) -> list[tuple]:
    """A run table without its timings and memory (and ``skip``), row by row."""
    return [tuple(r[c] for c in t.colnames if c not in ("seconds", "peak_mb", *skip)) for r in t]


# ----------------------------------------------------------------------------- the 40-file batch
@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return peak_model(tmp_path_factory.mktemp("model") / "peak.onnx")


@pytest.fixture(scope="module")
def model(model_file) -> FlareModel:
    return FlareModel(model_file, threads=1)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> dict[str, Path]:
    """40 inputs in nested folders: 2 real, 29 simulated, 9 broken (name -> path); the kind of a broken
    file is in its name."""
    d = tmp_path_factory.mktemp("batch")
    (d / "sub" / "deeper").mkdir(parents=True)
    files: dict[str, Path] = {}
    for f in REAL:
        files[f.name] = Path(shutil.copy(f, d / f.name))
    for i in range(29):
        where = d if i < 10 else d / "sub" if i < 20 else d / "sub" / "deeper"
        p = write_spoc_like(where / f"sim{i:02d}_lc.fits", i)
        files[p.name] = p
    for kind, p in broken_files(d, files["sim00_lc.fits"]).items():
        files[p.name] = p
    zeroed = d / "zerotime_lc.fits"
    shutil.copy(files["sim01_lc.fits"], zeroed)
    with fits.open(zeroed, mode="update") as h:  # TIME zeroed, checksum cards removed (so TIME is what fails)
        h[1].data["TIME"][500:] = 0.0
        for hdu in h:
            for key in ("CHECKSUM", "DATASUM"):
                hdu.header.remove(key, ignore_missing=True)
    files[zeroed.name] = zeroed
    # fewer cadences than a window
    files["short_lc.fits"] = write_spoc_like(d / "short_lc.fits", 40, n_days=0.25, n_flares=0, n_holes=0)
    f32 = d / "float32time_lc.fits"
    with fits.open(files["sim02_lc.fits"]) as h:
        cols = [fits.Column(name="TIME", format="E", array=h[1].data["TIME"].astype(np.float32))]
        cols += [c for c in h[1].columns if c.name != "TIME"]
        fits.HDUList([fits.PrimaryHDU(header=h[0].header),
                      fits.BinTableHDU.from_columns(cols, header=h[1].header)]).writeto(f32, checksum=True)
    files[f32.name] = f32
    assert len(files) == 40
    return files


EXPECTED = {**{f"{k}": v for k, v in {
    "corrupted_lc.fits": "LightCurveReadError", "truncated_lc.fits": "LightCurveReadError",
    "image_notlc.fits": "LightCurveReadError", "empty_lc.fits": "LightCurveReadError",
    "bitflip_lc.fits": "CorruptFileError", "text_lc.fits": "LightCurveReadError",
    "zerotime_lc.fits": "CorruptFileError", "short_lc.fits": "TooShortError",
    "float32time_lc.fits": "InvalidLightCurveError"}.items()}}
assert set(EXPECTED.values()) >= set(EXPECTED_ERRORS.values())


@pytest.fixture(scope="module")
def reference(batch, model) -> dict[str, object]:
    """The plain path, file by file in this process: name -> (table, lc, scored) or the exception."""
    out = {}
    for name, path in batch.items():
        try:
            lc = read_lightcurve(path)
            scored = model.score(lc)
            out[name] = (find_flares(scored), lc, scored)
        except FlarelightError as exc:
            out[name] = exc
    return out


def test_reference_outcomes_are_the_expected_ones(reference):
    errors = {name: type(r).__name__ for name, r in reference.items() if isinstance(r, Exception)}
    assert errors == EXPECTED
    assert "looks corrupted" in str(reference["zerotime_lc.fits"])
    assert "float32" in str(reference["float32time_lc.fits"])
    assert sum(len(r[0]) for r in reference.values() if isinstance(r, tuple)) > 30  # flares to compare


def check_batch_run(out: Path, run: Table, batch: dict[str, Path], reference: dict) -> None:
    """Every outcome, every catalogue, flares.fits and stars.ecsv against the per-file reference."""
    by_name = {Path(r["file"]).name: r for r in run}
    assert set(by_name) == set(batch) and len(run) == 40
    for name, ref in reference.items():
        row = by_name[name]
        if isinstance(ref, Exception):
            assert (row["status"], row["error_type"], row["n_flares"]) == ("error", type(ref).__name__, -1), name
            assert row["message"] and not (out / row["output"]).exists()
            continue
        table, lc, scored = ref
        assert row["status"] == "ok" and row["n_flares"] == len(table), name
        assert_tables_equal(read_catalogue(out / row["output"]), table, skip_meta=BULK_META)
    assert not list(out.glob(".*part*"))  # no temporaries left behind
    saved = read_run_table(out / RUN_TABLE)
    assert run_rows(saved) == sorted(run_rows(run), key=lambda r: r[-1])  # run.ecsv: by output name

    ok = sorted(name for name, r in reference.items() if isinstance(r, tuple))
    flares = read_catalogue(out / FLARES)
    assert flares.colnames[:6] == ["file", "tic", "sector", "camera", "ccd", "cadence_s"]
    expected_files = [n for n in ok for _ in range(len(reference[n][0]))]
    assert list(flares["file"]) == expected_files
    for name in ok:
        table, lc, _ = reference[name]
        rows = flares[flares["file"] == name]
        for c in table.colnames:
            np.testing.assert_array_equal(rows[c], table[c], err_msg=f"{name} {c}")
        assert set(rows["tic"]) <= {lc.meta["tic"]} and set(rows["camera"]) <= {lc.meta["camera"]}
    assert flares.meta["n_flares"] == len(flares) == sum(len(reference[n][0]) for n in ok)

    stars = Table.read(out / STARS, format="ascii.ecsv")
    assert list(stars["file"]) == ok
    for s in stars:
        table, lc, scored = reference[s["file"]]
        t = lc.time[np.isfinite(lc.time)]
        assert (s["tic"], s["sector"], s["camera"], s["ccd"]) == (lc.meta["tic"], lc.meta["sector"],
                                                                  lc.meta["camera"], lc.meta["ccd"])
        assert s["n_cadences"] == len(lc) and s["n_used"] == scored.prepared.kept.size
        assert s["observing_d"] == pytest.approx(t[-1] - t[0], abs=1e-9)
        assert s["frac_masked"] == pytest.approx(1 - scored.prepared.kept.size / len(lc))
        assert s["n_flares"] == len(table) and s["exposure_d"] == table.meta["exposure_d"]
        assert s["flares_per_day"] == pytest.approx(len(table) / table.meta["exposure_d"])
    assert stars["frac_masked"].max() > 0.05  # the real files: the comparison is not between zeros


@pytest.fixture(scope="module")
def pool_run(batch, model_file, tmp_path_factory) -> tuple[Path, Table]:
    out = tmp_path_factory.mktemp("pool")
    return out, process_files([batch["sim00_lc.fits"].parent], out, model=model_file, workers=2)


def test_batch_with_the_pool(pool_run, batch, reference):
    check_batch_run(*pool_run, batch, reference)


def test_batch_with_local_dask_is_quiet_and_identical(pool_run, batch, reference, model_file, tmp_path, monkeypatch,
                                                       capsys, caplog):
    pytest.importorskip("distributed")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        run = process_files([batch["sim00_lc.fits"].parent], out, model=model_file, workers=2, dask_address="local")
    check_batch_run(out, run, batch, reference)
    assert run_rows(run) == run_rows(pool_run[1])  # warnings too: the same per file in threads as in processes
    assert_tables_equal(read_catalogue(out / FLARES), read_catalogue(pool_run[0] / FLARES))
    assert (out / STARS).read_text() == (pool_run[0] / STARS).read_text()
    assert not list(scratch.iterdir())  # no dask-scratch-space (or anything) left in the temp dir
    assert not [r for r in caplog.records if r.name.startswith("distributed")]
    assert "distributed" not in capsys.readouterr().err


def test_local_cluster_teardown_errors_stay_quiet(monkeypatch, caplog):
    """The in-process cluster's worker can log an ERROR while it closes (its heartbeat racing the closing
    scheduler, dask/distributed#7105), after every result is in: the user sees none of it, while an error
    logged during the run still shows."""
    distributed = pytest.importorskip("distributed")
    from flarelight.runtime.sweep_dask import dask_client, quiet_dask

    real_close = distributed.LocalCluster.close

    def racing_close(self, *args, **kwargs):
        logging.getLogger("distributed.worker").error("Failed to communicate with scheduler during heartbeat.")
        return real_close(self, *args, **kwargs)

    monkeypatch.setattr(distributed.LocalCluster, "close", racing_close)
    with caplog.at_level(logging.INFO), quiet_dask():  # as run_dask does
        with dask_client("local", 1, 10.0) as client:
            assert client.submit(sum, [1, 2]).result() == 3
            logging.getLogger("distributed.worker").error("a real error during the run")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("distributed")]
    assert messages == ["a real error during the run"]


# ----------------------------------------------------------------------------- resume, overwrite, run table
@pytest.fixture(scope="module")
def small(batch) -> list[Path]:
    """Three good simulated files and one broken one."""
    return [batch["sim00_lc.fits"], batch["sim01_lc.fits"], batch["sim02_lc.fits"], batch["truncated_lc.fits"]]


@pytest.fixture(scope="module")
def first(small, model_file, tmp_path_factory) -> tuple[Path, Table]:
    """One in-process run (with probabilities) into a fresh folder."""
    out = tmp_path_factory.mktemp("first")
    return out, process_files(small, out, model=model_file, write_probabilities=True)


@pytest.fixture
def copy(first, tmp_path) -> Path:
    """A copy of the first run's folder, its outputs aged to OLD."""
    out = tmp_path / "out"
    shutil.copytree(first[0], out)
    for p in out.iterdir():
        os.utime(p, (OLD, OLD))
    return out


def test_probabilities_written(first, small, model):
    out, run = first
    assert list(run["status"]) == ["ok", "ok", "ok", "error"]
    for f in small[:3]:
        with np.load(out / f.name.replace(".fits", ".prob.npz")) as npz:
            scored = model.score(read_lightcurve(f))
            np.testing.assert_array_equal(npz["time"], scored.lc.time)
            np.testing.assert_array_equal(npz["prob"], scored.prob)


def test_second_run_skips_before_scheduling_and_leaves_outputs(small, copy, model_file):
    calls = []

    class Progress:
        def begin(self, n_todo, n_skipped):
            calls.append((n_todo, n_skipped))

    run = process_files(small, copy, model=model_file, write_probabilities=True, progress=Progress())
    assert calls == [(1, 3)]  # only the broken file is scheduled again
    assert list(run["status"]) == ["skipped", "skipped", "skipped", "error"]
    assert all(p.stat().st_mtime == OLD for p in copy.glob("*.flares.ecsv"))
    saved = {r["file"]: r for r in read_run_table(copy / RUN_TABLE)}
    assert saved[str(small[0])]["status"] == "ok"  # a skipped file keeps its earlier row
    assert saved[str(small[0])]["n_flares"] >= 0
    for p in copy.glob("*.npz"):  # probabilities asked for but missing: not done
        p.unlink()
    assert list(process_files(small[:1], copy, model=model_file, write_probabilities=True)["status"]) == ["ok"]


def test_overwrite_reprocesses(first, small, copy, model_file):
    run = process_files(small[:1], copy, model=model_file, overwrite=True)
    assert list(run["status"]) == ["ok"]
    cat = copy / small[0].name.replace(".fits", ".flares.ecsv")
    assert cat.stat().st_mtime != OLD
    assert_tables_equal(read_catalogue(cat), read_catalogue(first[0] / cat.name))


def test_run_table_merges_by_output(first, small, copy, model_file):
    (copy / small[1].name.replace(".fits", ".flares.ecsv")).unlink()
    run = process_files([small[1], small[3]], copy, model=model_file)
    merged = {r["file"]: r for r in read_run_table(copy / RUN_TABLE)}
    assert len(merged) == 4
    assert merged[str(small[0])]["status"] == "ok"  # kept from the first run
    assert merged[str(small[1])]["seconds"] == run["seconds"][0]  # replaced by this run's rows
    assert merged[str(small[3])]["seconds"] == run["seconds"][1]


def test_stale_temporaries_of_a_killed_run_are_removed(small, copy, model_file):
    stale = [copy / ".sim00_lc.flares.x1y2z3.part.ecsv", copy / ".sim01_lc.prob.abc.part.npz"]
    other = copy / ".notes.part.txt"
    for p in stale + [other]:
        p.write_text("left by a killed run")
    process_files(small[:2], copy, model=model_file)
    assert not any(p.exists() for p in stale) and other.exists()


def test_combined_outputs_follow_the_catalogues(first, small, copy, model_file):
    """The index never serves a stale summary: a catalogue changed, removed or unknown to the index is read."""
    cat = copy / small[0].name.replace(".fits", ".flares.ecsv")
    t = read_catalogue(cat)
    t.meta["n_used"] = 7
    t.remove_rows(slice(1, None))
    t.write(cat, format="ascii.ecsv", overwrite=True)
    (copy / small[1].name.replace(".fits", ".flares.ecsv")).unlink()
    process_files(small[:1], copy, model=model_file)  # skipped; the combined outputs are rebuilt
    stars = Table.read(copy / STARS, format="ascii.ecsv")
    assert list(stars["file"]) == [small[0].name, small[2].name]
    assert list(stars["n_used"]) == [7, read_catalogue(first[0] / (small[2].name[:-5] + ".flares.ecsv")).meta["n_used"]]
    assert stars["n_flares"][0] == 1
    rebuilt = read_catalogue(copy / FLARES)
    (copy / INDEX).unlink()  # without the index: every catalogue read again, the same result
    process_files(small[:1], copy, model=model_file)
    assert_tables_equal(read_catalogue(copy / FLARES), rebuilt)


# ----------------------------------------------------------------------------- inputs
def test_inputs_folders_globs_and_lists(batch, tmp_path):
    root = batch["sim00_lc.fits"].parent
    assert len(expand_inputs([root])) == 40
    deeper = expand_inputs([str(root / "**" / "sim2*_lc.fits")])
    assert sorted(Path(f).name for f in deeper) == [f"sim{i}_lc.fits" for i in range(20, 29)]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# three files\n{batch['sim00_lc.fits']}\n\n{root / 'sub' / 'deeper'}\n"
                       f"{batch['sim00_lc.fits']}\n")
    got = expand_inputs([f"@{listing}", batch["sim01_lc.fits"]])
    assert [Path(f).name for f in got] == ["sim00_lc.fits"] + [f"sim{i}_lc.fits" for i in range(20, 29)] + \
        ["sim01_lc.fits"]  # the repeated file once
    assert expand_inputs([tmp_path / "missing_lc.fits"]) == [str(tmp_path / "missing_lc.fits")]  # an error row later
    with pytest.raises(BulkInputError, match="no file matches"):
        expand_inputs([str(root / "*.nothing")])
    with pytest.raises(BulkInputError, match="no FITS files"):
        expand_inputs([tmp_path])
    with pytest.raises(BulkInputError, match="cannot read the list"):
        expand_inputs([f"@{tmp_path / 'nope.txt'}"])


def test_duplicate_names_refused_before_anything(batch, tmp_path, model_file):
    twin = tmp_path / "elsewhere" / "sim00_lc.fits"
    twin.parent.mkdir()
    shutil.copy(batch["sim00_lc.fits"], twin)
    with pytest.raises(BulkInputError, match="would both write sim00_lc.flares.ecsv") as exc:
        process_files([batch["sim00_lc.fits"], twin], tmp_path / "out", model=model_file)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_missing_model_fails_fast(small, tmp_path):
    with pytest.raises(ModelFileError, match="nope.onnx"):
        process_files(small[:1], tmp_path / "out", model=[tmp_path / "nope.onnx"])
    assert not (tmp_path / "out").exists()
    from flarelight.models import DEFAULT_MODEL

    assert resolve_model(None) == resolve_model(DEFAULT_MODEL) == tuple(map(str, FlareModel.default().paths))


def test_unreachable_scheduler_is_one_line(small, tmp_path, model_file):
    pytest.importorskip("distributed")
    with pytest.raises(SchedulerError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'") as exc:
        process_files(small[:1], tmp_path / "out", model=model_file, dask_address="tcp://127.0.0.1:9",
                      dask_timeout=1.0)
    assert "\n" not in str(exc.value)


def test_dask_client_or_cluster_object(small, tmp_path, model_file, monkeypatch):
    """An HPC user passes the cluster object (e.g. SLURMCluster) or a Client; the client stays the user's."""
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as cl:
        run = process_files(small[:2], tmp_path / "a", model=model_file, dask_address=cl)
        with distributed.Client(cl) as client:
            again = process_files(small[:2], tmp_path / "b", model=model_file, dask_address=client)
            assert client.status == "running"
    assert list(run["status"]) == list(again["status"]) == ["ok", "ok"]
    assert list(run["n_flares"]) == list(again["n_flares"])


# ----------------------------------------------------------------------------- warnings, dead workers
def test_warnings_are_recorded_per_file_not_printed(batch, tmp_path, model_file, recwarn, capsys):
    """CadenceWarning (a 200-s file) and the task's own warnings land in that file's row, in this process and
    in the threads of a Dask worker, where files run at the same time."""
    slow = tmp_path / "in" / "slowcadence_lc.fits"
    slow.parent.mkdir()
    with fits.open(batch["sim03_lc.fits"]) as h:
        h[1].header["TIMEDEL"] = 200.0 / 86400.0
        h.writeto(slow, checksum=True)
    files = [batch[f"sim0{i}_lc.fits"] for i in range(4, 8)] + [slow]
    run = process_files(files, tmp_path / "serial", model=model_file)
    rows = {Path(r["file"]).name: r for r in run}
    assert "CadenceWarning" in rows[slow.name]["warnings"] and "200 s" in rows[slow.name]["warnings"]
    assert not any(rows[f.name]["warnings"] for f in files[:4])
    modes = [{}]
    if pytest.importorskip("distributed"):
        modes.append({"dask_address": "local", "workers": 3})
    for mode in modes:
        run = process_files(files, tmp_path / f"w{len(mode)}", model=model_file, task="bulk_helpers:warning_task",
                            **mode)
        for r in run:
            name = Path(r["file"]).name
            assert f"UserWarning: test warning for {name}" in r["warnings"]
            assert r["warnings"].count("test warning for") == 1  # no other file's warning
            assert "the same text for every file" in r["warnings"]  # recorded again for every file
    assert not [w for w in recwarn if "test warning" in str(w.message) or "cadence" in str(w.message)]
    assert "Warning" not in capsys.readouterr().err


@pytest.mark.parametrize("runner", ["threads", "dask"])
def test_a_warning_lands_in_its_own_files_row_while_other_threads_work(runner, batch, tmp_path, model_file,
                                                                       model, monkeypatch):
    """Files processed at the same time in threads: the noisy file raises a RuntimeWarning while the quiet file's
    thread is inside the baseline's chunk median, another while it fits a flare, and a VerifyWarning while it writes
    a FITS catalogue. Each lands in the noisy file's row and nowhere else (code on the per-file path that silenced
    warnings with ``warnings.catch_warnings()`` swapped the process-wide filters: the noisy file's warning was lost
    or, with a recording catcher, went to another file), and the quiet file raises none of its own."""
    import concurrent.futures
    import threading

    from astropy.io import fits as fits_module
    from astropy.io.fits.verify import VerifyWarning

    import bulk_helpers
    from flarelight.runtime import flarefit
    from flarelight.runtime.sweep_task import TaskSettings, run_task
    from flarelight.runtime.sweep_warnings import routing

    if runner == "dask":
        pytest.importorskip("distributed")
    meetings = [bulk_helpers.Meeting(RuntimeWarning, "chunk_median"), bulk_helpers.Meeting(RuntimeWarning, "a fit"),
                bulk_helpers.Meeting(VerifyWarning, "a FITS write")]
    monkeypatch.setattr(bulk_helpers, "MEETINGS", meetings)
    monkeypatch.setattr(bulk_helpers, "QUIET", {})
    monkeypatch.setattr(np, "sort", bulk_helpers.hooked(np.sort, meetings[0], caller="chunk_median"))
    monkeypatch.setattr(flarefit, "fit_components", bulk_helpers.hooked(flarefit.fit_components, meetings[1]))
    monkeypatch.setattr(fits_module.connect, "table_to_hdu",
                        bulk_helpers.hooked(fits_module.connect.table_to_hdu, meetings[2]))
    d = tmp_path / "in"
    d.mkdir()
    files = [Path(shutil.copy(batch["sim04_lc.fits"], d / "quiet_lc.fits")),
             Path(shutil.copy(batch["sim05_lc.fits"], d / "noisy_lc.fits")),
             batch["sim06_lc.fits"], batch["sim07_lc.fits"]]
    out = tmp_path / "out"
    if runner == "threads":  # what a threaded Dask worker does with each file, one thread per file
        out.mkdir()
        settings = TaskSettings(out_dir=str(out), model_paths=(str(model_file),))
        with routing(), concurrent.futures.ThreadPoolExecutor(len(files)) as pool:
            rows = list(pool.map(lambda f: run_task(bulk_helpers.meeting_task, str(f), settings, model), files))
    else:
        rows = process_files(files, out, model=model_file, workers=len(files), dask_address="local",
                             task="bulk_helpers:meeting_task")
    assert [m.reached for m in meetings] == [True] * 3  # the noisy file warned while the quiet one was inside
    assert bulk_helpers.QUIET["thread"] != threading.get_ident()
    by_name = {Path(r["file"]).name: r for r in rows}
    assert [by_name[f.name]["status"] for f in files] == ["ok"] * 4
    assert (out / "quiet_lc.fits.copy.fits").exists()
    noisy = by_name["noisy_lc.fits"]["warnings"].split(" | ")
    assert noisy == [f"{m.category.__name__}: noisy_lc.fits warned while another file was in {m.where}"
                     for m in meetings]
    for f in files[0], *files[2:]:
        assert by_name[f.name]["warnings"] == "", f.name


def test_a_dead_worker_costs_only_its_file(batch, tmp_path, model_file):
    """A file that kills its worker every time is one error row; one that kills it once is retried in a fresh
    worker and succeeds; every other file of the run is processed normally (no BrokenProcessPool)."""
    d = tmp_path / "in"
    d.mkdir()
    poison = Path(shutil.copy(batch["sim04_lc.fits"], d / "poison_lc.fits"))
    once = Path(shutil.copy(batch["sim05_lc.fits"], d / "dieonce_lc.fits"))
    normal = [batch[f"sim0{i}_lc.fits"] for i in range(6)]
    files = [normal[0], poison, normal[1], once] + normal[2:]
    run = process_files(files, tmp_path / "out", model=model_file, workers=2, task="bulk_helpers:crashing_task")
    rows = {Path(r["file"]).name: r for r in run}
    assert rows[poison.name]["status"] == "error" and rows[poison.name]["error_type"] == "WorkerDiedError"
    assert "died 2 times" in rows[poison.name]["message"] and "signal 9" in rows[poison.name]["message"]
    assert rows[once.name]["status"] == "ok" and "WorkerDied" in rows[once.name]["warnings"]
    reference = process_files([batch["sim05_lc.fits"]] + normal, tmp_path / "ref", model=model_file)
    for f in normal:
        assert rows[f.name]["status"] == "ok" and not rows[f.name]["warnings"]
        assert_tables_equal(read_catalogue(tmp_path / "out" / rows[f.name]["output"]),
                            read_catalogue(tmp_path / "ref" / rows[f.name]["output"]))
    assert_tables_equal(read_catalogue(tmp_path / "out" / "dieonce_lc.flares.ecsv"),
                        read_catalogue(tmp_path / "ref" / "sim05_lc.flares.ecsv"), skip_meta=("file", "source"))
