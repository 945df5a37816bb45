"""The `edgeml` command line: one entry point for the operator and its programs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgeml import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `edgeml` and its sub-commands."""
    parser = argparse.ArgumentParser(prog="edgeml", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edgeml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    crds = sub.add_parser("crds", help="write the CRDs generated from the API models")
    crds.add_argument("--output-dir", type=Path, default=Path("crds"))
    crds.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from the models"
    )
    return parser


def _crds(args: argparse.Namespace) -> int:
    from edgeml.api.crds import stale_crds, write_crds

    if args.check:
        stale = stale_crds(args.output_dir)
        for name in stale:
            print(f"{args.output_dir / name} is out of date: run `edgeml crds`", file=sys.stderr)
        return 1 if stale else 0
    for path in write_crds(args.output_dir):
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `edgeml` with `argv` (default: the process arguments); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "crds":
        return _crds(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
