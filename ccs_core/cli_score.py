"""``python -m ccs_core score``: label and judge every head's spans, CCS and CCS@K, with honest exit
codes (0 complete, ``INCOMPLETE`` = 3 when a head has no CCS or a requested judge is unavailable, 2 on
bad input). The judge settings come from ``judges.config`` (files < environment < these flags)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from .errors import DataError
from .heads import HeadId
from .store import open_store
from .validate import output_path


def add_score(sub) -> None:
    p = sub.add_parser("score", help="label and judge every head's spans: CCS and CCS@K")
    p.add_argument("--spans", dest="spans_file", required=True, help="JSON written by 'spans'")
    p.add_argument("--labeller", default=None,
                   help="openai|anthropic|gemini|toy|embedding (default: offline for the model)")
    p.add_argument("--judges", default=None,
                   help="comma-separated: openai,anthropic,gemini,toy,embedding (default: offline)")
    p.add_argument("--retry-unparseable", action="store_true", help="ask again where cached "
                   "answers were unparseable")
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="your own labels for some heads: CSV with columns head,label (judged as given)")
    p.add_argument("--examples", default=None, metavar="FILE",
                   help="few-shot examples for an LLM labeller: CSV with columns example,label,span")
    p.add_argument("--allow-missing-judges", default="", metavar="KINDS",
                   help="comma-separated judges that may be unavailable (no key) without failing the run")
    p.add_argument("--out", required=False, help="output JSON file (required unless --show-settings)")
    from .judges.config import add_flags

    add_flags(p)
    p.set_defaults(func=cmd_score)


INCOMPLETE = 3  # exit status of 'score' when a head has no CCS or a requested judge is unavailable


def _csv_rows(path: str, columns: set[str], what: str) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"Cannot read {what} from {path}: {err}.") from err
    if not rows or not columns <= set(rows[0]):
        raise DataError(f"{path} needs a header with the columns {', '.join(sorted(columns))} for {what}.")
    return rows


def read_labels(path: str | None) -> dict[str, str] | None:
    if not path:
        return None

    return {str(HeadId.parse(r["head"])): r["label"] for r in _csv_rows(path, {"head", "label"}, "labels")
            if (r.get("label") or "").strip()}


def read_examples(path: str | None):
    if not path:
        return None
    from .judges.labels import examples_from_rows

    return examples_from_rows(_csv_rows(path, {"label", "span"}, "few-shot examples"))


def cmd_score(args) -> int:
    """Label and judge; exit 0 only when every head is complete and every requested judge answered
    (else ``INCOMPLETE``, with the output still written with everything received)."""
    from .analysis import SpansResult, run_scores
    from .cliutil import progress_printer, write_json
    from .judges import default_scoring, make_judges
    from .judges.config import describe, settings_from_args
    from .judges.labels import make_labeller

    settings = settings_from_args(args)
    if args.show_settings:
        print(json.dumps(describe(settings), indent=2))
        return 0
    if not args.out:
        raise DataError("score needs --out FILE.json (where the labels, verdicts and CCS go).")

    output_path(args.out)
    try:
        spans = SpansResult.from_json(json.loads(Path(args.spans_file).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DataError(f"Cannot read spans from {args.spans_file}: {err}. Write it with "
                        "'python -m ccs_core spans ... --out FILE.json'.") from err
    default_labeller, default_judges, why = default_scoring(spans.model_name, settings=settings)
    if not (args.labeller and args.judges):
        print(f"default labeller/judges for {why}", file=sys.stderr)
    labels, examples = read_labels(args.labels), read_examples(args.examples)
    labeller = make_labeller(args.labeller or default_labeller, settings, examples=examples)
    kinds = [k.strip() for k in (args.judges or ",".join(default_judges)).split(",") if k.strip()]
    judges, disabled = make_judges(kinds, settings)
    allowed = {k.strip() for k in args.allow_missing_judges.split(",") if k.strip()}
    for kind, reason in disabled.items():
        print(f"judge {kind} unavailable{' (allowed)' if kind in allowed else ''}: {reason}", file=sys.stderr)
    missing = sorted(set(disabled) - allowed)
    if not judges:
        raise DataError("No requested judge is available: " + "; ".join(disabled.values()))
    bar = progress_printer("score", args.quiet)
    result = run_scores(spans, labeller, judges, store=open_store(),
                        progress=bar,
                        retry_unparseable=args.retry_unparseable, labels=labels)
    result.source["unavailable_judges"] = {k: disabled[k] for k in sorted(disabled)}
    write_json(args.out, result.to_json())
    n, done = result.n_heads, result.n_complete
    unparseable = sum(rec.unparseable for rec in result.heads.values())
    at_k = ", ".join(f"CCS@{k}={v:.3f}" for k, v in result.ccs_at_k.items())
    print(f"wrote {n} heads to {args.out}: {done} complete, {result.n_incomplete} incomplete, "
          f"{unparseable} with an unparseable answer; {result.calls} new calls, {len(result.errors)} "
          f"failed requests; {at_k} (over the {done} complete heads)", file=sys.stderr)
    if result.n_incomplete or missing:
        why = ([f"{result.n_incomplete} head(s) incomplete (re-run the same command to re-ask only "
                "the failed requests)"] if result.n_incomplete else []) + \
              ([f"judge(s) {', '.join(missing)} unavailable (--allow-missing-judges {','.join(missing)} "
                "to accept)"] if missing else [])
        print(f"score: exit {INCOMPLETE}: " + "; ".join(why), file=sys.stderr)
        return INCOMPLETE
    return 0
