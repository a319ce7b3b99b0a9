"""``flarelight convert-stella``: stella's published Keras models to flarelight ONNX files."""
from __future__ import annotations

from pathlib import Path

import click

from .deprecated import merge_alias
from .options import check_output, overwrite_option


@click.command("convert-stella")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for one <basename>.onnx per .keras model (required).")
@click.option("-o", "out_dir_old", type=click.Path(file_okay=False, path_type=Path), default=None, hidden=True,
              help="Deprecated alias of --out-dir.")
@overwrite_option
def convert_stella(sources, out_dir, out_dir_old, overwrite):
    """Convert stella .keras models (files, or folders of them) in SOURCES to ONNX files in OUT_DIR.

    Each export is checked against Keras on real-like, random and adversarial windows and refused above
    1e-5; the ONNX metadata carries stella's preprocessing, so `flarelight predict -m OUT_DIR` reproduces stella.
    Members are named stella/s<seed> (the seed in the file name).
    """
    from flarelight.runtime import FlarelightError
    from flarelight.trainer.export import convert_stella as convert
    from flarelight.trainer.progress import progress_bar

    out_dir = merge_alias(out_dir, out_dir_old, "--out-dir", "-o")
    if out_dir is None:
        raise click.UsageError("give --out-dir (the folder for the ONNX files)")
    files: list[Path] = []
    for s in sources:
        found = sorted(s.glob("*.keras")) if s.is_dir() else [s]
        if s.is_dir() and not found:
            raise click.UsageError(f"{s}: folder without .keras files")
        files.extend(found)
    for f in files:
        if f.suffix != ".keras":
            raise click.UsageError(f"{f}: not a .keras file")
        check_output(out_dir / (f.stem + ".onnx"), overwrite)
    try:
        with progress_bar(len(files), "converting stella models") as bar:
            out = convert(files, out_dir, progress=bar)
    except FlarelightError as exc:
        raise click.ClickException(str(exc)) from exc
    for src, dst in zip(files, out):
        click.echo(f"{src.name} -> {dst}")
