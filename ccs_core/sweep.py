"""``python -m ccs_core sweep``: the pipeline over a grid of models x image sets x datasets.

Each (model, image set) is one chain of the headless commands, run as written on the command line
(``cli.main``): ``spans`` -> ``score`` -> ``prune-eval`` on every dataset, each writing its JSON under
``--out-dir/<model>__<images>/``. A step that finished (exit 0) with the same command line and whose
file still reads as its result is skipped (``steps.json`` records them); every step reads the cache,
so an interrupted sweep resumes where it stopped, and changed options (judges, labeller, weights) rerun
what they change. With ``--ray``
the chains run as Ray tasks (one CPU each; a local Ray, or the cluster at ADDRESS / ``RAY_ADDRESS``,
whose nodes share the cache directory); without it, one after another in this process.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path
from typing import Callable

from .cliutil import write_json
from .errors import DataError
from .validate import output_path


def add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="spans, score and prune-eval over models x image sets x datasets")
    p.add_argument("--models", default="toy", help="comma-separated: toy, ViT-B-32, ... (default toy)")
    p.add_argument("--pretrained", default=None, help="one pretrained tag or checkpoint for every model")
    p.add_argument("--images", default="toy", help="comma-separated image specs (spans --images)")
    p.add_argument("--datasets", default="toy:colour", help="comma-separated dataset specs (prune-eval --dataset)")
    p.add_argument("--judges", default=None, help="score --judges (default: offline for the model)")
    p.add_argument("--labeller", default=None, help="score --labeller")
    p.add_argument("--out-dir", required=True, help="one folder per (model, images) chain goes here")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the chains as Ray tasks: a local Ray, or the cluster at ADDRESS (or RAY_ADDRESS)")
    p.set_defaults(func=cmd_sweep)


def slug(text: str) -> str:
    """A folder-safe name of a model or spec ('/data/pets' -> 'data-pets')."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text.strip()).strip("-.") or "x"


def _items(value: str, what: str) -> list[str]:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    if not items:
        raise DataError(f"--{what} names nothing; give one or more, comma-separated.")
    if len(set(items)) != len(items):
        raise DataError(f"--{what} names {next(v for v in items if items.count(v) > 1)!r} twice.")
    return items


def chains(args) -> list[dict]:
    """One chain per (model, images): its folder and the argv of each step, in order."""
    out = []
    for model in _items(args.models, "models"):
        for images in _items(args.images, "images"):
            folder = Path(args.out_dir).expanduser() / f"{slug(model)}__{slug(images)}"
            common = ["--model", model] + (["--pretrained", args.pretrained] if args.pretrained else [])
            steps = [("spans.json", ["spans", *common, "--images", images, "--out", str(folder / "spans.json")])]
            score = ["score", "--spans", str(folder / "spans.json"), "--out", str(folder / "scores.json")]
            score += (["--judges", args.judges] if args.judges else []) + \
                (["--labeller", args.labeller] if args.labeller else [])
            steps.append(("scores.json", score))
            for ds in _items(args.datasets, "datasets"):
                steps.append((f"prune__{slug(ds)}.json", ["prune-eval", *common, "--dataset", ds, "--ccs",
                                                          str(folder / "scores.json"), "--out",
                                                          str(folder / f"prune__{slug(ds)}.json")]))
            out.append({"name": folder.name, "folder": str(folder), "steps": steps})
    names = [c["name"] for c in out]
    if len(set(names)) != len(names):
        raise DataError("Two chains would share a folder (their names differ only in punctuation); rename one.")
    return out


STATE = "steps.json"  # per chain: each finished step's command line and exit code


def _valid(step: str, path: Path) -> bool:
    """The step's output is there and reads as that step's result (not just any JSON)."""
    from .analysis import SpansResult
    from .scores import ScoreResult

    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        if step == "spans.json":
            SpansResult.from_json(obj)
        elif step == "scores.json":
            ScoreResult.from_json(obj)
        else:  # prune-eval / bias: rows, and a summary whose rows name their strategy (the report reads them)
            summary = obj.get("summary") if isinstance(obj, dict) else None
            keys = ("strategy", "attribute") if step.startswith("bias__") else ("strategy",)
            return bool(isinstance(obj.get("rows"), list) and obj["rows"] and isinstance(summary, list) and summary
                        and all(isinstance(r, dict) and all(isinstance(r.get(k), str) for k in keys) for r in summary))
        return True
    except Exception:
        return False


SAID = re.compile(r"^(error: |\S+: exit \d+: |python -m \S+ \S+: error: )")  # a step's own "why it stopped"


class _Said(io.TextIOBase):
    """stderr as it is, remembering the lines that say why a step stopped ("error: ...", "score: exit
    3: ...", argparse's "prog: error: ...")."""

    def __init__(self, stream):
        self.stream, self.lines, self._line = stream, [], ""

    def write(self, text: str) -> int:
        self.stream.write(text)
        *done, self._line = (self._line + text).split("\n")
        self._line = self._line.rsplit("\r", 1)[-1]  # a progress bar's redraws
        self.lines += [s.strip() for s in done if SAID.match(s)]
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def why(self) -> str | None:
        first = next((s for s in self.lines if s.startswith("error: ")), self.lines[-1] if self.lines else None)
        return re.sub(r"^(error: |\S+: exit \d+: )", "", first) if first else None


def _stamp(path: Path):
    try:
        st = path.stat()
        return st.st_ino, st.st_mtime_ns, st.st_size
    except OSError:
        return None


def run_chain(chain: dict, main: Callable[[list[str]], int], quiet: bool = True,
              progress: "Callable[[int, int, str], None] | None" = None, rerun: bool = False,
              independent_after: "int | None" = None) -> list[dict]:
    """The chain's steps in order through ``main`` (the CLI's, given by it: this module does not
    import the CLI). A step is skipped only when it finished with exit 0 under the same command line
    (``steps.json``) and its output still reads as its result; once a step runs, the later ones run
    too (their inputs changed). A step that exits 3 (incomplete) runs again next time, and the chain
    goes on only if it wrote its output (a score with no judge available writes none: the later
    steps would read nothing, or an older run's file); one that fails (exit 1, 2 or 130) stops the
    chain, the rest marked not run. ``progress(i, n, step)`` is told of each step that runs.
    ``rerun``: run every step (each reads the cache, so only what changed is computed: an edited
    input file is seen). ``independent_after`` N: a step after the first N that fails (exit 1 or 2)
    does not stop the others (an interrupt still does). -> one record per step: step, status, code,
    and for a step that ran ``fresh`` (it wrote its output) and ``message`` (why it stopped, in its
    own words) when it did not finish."""
    folder = Path(chain["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
        state = state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        state = {}
    records, failed, ran = [], False, False
    for i, (name, argv) in enumerate(chain["steps"], 1):
        if failed:
            records.append({"step": name, "status": "not run", "code": None})
            continue
        before = state.get(name) if isinstance(state.get(name), dict) else {}  # a hand-edited steps.json
        if not ran and not rerun and before.get("argv") == argv and before.get("code") == 0 and _valid(name, folder / name):
            records.append({"step": name, "status": "done before", "code": 0})
            continue
        if progress:
            progress(i, len(chain["steps"]), name)
        stamp, said = _stamp(folder / name), _Said(sys.stderr)
        try:
            with contextlib.redirect_stderr(said):
                code = main((["-q"] if quiet else []) + argv)
        except SystemExit as exit_:  # argparse refused the step's command line (it has said why)
            code = exit_.code if isinstance(exit_.code, int) else 2
        fresh = _stamp(folder / name) not in (None, stamp) and _valid(name, folder / name)
        ran = True
        failed = code == 130 or (code == 3 and not fresh) or (
            code in (1, 2) and (independent_after is None or i <= independent_after))
        state[name] = {"argv": argv, "code": code}
        write_json(folder / STATE, state)
        record = {"step": name, "status": {0: "ok", 3: "incomplete"}.get(code, "failed"), "code": code, "fresh": fresh}
        if code != 0 and said.why():
            record["message"] = said.why()
        records.append(record)
    return records


def _ray_chain(chain: dict, main: Callable[[list[str]], int]) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    return run_chain(chain, main)


def cmd_sweep(args) -> int:
    grid = chains(args)
    output_path(Path(args.out_dir).expanduser() / "sweep.json", "sweep summary")
    if args.ray is not None:
        from .shards import reachable

        reachable(args.ray or "")
        try:
            import ray
        except ImportError as err:
            raise DataError("--ray needs Ray: pip install 'ray==2.60.0' (or run the sweep without --ray).") from err
        ray.init(address=args.ray or None, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            task = ray.remote(num_cpus=1, max_retries=0)(_ray_chain)
            results = ray.get([task.remote(c, args.main) for c in grid])
        finally:
            ray.shutdown()
    else:
        results = []
        for i, c in enumerate(grid, 1):
            if not args.quiet:
                print(f"sweep: chain {i}/{len(grid)}: {c['name']}", file=sys.stderr)
            results.append(run_chain(c, args.main))
    codes = []
    for c, recs in zip(grid, results):
        print(f"{c['name']}: " + ", ".join(f"{r['step']} {r['status']}" for r in recs))
        codes += [r["code"] for r in recs if r["code"] is not None]
    write_json(Path(args.out_dir).expanduser() / "sweep.json",
               [{"chain": c["name"], "steps": recs} for c, recs in zip(grid, results)])
    # the worst outcome: interrupted, an unexpected error, bad input, an incomplete score, all done
    return next((code for code in (130, 1, 2, 3) if code in codes), 0)
