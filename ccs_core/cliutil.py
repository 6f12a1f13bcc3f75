"""What every headless command shares: the progress bar on stderr and atomic JSON output."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable


def progress_printer(label: str) -> Callable[[int, int], None]:
    """A progress callback ``(done, total)`` that prints a one-line bar to stderr."""
    last: list = [None]

    def report(done: int, total: int) -> None:
        if last[0] == (done, total):  # e.g. a step's own 100% followed by "ready": print it once
            return
        last[0] = (done, total)
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
