"""What every headless command shares: the progress bar on stderr and atomic JSON output."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable


def progress_printer(label: str, quiet: bool = False) -> Callable[[int, int], None]:
    """A progress callback ``(done, total)`` on stderr: on a terminal one updating tqdm line with rate and
    ETA; in a log or CI a plain line every 10% (and at the end); nothing with ``quiet``."""
    if quiet:
        return lambda done, total: None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar: list = [None]

        def live(done: int, total: int) -> None:
            if bar[0] is None or bar[0].total != total:
                if bar[0] is not None:
                    bar[0].close()
                bar[0] = tqdm(total=total, desc=label, file=sys.stderr, dynamic_ncols=True, leave=True)
            bar[0].update(max(0, done - bar[0].n))
            if done >= total:
                bar[0].close()
        return live
    t0, shown = time.monotonic(), [-1]

    def plain(done: int, total: int) -> None:
        step = 100 if done >= total else int(10 * done / max(total, 1)) * 10
        if step <= shown[0]:
            return
        shown[0] = step
        dt = time.monotonic() - t0
        rate = done / dt if dt > 0 else 0.0
        eta = f", ETA {(total - done) / rate:.0f} s" if rate > 0 and done < total else ""
        print(f"{label}: {done}/{total} ({step}%) in {dt:.0f} s{eta}", file=sys.stderr, flush=True)
    return plain


def write_json(path: "str | Path", value: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False))
    tmp.replace(path)
