"""`ofer-live` command line: a thin dispatcher over ofer_live/commands/*.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Module top levels stay light; heavy imports (onnxruntime, mediapipe, torch, Qt) happen inside ``run``.
With no subcommand, ``ofer-live`` opens the desktop app (the ``gui`` command).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence

from ofer_live import __version__
from ofer_live.errors import UserError

# Order shown in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "gui",
    "video",
    "images",
    "bench",
    "demo",
    "doctor",
    "train",
    "export",
    "eval",
)
DEFAULT_COMMAND = "gui"


@functools.cache
def _load_commands() -> dict[str, object]:
    commands = {}
    for name in COMMAND_MODULES:
        try:
            commands[name] = importlib.import_module(f"ofer_live.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"ofer_live.commands.{name}":
                raise
    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ofer-live",
        description="Real-time facial expression recognition under occlusion (Latent-OFER). "
        "With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"ofer-live {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _load_commands().items():
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


GLOBAL_FLAGS = ("-v", "--verbose", "--debug")


def _with_default_command(argv: list[str], commands: set[str]) -> list[str]:
    """Move the global flags to the front and insert the default command when none is named.

    ``ofer-live --source demo`` opens the app on the demo; ``ofer-live demo -o x.avi`` runs ``demo``;
    ``ofer-live video in.mp4 -o out.avi -v`` works like ``ofer-live -v video ...``.
    """
    global_flags = [a for a in argv if a in GLOBAL_FLAGS]
    rest = [a for a in argv if a not in GLOBAL_FLAGS]
    if rest and (rest[0] in commands or rest[0] in ("-h", "--help", "--version")):
        return [*global_flags, *rest]
    return [*global_flags, DEFAULT_COMMAND, *rest]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    argv = _with_default_command(argv, set(_load_commands()))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"ofer-live: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ofer-live: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: one line, traceback only on --debug
        if args.debug:
            traceback.print_exc()
        print(
            f"ofer-live: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
