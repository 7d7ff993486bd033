"""One module per ``vcmr`` subcommand: ``add_arguments(parser)`` and ``run(args)``; no logic."""
