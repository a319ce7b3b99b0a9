"""The ``flarelight`` command group: one module per subcommand."""
