"""Headless commands: ``python -m ccs_core <command> ...``; they write the artifacts the app reads.

Each command is a ``cmd_<name>(args) -> int`` plus an ``add_<name>(subparsers)`` that declares its
arguments. User errors (``CCSError``) print one clear message and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import CCSError


def progress_printer(label: str) -> Callable[[int, int], None]:
    """A progress callback ``(done, total)`` that prints a one-line bar to stderr."""
    def report(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        end = "\n" if done >= total else ""
        print(f"\r{label}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end,
              file=sys.stderr, flush=True)
    return report


def write_json(path: "str | Path", value: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False))
    tmp.replace(path)


# ---- commands (each helper adds its own below: add_<name> + cmd_<name>) -------------------------

# ---- end of commands ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ccs_core",
                                     description="CCS Explorer headless commands")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, obj in sorted(globals().items()):
        if name.startswith("add_") and callable(obj):
            obj(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CCSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
