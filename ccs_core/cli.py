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

def add_spans(sub) -> None:
    p = sub.add_parser("spans", help="TEXTSPAN descriptions of every analysed head")
    p.add_argument("--model", default="toy", help="open_clip architecture, or 'toy' (default)")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag or checkpoint path")
    p.add_argument("--images", default="toy", help="image folder, or 'toy' for the toy world's images")
    p.add_argument("--n-images", type=int, default=512, help="images drawn from the toy world")
    p.add_argument("--layers", type=int, default=4, help="analyse the last N layers")
    p.add_argument("--spans", type=int, default=5, help="descriptions per head")
    p.add_argument("--rank", type=int, default=80)
    p.add_argument("--pool", default=None, help="'bundled', 'toy' or a one-per-line .txt file")
    p.add_argument("--out", required=True, help="output JSON file")
    p.set_defaults(func=cmd_spans)


def cmd_spans(args) -> int:
    from .analysis import SpanParams, resolve_images, resolve_pool, run_spans
    from .models import load_model
    from .store import open_store

    images = resolve_images(args.images, n=args.n_images)  # cheap checks first, then the model
    for path, why in images.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    pool = resolve_pool(args.pool, args.model)
    loaded = load_model(args.model, args.pretrained)
    bar = progress_printer("spans")
    result = run_spans(loaded, images, pool, SpanParams(args.layers, args.spans, args.rank),
                       store=open_store(), progress=lambda msg, f: bar(int(100 * f), 100))
    out = result.to_json()
    out["skipped_images"] = [{"path": p, "reason": r} for p, r in images.skipped]
    write_json(args.out, out)
    print(f"wrote {len(result.heads)} heads to {args.out}", file=sys.stderr)
    return 0


def add_score(sub) -> None:
    p = sub.add_parser("score", help="label and judge every head's spans: CCS and CCS@K")
    p.add_argument("--spans", dest="spans_file", required=True, help="JSON written by 'spans'")
    p.add_argument("--labeller", default=None,
                   help="openai|anthropic|gemini|toy|embedding (default: offline for the model)")
    p.add_argument("--judges", default=None,
                   help="comma-separated: openai,anthropic,gemini,toy,embedding (default: offline)")
    p.add_argument("--retry-unparseable", action="store_true", help="ask again where cached "
                   "answers were unparseable")
    p.add_argument("--out", required=True, help="output JSON file")
    p.set_defaults(func=cmd_score)


def cmd_score(args) -> int:
    from .analysis import SpansResult, run_scores
    from .errors import DataError
    from .judges import make_judges, offline_defaults
    from .labels import make_labeller
    from .store import open_store

    try:
        spans = SpansResult.from_json(json.loads(Path(args.spans_file).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"Cannot read spans from {args.spans_file}: {err}. Write it with "
                        "'python -m ccs_core spans ... --out FILE.json'.") from err
    default_labeller, default_judges = offline_defaults(spans.model_name == "toy")
    labeller = make_labeller(args.labeller or default_labeller)
    kinds = [k.strip() for k in (args.judges or ",".join(default_judges)).split(",") if k.strip()]
    judges, disabled = make_judges(kinds)
    for kind, why in disabled.items():
        print(f"judge {kind} disabled: {why}", file=sys.stderr)
    bar = progress_printer("score")
    result = run_scores(spans, labeller, judges, store=open_store(),
                        progress=lambda msg, f: bar(int(100 * f), 100),
                        retry_unparseable=args.retry_unparseable)
    write_json(args.out, result)
    at_k = ", ".join(f"CCS@{k}={v:.3f}" for k, v in result["ccs_at_k"].items())
    print(f"wrote {result['n_heads']} heads to {args.out}: {at_k}; {result['calls']} new calls, "
          f"{len(result['errors'])} errors", file=sys.stderr)
    return 0


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
