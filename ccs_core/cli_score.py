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


def _csv_rows(path: str, columns: set[str], what: str) -> list[tuple[int, dict]]:
    """(line number, row) for each row of a comma-separated file whose header has ``columns``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = [(reader.line_num, r) for r in reader]
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"Cannot read {what} from {path}: {err}.") from err
    if not rows:
        raise DataError(f"{path} has no rows of {what} (a header with {', '.join(sorted(columns))}, then one "
                        "row each).")
    if not columns <= set(header):
        sep = next((c for c in (";", "\t", "|") if any(c in h for h in header)), None)
        hint = (f"; it looks {'tab' if sep == chr(9) else repr(sep)}-separated: save it comma-separated" if sep
                else "; the file must be comma-separated")
        raise DataError(f"{path} needs a header with the columns {', '.join(sorted(columns))} for {what}, but its "
                        f"header reads {','.join(header)!r}{hint} (e.g. {','.join(sorted(columns))} on the first "
                        "line).")
    return rows


def read_labels(path: str | None, heads: "list[str] | None" = None) -> dict[str, str] | None:
    """head -> label from a CSV; a head named twice, one the spans do not have, or a row without a label
    is an error."""
    if not path:
        return None
    out: dict[str, str] = {}
    for line, r in _csv_rows(path, {"head", "label"}, "labels"):
        if not (r.get("label") or "").strip():
            raise DataError(f"{path}, line {line}: head {(r.get('head') or '').strip() or '(none)'} has no label; "
                            "write head,label on every row (e.g. L10.H3,colour), or leave the head out to have "
                            "the labeller label it.")
        h = str(HeadId.parse(r["head"]))
        if h in out:
            raise DataError(f"{path}: head {h} has two labels ({out[h]!r}, {r['label']!r}); give it one.")
        out[h] = r["label"]
    unknown = sorted(set(out) - set(heads)) if heads is not None else []
    if unknown:
        raise DataError(f"{path}: head(s) {', '.join(unknown[:5])} are not in the spans file (it has "
                        f"{len(heads)} heads, e.g. {heads[0]}).")
    return out


def read_examples(path: str | None):
    if not path:
        return None
    from .judges.labels import examples_from_rows

    return examples_from_rows([r for _, r in _csv_rows(path, {"label", "span"}, "few-shot examples")])


def cmd_score(args) -> int:
    """Label and judge; exit 0 only when every head is complete and every requested judge answered
    (else ``INCOMPLETE``, with the output still written with everything received)."""
    from .analysis import SpansResult, run_scores
    from .cliutil import progress_printer, write_json
    from .judges import default_scoring, make_judges
    from .judges.config import describe, settings_from_args
    from .judges.labels import make_labeller
    from .judges.settings import OFFLINE, PROVIDERS

    settings = settings_from_args(args)
    if args.show_settings:
        print(json.dumps(describe(settings), indent=2, ensure_ascii=False))
        return 0
    if not args.out:
        raise DataError("score needs --out FILE.json (where the labels, verdicts and CCS go).")

    output_path(args.out, inputs=[args.spans_file, args.labels, args.examples])
    try:
        spans = SpansResult.from_json(json.loads(Path(args.spans_file).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DataError(f"Cannot read spans from {args.spans_file}: {err}. Write it with "
                        "'python -m ccs_core spans ... --out FILE.json'.") from err
    default_labeller, default_judges, why = default_scoring(spans.model_name, settings=settings)
    if not (args.labeller and args.judges):
        print(f"default labeller/judges for {why}", file=sys.stderr)
    if spans.random_weights:
        print(f"note: {args.spans_file} comes from {spans.model_name} with random weights: the labels and CCS will "
              "describe noise (the pipeline runs; the numbers mean nothing)", file=sys.stderr)
    silent = [h.head for h in spans.heads if h.silent]
    if len(silent) == len(spans.heads):
        raise DataError(f"Every head in {args.spans_file} is marked silent (its output does not vary over the "
                        "images), so there is nothing to judge: analyse images that differ.")
    labels = read_labels(args.labels, [h.head for h in spans.heads])
    quiet_labelled = sorted(set(labels or {}) & set(silent))
    if quiet_labelled:
        print(f"note: --labels names silent head(s) {', '.join(quiet_labelled[:5])}: not judged (their output does "
              "not vary over the images)", file=sys.stderr)
    labeller_kind = args.labeller or default_labeller
    if args.examples and labeller_kind in OFFLINE:  # only the few-shot LLM labeller reads them
        llm_labellers = [*PROVIDERS, *settings.compatible_names()]
        raise DataError(f"--examples gives few-shot examples to an LLM labeller ({', '.join(llm_labellers)}), but "
                        f"the labeller here is {labeller_kind!r}{'' if args.labeller else ' (the default for this model)'}, "
                        "which does not use them; choose one with --labeller openai (or another of those), or "
                        "leave out --examples.")
    examples = read_examples(args.examples)
    labeller = make_labeller(labeller_kind, settings, examples=examples)
    kinds = [k.strip() for k in (args.judges or ",".join(default_judges)).split(",") if k.strip()]
    if not kinds:
        raise DataError(f"--judges {args.judges!r} names no judge; e.g. --judges {','.join(default_judges)}.")
    judges, disabled = make_judges(kinds, settings)
    allowed = {k.strip() for k in args.allow_missing_judges.split(",") if k.strip()}
    if allowed - set(kinds):
        raise DataError(f"--allow-missing-judges names {', '.join(sorted(allowed - set(kinds)))}, which "
                        f"--judges does not ask for ({', '.join(kinds)}).")
    flagged = [item.partition("=")[0].strip().lower() for item in getattr(args, "compatible", None) or []]
    unused = [n for n in flagged if n not in {k.lower() for k in kinds} and n != labeller_kind.lower()]
    if unused:
        print(f"note: --compatible defines {', '.join(unused)}, which neither --judges nor --labeller uses; add it "
              f"there (e.g. --judges {','.join(kinds + unused[:1])}) to ask it", file=sys.stderr)
    for kind, reason in disabled.items():
        print(f"judge {kind} unavailable{' (allowed)' if kind in allowed else ''}: {reason}", file=sys.stderr)
    missing = sorted(set(disabled) - allowed)
    if not judges:  # as when some are unavailable (exit 3), not bad input: the setup lacks a key or endpoint
        print(f"error: no requested judge is available: {'; '.join(disabled.values())}", file=sys.stderr)
        print(f"score: exit {INCOMPLETE}: nothing was judged and nothing written", file=sys.stderr)
        return INCOMPLETE
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
        print(f"score: exit {INCOMPLETE}: " + "; ".join(incomplete_reasons(result, missing)), file=sys.stderr)
        return INCOMPLETE
    return 0


def incomplete_reasons(result, missing: list[str]) -> list[str]:
    """Why ``score`` exits 3, with the first cause of each kind: failed requests (a re-run re-asks
    only those), answers that could not be used (a re-run reuses them), unavailable judges."""
    failed = sorted({e["head"] for e in result.errors})
    unusable = [h for h, r in result.heads.items() if r.ccs is None and h not in failed]
    why = []
    if failed:
        e = result.errors[0]
        why.append(f"{len(failed)} head(s) incomplete because {len(result.errors)} request(s) failed (first: "
                   f"{e['head']}, {e['agent']}: {e['error'][:200]}); re-run the same command to re-ask only those")
    if unusable:
        rec = result.heads[unusable[0]]
        answers = [rec.label_record or {}] + list(rec.verdicts.values())
        first = next((a for a in answers if a.get("status") in ("unparseable", "unsupported")), {})
        why.append(f"{len(unusable)} head(s) incomplete because an answer could not be used (first: {unusable[0]}, "
                   f"{first.get('status', 'no label')}: {str(first.get('problem') or 'no label')[:200]}); a re-run "
                   "reuses those answers: --retry-unparseable asks again, or choose judges that fit this model")
    if missing:
        why.append(f"judge(s) {', '.join(missing)} unavailable (--allow-missing-judges {','.join(missing)} to accept)")
    return why
