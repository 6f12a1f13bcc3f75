"""What every headless command shares: the progress bar on stderr and atomic JSON output."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .errors import DataError


def progress_printer(label: str, quiet: bool = False) -> Callable[..., None]:
    """A progress callback ``(done, total, message="")`` on stderr: on a terminal one updating tqdm line
    per step with rate and ETA; in a log or CI a plain line every 10% of each step (and at its end);
    nothing with ``quiet``. A step is a new message head (the text before " · " or ":") or total."""
    if quiet:
        return lambda done, total, message="": None
    tty = sys.stderr.isatty()
    state: dict = {"step": None, "bar": None, "shown": -1, "t0": time.monotonic()}

    def report(done: int, total: int, message: str = "") -> None:
        step = (message.split(" · ")[0].split(":")[0], total)
        if step != state["step"]:
            if state["bar"] is not None:
                state["bar"].close()
            state.update(step=step, bar=None, shown=-1, t0=time.monotonic())
        desc = f"{label}: {message}" if message else label
        if tty:
            from tqdm import tqdm

            if state["bar"] is None:
                state["bar"] = tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=True)
            bar = state["bar"]
            bar.set_description(desc, refresh=False)
            bar.update(max(0, done - bar.n))
            return
        pct = 100 if done >= total else int(10 * done / max(total, 1)) * 10
        if pct <= state["shown"]:
            return
        state["shown"] = pct
        dt = time.monotonic() - state["t0"]
        rate = done / dt if dt > 0 else 0.0
        eta = f", ETA {(total - done) / rate:.0f} s" if rate > 0 and done < total else ""
        print(f"{desc} {done}/{total} ({pct}%) in {dt:.0f} s{eta}", file=sys.stderr, flush=True)
    return report


def write_json(path: "str | Path", value: Any) -> None:
    """Write JSON atomically (a temp file of this process + rename); a failed write is a DataError
    saying where, and leaves no temp file."""
    path = Path(path).expanduser()
    if path.is_symlink():  # write through the link: the rename below would replace the link itself
        path = path.resolve()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False))
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"Cannot write {path}: {err.strerror or err}. Choose another --out.") from err
