"""The `edgeml` command line: one entry point for the operator and its programs."""

from __future__ import annotations

import argparse
import sys

from edgeml import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `edgeml` and its sub-commands."""
    parser = argparse.ArgumentParser(prog="edgeml", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edgeml {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `edgeml` with `argv` (default: the process arguments); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
