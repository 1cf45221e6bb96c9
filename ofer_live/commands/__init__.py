"""One module per `ofer-live` subcommand (see ofer_live/cli.py)."""
