"""Options shared by several subcommands."""
from __future__ import annotations

from pathlib import Path

import click

from flarelight.runtime import FlareModel

model_option = click.option(
    "-m", "--model", "model_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
    help="ONNX model file or folder (repeatable; an ensemble). Default: the shipped ensemble.")
threads_option = click.option("--threads", type=int, default=None, help="onnxruntime threads per model.")
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
quality_option = click.option("--quality-bitmask", default="default", show_default=True,
                              help='none, default, hard, hardest, any, or an int.')
flux_column_option = click.option("--flux-column", default="pdcsap_flux", show_default=True,
                                  help="Flux column of the FITS files (pdcsap_flux, sap_flux, flux).")


def load_model(model_paths: tuple[Path, ...], threads: int | None = None) -> FlareModel:
    """The model named on the command line, or the shipped default."""
    return FlareModel(list(model_paths), threads=threads) if model_paths else FlareModel.default(threads=threads)


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing output unless --overwrite was given."""
    if path.exists() and not overwrite:
        raise click.UsageError(f"{path} exists; pass --overwrite to replace it")
