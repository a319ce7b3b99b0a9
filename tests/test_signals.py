"""Interrupting a bulk run, literally: SIGINT to the process group (what Ctrl-C sends), SIGKILL to the main
process, to a worker, to the whole run; each run in its own session so the signals reach only it.

Workers in the gated runs block in ``bulk_helpers.gated_task`` until the test opens the gate, so "files in
flight" is exact, not a race. Timeouts here are hang guards, never measurements."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from astropy.table import Table

from flarelight.runtime import read_catalogue
from flarelight.runtime.bulk import FLARES, RUN_TABLE, STARS, process_files, read_run_table

import bulk_helpers
from bulk_helpers import peak_model, write_spoc_like

pytest.importorskip("onnx")  # builds the peak model
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; POSIX signals")
HELPERS = Path(bulk_helpers.__file__)
GUARD = 180.0  # seconds: only ever reached if something hangs


# ----------------------------------------------------------------------------- helpers
def wait_for(predicate, what: str, timeout: float = GUARD, proc: subprocess.Popen | None = None):
    """Poll ``predicate`` until true; fail (after killing ``proc``'s group) if the guard runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None and not predicate():
            pytest.fail(f"the run exited ({proc.returncode}) before {what}: {read(proc)}")
        time.sleep(0.05)
    if proc is not None:
        kill_group(proc)
    pytest.fail(f"hang guard: no {what} after {timeout:.0f} s")


def read(proc: subprocess.Popen) -> str:
    return Path(proc.args_err).read_text() if hasattr(proc, "args_err") else ""


def left_behind(pgid: int, grace: float = 5.0) -> list[int]:
    """Members of the process group still alive ``grace`` seconds after its leader exited (an interpreter helper
    such as multiprocessing's resource tracker exits when the leader's pipe closes, a moment later; a worker left
    behind stays)."""
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return group_members(pgid)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def start(argv: list[str], tmp: Path) -> subprocess.Popen:
    """Run ``argv`` (python arguments) in a new session; its stderr goes to ``tmp/stderr.txt``."""
    err = tmp / f"stderr-{time.monotonic_ns()}.txt"
    proc = subprocess.Popen([sys.executable, *argv], start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=open(err, "w"), cwd=tmp)
    proc.args_err = err
    return proc


def markers(tmp: Path) -> dict[str, list[int]]:
    """Files a gated worker has started -> the pids that started them."""
    out: dict[str, list[int]] = {}
    d = tmp / "markers"
    for p in d.glob("*_lc.fits.*") if d.exists() else []:
        name, _, pid = p.name.rpartition(".")
        out.setdefault(name, []).append(int(pid))
    return out


def ok_rows(out: Path) -> set[str]:
    return {Path(r["file"]).name for r in read_run_table(out / RUN_TABLE) if r["status"] == "ok"}


def catalogues(out: Path) -> set[str]:
    return {p.name.replace(".flares.ecsv", ".fits") for p in out.glob("*.flares.ecsv")}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return peak_model(tmp_path_factory.mktemp("model") / "peak.onnx")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """24 short simulated light curves in one folder."""
    d = tmp_path_factory.mktemp("inputs")
    for i in range(24):
        write_spoc_like(d / f"sim{i:02d}_lc.fits", 100 + i)
    return d


def gated(tmp: Path, model_file: Path, inputs: Path, workers: int = 2, dask: str = "-") -> subprocess.Popen:
    files = sorted(str(p) for p in inputs.glob("*.fits"))[:6]
    return start([str(HELPERS), str(tmp / "out"), str(model_file), str(workers), "bulk_helpers:gated_task", dask,
                  *files], tmp)


# ----------------------------------------------------------------------------- Ctrl-C
@pytest.mark.parametrize("workers,dask", [(2, "-"), (2, "local"), (1, "-")], ids=["pool", "dask", "serial"])
def test_first_ctrl_c_finishes_the_files_in_flight_then_stops(tmp_path, model_file, inputs, workers, dask):
    if dask != "-":
        pytest.importorskip("distributed")
    proc = gated(tmp_path, model_file, inputs, workers=workers, dask=dask)
    wait_for(lambda: len(markers(tmp_path)) >= workers, f"{workers} file(s) in flight", proc=proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group, workers included
    wait_for(lambda: (tmp_path / "markers" / "stopping").exists(), "the stop message", proc=proc)
    time.sleep(0.5)
    assert proc.poll() is None  # still running: it waits for the files in flight
    (tmp_path / "markers" / "go").touch()
    assert proc.wait(timeout=GUARD) == 130
    in_flight = set(markers(tmp_path))
    assert ok_rows(tmp_path / "out") == catalogues(tmp_path / "out") == in_flight
    assert workers <= len(in_flight) < 6  # the files in flight were finished, nothing new was started
    assert f"stopped: {len(in_flight)} of 6 file(s) processed (files in flight finished)" in read(proc)
    for name in in_flight:
        assert len(read_catalogue(tmp_path / "out" / name.replace(".fits", ".flares.ecsv"))) >= 0
    assert left_behind(proc.pid) == []  # no worker left behind


def test_second_ctrl_c_abandons_them_at_once(tmp_path, model_file, inputs):
    proc = gated(tmp_path, model_file, inputs)
    wait_for(lambda: len(markers(tmp_path)) >= 2, "2 files in flight", proc=proc)
    workers = [pid for pids in markers(tmp_path).values() for pid in pids]
    os.killpg(proc.pid, signal.SIGINT)
    wait_for(lambda: (tmp_path / "markers" / "stopping").exists(), "the stop message", proc=proc)
    os.killpg(proc.pid, signal.SIGINT)  # the gate never opens: only a forced stop ends this run
    assert proc.wait(timeout=GUARD) == 130
    assert "files in flight abandoned" in read(proc)
    assert ok_rows(tmp_path / "out") == catalogues(tmp_path / "out") == set()
    assert (tmp_path / "out" / RUN_TABLE).exists()  # written, with what was done (nothing)
    assert not any(alive(pid) for pid in workers) and left_behind(proc.pid) == []
    assert not list((tmp_path / "out").glob(".*part*"))


# ----------------------------------------------------------------------------- deaths
def test_workers_exit_when_the_main_process_is_killed(tmp_path, model_file, inputs):
    proc = gated(tmp_path, model_file, inputs)
    try:
        wait_for(lambda: len(markers(tmp_path)) >= 2, "2 files in flight", proc=proc)
        workers = [pid for pids in markers(tmp_path).values() for pid in pids]
        assert all(alive(pid) for pid in workers)
        os.kill(proc.pid, signal.SIGKILL)  # the main process only (an OOM kill, a batch scheduler)
        proc.wait(timeout=GUARD)
        # blocked at a gate that never opens, they can only leave by noticing their parent is gone
        wait_for(lambda: not any(alive(pid) for pid in workers), "orphaned workers exiting", timeout=60)
    finally:
        kill_group(proc)


def test_a_worker_killed_mid_file_costs_nothing(tmp_path, model_file, inputs):
    """SIGKILL one busy worker: its file is retried in a fresh worker, every file ends ok."""
    files = sorted(inputs.glob("*.fits"))[:5]
    killed: dict[str, int] = {}

    def kill_one() -> None:
        wait_for(lambda: len(markers(tmp_path)) >= 2, "2 files in flight", timeout=GUARD)
        name, pids = sorted(markers(tmp_path).items())[0]
        killed[name] = pids[0]
        os.kill(pids[0], signal.SIGKILL)
        wait_for(lambda: len(markers(tmp_path).get(name, [])) == 2, "the retry in a fresh worker", timeout=GUARD)
        (tmp_path / "markers" / "go").touch()

    t = threading.Thread(target=kill_one, daemon=True)
    t.start()
    run = process_files(files, tmp_path / "out", model=model_file, workers=2, task="bulk_helpers:gated_task")
    t.join(timeout=GUARD)
    (name, pid), = killed.items()
    assert list(run["status"]) == ["ok"] * 5
    row = run[[Path(f).name == name for f in run["file"]]][0]
    assert "killed by signal 9" in row["warnings"]
    retry_pid = [p for p in markers(tmp_path)[name] if p != pid]
    assert len(retry_pid) == 1 and retry_pid[0] != pid
    reference = process_files([inputs / name], tmp_path / "ref", model=model_file)
    assert reference["n_flares"][0] == row["n_flares"]


# ----------------------------------------------------------------------------- the command line
def cli(tmp: Path, inputs: Path, model_file: Path, out: str = "out") -> subprocess.Popen:
    return start(["-c", "from flarelight.cli import main; main()", "find", str(inputs), "--out-dir", str(tmp / out),
                  "-m", str(model_file), "--workers", "2"], tmp)


def test_cli_ctrl_c_stops_a_real_run(tmp_path, model_file, inputs):
    proc = cli(tmp_path, inputs, model_file)
    wait_for(lambda: catalogues(tmp_path / "out"), "a first catalogue", proc=proc)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=GUARD) == 130
    err = read(proc)
    assert "stopped:" in err and "Run the same command again to resume" in err and "Traceback" not in err
    done = catalogues(tmp_path / "out")
    assert ok_rows(tmp_path / "out") == done and 1 <= len(done) < 24
    assert left_behind(proc.pid) == []


def test_kill_9_of_the_whole_run_then_resume_is_exact(tmp_path, model_file, inputs):
    proc = cli(tmp_path, inputs, model_file)
    wait_for(lambda: len(catalogues(tmp_path / "out")) >= 3, "3 catalogues", proc=proc)
    os.killpg(proc.pid, signal.SIGKILL)  # main and workers, mid-run
    proc.wait(timeout=GUARD)
    wait_for(lambda: group_members(proc.pid) == [], "the killed run to be gone", timeout=60)
    assert len(catalogues(tmp_path / "out")) < 24  # it was killed part-way
    resumed = process_files([inputs], tmp_path / "out", model=model_file)
    assert set(resumed["status"]) <= {"ok", "skipped"} and "skipped" in set(resumed["status"])
    process_files([inputs], tmp_path / "ref", model=model_file)  # uninterrupted
    a, b = read_catalogue(tmp_path / "out" / FLARES), read_catalogue(tmp_path / "ref" / FLARES)
    assert len(a) > 24 and a.colnames == b.colnames and dict(a.meta) == dict(b.meta)
    for c in a.colnames:
        assert (a[c] == b[c]).all(), c
    assert (tmp_path / "out" / STARS).read_text() == (tmp_path / "ref" / STARS).read_text()
    assert len(Table.read(tmp_path / "out" / STARS, format="ascii.ecsv")) == 24
    assert len(read_run_table(tmp_path / "out" / RUN_TABLE)) == 24
