"""Helpers of the bulk tests: short simulated SPOC-like FITS files, broken files, a fast "peak" ONNX
model, and per-file tasks that block, crash or kill their worker (imported by spawned workers by name)."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from flarelight.runtime.simulate import simulate_lightcurve
from flarelight.runtime.sweep_task import TaskSettings, process_one

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- input files
def write_spoc_like(path: Path, seed: int, *, n_days: float = 3.0, n_flares: int = 3, n_holes: int = 2,
                    tic: int | None = None, sector: int = 7, checksum: bool = True) -> Path:
    """A short simulated 2-min light curve in SPOC layout (PRIMARY + LIGHTCURVE, CHECKSUM/DATASUM cards)."""
    lc, _ = simulate_lightcurve(n_days=n_days, seed=seed, n_flares=n_flares, gap_days=(1.4, 1.6), n_holes=n_holes,
                                t0=1500.0 + 30 * seed)
    primary = fits.PrimaryHDU()
    primary.header["TICID"] = tic if tic is not None else 1000 + seed
    primary.header["SECTOR"] = sector
    primary.header["CAMERA"] = 1 + seed % 4
    primary.header["CCD"] = 1 + (seed // 4) % 4
    cols = [fits.Column(name="TIME", format="D", array=lc.time),
            fits.Column(name="PDCSAP_FLUX", format="E", array=lc.flux.astype(np.float32)),
            fits.Column(name="PDCSAP_FLUX_ERR", format="E", array=lc.flux_err.astype(np.float32)),
            fits.Column(name="QUALITY", format="J", array=lc.quality.astype(np.int32))]
    table = fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")
    table.header["TIMEDEL"] = 120.0 / 86400.0
    fits.HDUList([primary, table]).writeto(path, checksum=checksum, overwrite=True)
    return path


def flux_byte(path: Path, row: int = 100) -> int:
    """File offset of a byte inside row ``row``'s PDCSAP_FLUX value (a flip there still parses)."""
    with fits.open(path) as h:
        dtype = h[1].data.dtype
        return h.fileinfo(1)["datLoc"] + row * dtype.itemsize + dtype.fields["PDCSAP_FLUX"][1] + 1


def broken_files(folder: Path, good: Path) -> dict[str, Path]:
    """One file per way an input can be bad, made from ``good``: name -> path (kind is in the name)."""
    raw = good.read_bytes()
    out = {}
    out["corrupted"] = folder / "corrupted_lc.fits"  # header destroyed
    out["corrupted"].write_bytes(b"X" * 2880 + raw[2880:])
    out["truncated"] = folder / "truncated_lc.fits"
    out["truncated"].write_bytes(raw[: len(raw) - 2880 - 1000])
    out["notlc"] = folder / "image_notlc.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((8, 8)))]).writeto(out["notlc"])
    out["empty"] = folder / "empty_lc.fits"
    out["empty"].write_bytes(b"")
    flipped = bytearray(raw)
    flipped[flux_byte(good)] ^= 0x10  # one bit of one flux value
    out["checksum"] = folder / "bitflip_lc.fits"
    out["checksum"].write_bytes(bytes(flipped))
    out["text"] = folder / "text_lc.fits"
    out["text"].write_text("SIMPLE  = this is not a FITS file\n" * 200)
    return out


#: run-table error_type expected for each kind of broken_files
EXPECTED_ERRORS = {"corrupted": "LightCurveReadError", "truncated": "LightCurveReadError",
                   "notlc": "LightCurveReadError", "empty": "LightCurveReadError", "checksum": "CorruptFileError",
                   "text": "LightCurveReadError"}


# ----------------------------------------------------------------------------- a fast model
def peak_model(path: Path, gain: float = 1000.0, bias: float = 10.0) -> Path:
    """sigmoid(gain * (x[centre] - mean(window)) - bias) as a flarelight ONNX file: a 1% excess at the
    centre cadence scores 0.5, so simulated flares are found and quiet stretches are not (fast)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from flarelight.runtime.metadata import METADATA_KEY, ModelMetadata, Preprocessing

    pre = Preprocessing()
    nodes = [
        helper.make_node("Gather", ["window", "centre"], ["x_c"], axis=1),
        helper.make_node("ReduceMean", ["window"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("Sub", ["x_c", "mean"], ["excess"]),
        helper.make_node("Mul", ["excess", "gain"], ["scaled"]),
        helper.make_node("Sub", ["scaled", "bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes, "peak",
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["N", pre.window, 1])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(np.array(pre.offset, np.int64), "centre"),
                     numpy_helper.from_array(np.array([gain], np.float32), "gain"),
                     numpy_helper.from_array(np.array([bias], np.float32), "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = ModelMetadata(preprocessing=pre, model_id="peak/s0", seed=0).to_json()
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


# ----------------------------------------------------------------------------- tasks for the signal tests
def _markers(settings: TaskSettings) -> Path:
    d = Path(settings.out_dir).parent / "markers"
    d.mkdir(exist_ok=True)
    return d


def gated_task(path: str, settings: TaskSettings, model) -> dict:
    """Say "started" (a marker ``<name>.<pid>``), wait for the ``go`` marker, then process the file."""
    markers = _markers(settings)
    (markers / f"{Path(path).name}.{os.getpid()}").touch()
    deadline = time.monotonic() + 120  # a hang guard, never reached when the test opens the gate
    while not (markers / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return process_one(path, settings, model)


def crashing_task(path: str, settings: TaskSettings, model) -> dict:
    """Kill this worker with SIGKILL for files named ``poison*`` (every time) and ``dieonce*`` (the first
    time only); process the others normally."""
    name = Path(path).name
    markers = _markers(settings)
    if name.startswith("poison"):
        os.kill(os.getpid(), signal.SIGKILL)
    if name.startswith("dieonce") and not (markers / f"{name}.died").exists():
        (markers / f"{name}.died").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return process_one(path, settings, model)


def warning_task(path: str, settings: TaskSettings, model) -> dict:
    """Process the file after raising a warning that names it (to check per-file recording)."""
    warnings.warn(f"test warning for {Path(path).name}", UserWarning, stacklevel=1)
    warnings.warn("the same text for every file", UserWarning, stacklevel=1)
    return process_one(path, settings, model)


# ----------------------------------------------------------------------------- per-file warnings in threads
class Meeting:
    """One rendezvous of :func:`meeting_task`: the thread processing the ``quiet*`` file stops inside a hooked
    function (:func:`hooked`: code that used to silence warnings with ``warnings.catch_warnings()``), the ``noisy*``
    file's thread raises a ``category`` warning meanwhile, and the quiet thread goes on."""

    def __init__(self, category: type, where: str) -> None:
        self.category, self.where = category, where
        self.inside, self.done = threading.Event(), threading.Event()
        self.reached = False


#: the meetings of a run, in the order the quiet file reaches them; "thread": the quiet file's thread
MEETINGS: list[Meeting] = []
QUIET: dict = {}
HANG_GUARD = 120.0  # seconds; a guard against a hang, never reached when the threads meet


def hooked(fn, meeting: Meeting, caller: str | None = None):
    """``fn``, stopping the quiet file's thread at its first call (from a function named ``caller``, if given)
    until the noisy file's thread has raised ``meeting``'s warning."""
    def hook(*args, **kwargs):
        if (QUIET.get("thread") == threading.get_ident() and not meeting.inside.is_set()
                and (caller is None or sys._getframe(1).f_code.co_name == caller)):
            meeting.inside.set()
            meeting.done.wait(HANG_GUARD)
        return fn(*args, **kwargs)
    return hook


def meeting_task(path: str, settings: TaskSettings, model) -> dict:
    """Process the file; the ``quiet*`` file also writes its catalogue as FITS, the ``noisy*`` file first raises
    one warning naming itself at each of :data:`MEETINGS`, while the quiet file's thread is inside its hook."""
    name = Path(path).name
    if name.startswith("quiet"):
        QUIET["thread"] = threading.get_ident()
        row = process_one(path, settings, model)
        if row["status"] == "ok":
            from flarelight.runtime.catalogue import read_catalogue, write_catalogue

            out = Path(settings.out_dir)
            write_catalogue(read_catalogue(out / row["output"]), out / f"{name}.copy.fits", overwrite=True)
        return row
    if name.startswith("noisy"):
        for m in MEETINGS:
            m.reached = m.inside.wait(HANG_GUARD)
            warnings.warn(f"{name} warned while another file was in {m.where}", m.category, stacklevel=1)
            m.done.set()
    return process_one(path, settings, model)


# ----------------------------------------------------------------------------- a run in a subprocess
def main(argv: list[str] | None = None) -> None:
    """``python bulk_helpers.py OUT MODEL WORKERS TASK DASK FILE...``: a bulk run for the signal tests (TASK
    "-" is the default per-file function, DASK "-" the process pool). Touches ``markers/stopping`` on a first
    Ctrl-C; exits 130 when interrupted."""
    import sys

    from flarelight.runtime.bulk import RunInterrupted, process_files

    out, model, workers, task, dask, *files = argv if argv is not None else sys.argv[1:]

    class Progress:
        def stopping(self) -> None:
            (Path(out).parent / "markers").mkdir(exist_ok=True)
            (Path(out).parent / "markers" / "stopping").touch()

    try:
        process_files(files, out, model=model, workers=int(workers), task=None if task == "-" else task,
                      dask_address=None if dask == "-" else dask, progress=Progress())
    except RunInterrupted as exc:
        print(exc, file=sys.stderr, flush=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
