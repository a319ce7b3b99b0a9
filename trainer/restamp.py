"""Re-stamp the metadata of a shipped model's members without touching their weights, and prove it.

    python -m flarelight.trainer.restamp models/flarelight-v1 --name flarelight-v1 --gap-tolerance 3.5

For every member (``*.onnx`` in the folder; sliding forms follow their member) the member id becomes ``<name>/s<seed>`` and, if asked, the gap
tolerance changes; :func:`flarelight.trainer.export.graph_sha256` (the model without its metadata) must be
the same before and after, or the file is restored and the command fails. The change is appended to the
folder's ``training.json`` under ``restamps``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from flarelight.runtime.errors import ModelFileError
from flarelight.runtime.jsonio import write_json

from .export import graph_sha256, read_metadata, restamp
from .train import member_id


def restamp_model(folder: Path, name: str, gap_tolerance: float | None = None, note: str = "") -> dict[str, Any]:
    """Re-stamp every member of ``folder``; returns the record appended to ``training.json``.

    Raises
    ------
    ModelFileError
        A member without a seed, or whose graph changed (that member is restored first).
    """
    files = sorted(f for f in Path(folder).glob("*.onnx") if not f.name.endswith(".sliding.onnx"))
    if not files:
        raise ModelFileError(f"{folder}: no .onnx files to re-stamp")
    members = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            old = read_metadata(f)
            if old.seed is None:
                raise ModelFileError(f"{f}: no seed in its metadata, so no <name>/s<seed> id")
            changes: dict[str, Any] = {"model_id": member_id(name, old.seed)}
            if gap_tolerance is not None:
                changes["preprocessing"] = old.preprocessing.replace(gap_tolerance=float(gap_tolerance))
            backup = Path(tmp) / f.name
            shutil.copy2(f, backup)
            before = graph_sha256(f)
            new = restamp(f, **changes)
            after = graph_sha256(f)
            if after != before:
                shutil.copy2(backup, f)
                raise ModelFileError(f"{f}: the model changed while re-stamping its metadata (graph sha256 {before} "
                                     f"-> {after}); restored")
            members.append({"file": f.name, "graph_sha256": after, "model_id": [old.model_id, new.model_id],
                            "gap_tolerance": [old.preprocessing.gap_tolerance, new.preprocessing.gap_tolerance]})
    record = {"date": datetime.date.today().isoformat(), "what": "metadata re-stamped, weights unchanged",
              "note": note, "members": members}
    rec_path = Path(folder) / "training.json"
    if rec_path.is_file():
        doc = json.loads(rec_path.read_text())
        doc.setdefault("restamps", []).append(record)
        write_json(rec_path, doc)
    return record


def main(argv: list[str] | None = None) -> None:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path, help="the model's folder (e.g. models/flarelight-v1)")
    ap.add_argument("--name", required=True, help="the model's name: member ids become <name>/s<seed>")
    ap.add_argument("--gap-tolerance", type=float, default=None, help="new Preprocessing.gap_tolerance")
    ap.add_argument("--note", default="", help="why (recorded in training.json)")
    a = ap.parse_args(argv)
    rec = restamp_model(a.folder, a.name, a.gap_tolerance, a.note)
    for m in rec["members"]:
        print(f"{m['file']}: {m['model_id'][0]} -> {m['model_id'][1]}, gap_tolerance {m['gap_tolerance'][0]} -> "
              f"{m['gap_tolerance'][1]}, graph sha256 {m['graph_sha256'][:16]} unchanged")


if __name__ == "__main__":
    main()
