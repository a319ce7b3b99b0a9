"""The ``flarelight`` command group: one module per subcommand (needs ``pip install flarelight[cli]``)."""
from __future__ import annotations

import sys


def main() -> None:
    """Console entry point: run the click group, or say which extra to install if click is missing."""
    try:
        import click  # noqa: F401
    except ImportError:
        sys.exit("flarelight's command line needs click: pip install flarelight[cli]")
    from .main import cli

    cli()
