"""``flarelight``: the command group. Subcommands live one per module and are imported on demand,
so ``flarelight find`` never imports TensorFlow and ``flarelight train`` only does when run."""
from __future__ import annotations

import importlib
import importlib.util
import logging

import click

#: command name -> "module:function" (modules under flarelight.cli)
COMMANDS = {
    "predict": "flarelight.cli.predict:predict",
    "models": "flarelight.cli.models:models",
    "find": "flarelight.cli.find:find",
    "plot": "flarelight.cli.plot:plot",
    "demo": "flarelight.cli.demo:demo",
    "train": "flarelight.cli.train:train",
    "evaluate": "flarelight.cli.evaluate:evaluate",
    "export": "flarelight.cli.export:export",
    "convert-stella": "flarelight.cli.convert_stella:convert_stella",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, target in COMMANDS.items()
                      if importlib.util.find_spec(target.split(":")[0]) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        if importlib.util.find_spec(module) is None:
            return None
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as exc:  # e.g. `train` without the [train] extra: say what to install
            message = str(exc)

            @click.command(name=name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
                           help=f"(unavailable: {message})", add_help_option=False)
            def unavailable() -> None:
                raise click.ClickException(message)

            return unavailable

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ImportError as exc:  # an optional extra missing at run time (e.g. [train], [plot])
            raise click.ClickException(str(exc)) from exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="flarelight")
def cli(verbose: int, quiet: bool) -> None:
    """flarelight: find stellar flares in TESS light curves with a small CNN."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    cli()
