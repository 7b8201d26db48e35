"""Command-line commands; each module: HELP, add_arguments(parser), run(args) -> exit code."""
