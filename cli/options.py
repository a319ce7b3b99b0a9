"""Options shared by several subcommands."""
from __future__ import annotations

from pathlib import Path

import click

from flarelight.runtime import FlareModel

model_option = click.option(
    "-m", "--model", "model_paths", multiple=True, type=str,
    help="A shipped model's name (`flarelight models` lists them), or ONNX files or folders (repeatable: an "
         "ensemble). Default: the shipped default model.")
threads_option = click.option("--threads", type=int, default=None, help="CPU threads (default: all cores).")
engine_option = click.option("--engine", type=click.Choice(["auto", "sliding", "windows"]), default="auto",
                             show_default=True,
                             help="sliding: each member once over every segment; windows: window by window "
                                  "(the reference); auto: sliding where every member can.")
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
quality_option = click.option("--quality-bitmask", default="default", show_default=True,
                              help='none, default, hard, hardest, any, or an int.')
flux_column_option = click.option("--flux-column", default="pdcsap_flux", show_default=True,
                                  help="Flux column of the FITS files (pdcsap_flux, sap_flux, flux).")


def scoring_options(command):
    """The options of a command that scores files with a model (``find``, ``predict``): --model, --threads,
    --engine, --quality-bitmask, --flux-column and --overwrite, in that order."""
    for option in reversed((model_option, threads_option, engine_option, quality_option, flux_column_option,
                            overwrite_option)):
        command = option(command)
    return command


def load_model(model_paths: tuple[str, ...], threads: int | None = None, engine: str = "auto") -> FlareModel:
    """The model named on the command line (a shipped name, or files and folders), or the shipped default."""
    from flarelight.models import shipped_models

    if not model_paths:
        return FlareModel.default(threads=threads, engine=engine)
    if len(model_paths) == 1 and not Path(model_paths[0]).exists() and model_paths[0] in shipped_models():
        return FlareModel.named(model_paths[0], threads=threads, engine=engine)
    missing = [p for p in model_paths if not Path(p).exists()]
    if missing:
        raise click.BadParameter(f"{', '.join(missing)}: no such file or folder, and not a shipped model "
                                 f"({', '.join(shipped_models())})", param_hint="--model")
    return FlareModel([Path(p) for p in model_paths], threads=threads, engine=engine)


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing output unless --overwrite was given."""
    if path.exists() and not overwrite:
        raise click.UsageError(f"{path} exists; pass --overwrite to replace it")
