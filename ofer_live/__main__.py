"""``python -m ofer_live ...`` runs the ``ofer-live`` command line."""

from ofer_live.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
