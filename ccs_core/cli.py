"""Headless commands: ``python -m ccs_core <command> ...``; they write the artifacts the app reads.

Each command is a ``cmd_<name>(args) -> int`` plus an ``add_<name>(subparsers)`` that declares its
arguments. User errors (``CCSError``) print one clear message and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from .cli_score import INCOMPLETE, add_score  # noqa: F401  (the score command: its own module; INCOMPLETE: exit 3)
from .cliutil import (add_precision, add_workers, check_precision_device, dataset_paths, progress_printer,
                      toy_count, workers, write_json)
from .datasets import is_toy_spec
from .store import open_store
from .validate import output_path, positive, read_lines
from .errors import CCSError, DataError


# ---- commands (each helper adds its own below: add_<name> + cmd_<name>) -------------------------

def add_spans(sub) -> None:
    p = sub.add_parser("spans", help="TEXTSPAN descriptions of every analysed head")
    p.add_argument("--model", default="toy", help="open_clip architecture, or 'toy' (default)")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag or checkpoint path")
    p.add_argument("--images", default="toy", help="image folder, or the toy world's images: toy, toy:split=val, toy-hard")
    p.add_argument("--n-images", type=int, default=None,
                   help="images drawn from the toy world (default 256, as the app; a folder's images are all used)")
    p.add_argument("--layers", type=int, default=4, help="analyse the last N layers")
    p.add_argument("--spans", type=int, default=5, help="descriptions per head")
    p.add_argument("--rank", type=int, default=80)
    p.add_argument("--pool", default=None, help="'bundled', 'toy' or a one-per-line .txt file")
    p.add_argument("--device", default="auto",
                   help="auto (default: the first of cuda, mps, cpu available), cpu, cuda, cuda:N or mps")
    add_precision(p, "the decomposition's forward pass")
    p.add_argument("--protocol", default="standard", choices=["standard", "paper"],
                   help="recorded in the JSON; paper also decomposes under Gandelsman's convention (--norm "
                        "gandelsman), standard (default) under the project's (own-mean)")
    p.add_argument("--norm", default=None, choices=["own-mean", "gandelsman"],
                   help="the decomposition's convention: own-mean (each term centred by its own mean) or "
                        "gandelsman (TEXTSPAN's code: shared mean and bias, divided by the embedding norm); "
                        "default: the protocol's")
    add_workers(p)
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="decompose in shards as Ray tasks: a local Ray, or the cluster at ADDRESS (or RAY_ADDRESS); "
                        "the same spans as without it (needs: pip install ray)")
    p.add_argument("--shards", type=int, default=None, help="with --ray: number of shards (default: the CPUs)")
    p.add_argument("--out", required=True, help="output JSON file")
    p.set_defaults(func=cmd_spans)


def cmd_spans(args) -> int:
    """A warm re-run reads the stored spans through the model's manifest without importing torch or
    building the model; otherwise the model loads (and its manifest is stored for next time)."""
    from .analysis import SpanParams, SpansResult, resolve_images, resolve_pool, run_spans, spans_key
    from .modelref import read_manifest, write_manifest

    output_path(args.out, inputs=[args.pool, args.images], folders=[] if is_toy_spec(args.images) else [args.images])
    n = toy_count(args, args.images, 256)
    images = resolve_images(args.images, n=n)  # cheap checks first, then the model
    images.workers = workers(args)
    check_precision_device(args)
    if args.shards is not None and (args.ray is None or args.shards < 1):
        raise DataError("--shards N (at least 1) goes with --ray: it splits the images into N Ray tasks.")
    if args.ray is not None:
        from .shards import reachable

        reachable(args.ray or os.environ.get("RAY_ADDRESS", ""))  # before the model loads
    for path, why in images.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    pool = resolve_pool(args.pool, args.model)
    norm = args.norm or protocol_of(args).norm
    params, store = SpanParams(args.layers, args.spans, args.rank, args.precision, norm), open_store()
    ref = read_manifest(store, args.model, args.pretrained)
    # a warm start (no model load, no torch) only for cpu or auto, which always resolve: a named GPU is
    # checked by the load (no silent cache read for --device cuda on a machine without one). The model's
    # key and manifest never depend on the device, so a read keyed on a CPU load is right under auto too.
    warm = ref is not None and (args.device or "auto").strip().lower() in ("cpu", "auto")
    hit = SpansResult.from_cache(store.get("spans", spans_key(ref, images, pool, params))) if warm else None
    if hit is not None:
        result = replace(hit, image_set=images.name, pool=pool.name,  # same content, maybe new names
                         protocol=args.protocol, norm=norm)
        print("spans: read from the cache (no model load)", file=sys.stderr)
    else:
        from .models import load_model

        loaded = load_model(args.model, args.pretrained, device=args.device)
        write_manifest(store, args.model, args.pretrained, loaded)
        bar = progress_printer("spans", args.quiet)
        shards = None
        if args.ray is not None:
            from .shards import Recipe, ray_runner

            recipe = Recipe(args.model, args.pretrained, args.device, args.images, n, loaded.key, images.key,
                            args.layers, 64, args.precision, norm)
            shards = ray_runner(recipe, len(images), args.ray or None, args.shards,
                                lambda d, t: bar(d, t, "Step 1/3 · decomposing the images (Ray)"))
        result = run_spans(loaded, images, pool, params, store=store, progress=bar, shards=shards,
                           protocol=args.protocol)
    out = result.to_json()
    out["skipped_images"] = [{"path": p, "reason": r} for p, r in images.skipped]
    out["precision"] = params.precision  # also in params (as the cache key has it)
    write_json(args.out, out)
    print(f"wrote {len(result.heads)} heads to {args.out} (protocol {result.protocol}, decomposition "
          f"{result.norm})", file=sys.stderr)
    if result.random_weights:
        print(f"note: {result.model_name} has random weights (no --pretrained): its heads carry no concepts, so "
              "these spans (and any labels or CCS from them) describe noise; good for trying the pipeline only",
              file=sys.stderr)
    return 0


def _prune_parser(sub, name: str, help_: str, func, dataset: str, dataset_help: str):
    """A prune-eval/bias parser with the arguments they share; the caller adds its own."""
    p = sub.add_parser(name, help=help_)
    p.add_argument("--dataset", default=dataset, help=dataset_help)
    p.add_argument("--protocol", default="standard", choices=["standard", "paper"],
                   help="paper: the paper's templates (CLIP's 18 CIFAR / 80 ImageNet), 6 FairFace race groups, "
                        "concept pruning of CCS-5 heads, CLIP's Country-211 class names; standard (default): the "
                        "common conventions")
    p.set_defaults(func=func)
    p.add_argument("--model", default="toy", help="open_clip architecture, or 'toy' (default)")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag or checkpoint path")
    p.add_argument("--device", default="auto",
                   help="auto (default: the first of cuda, mps, cpu available), cpu, cuda, cuda:N or mps")
    p.add_argument("--strategy", action="append", default=[], metavar="S",
                   help="high | low | random | concept:LABEL | concepts (every label) | heads:L3.H1,L4.H2 (repeatable; the "
                        "original model is always included)")
    p.add_argument("--skip-empty", action="store_true",
                   help="a --strategy that selects no head is skipped with a note (as the defaults are) "
                        "instead of refused")
    p.add_argument("--ccs", default=None, help="CCS JSON: the judges' scores or rows of head, ccs, label")
    p.add_argument("--force", action="store_true",
                   help="use a CCS file that records another model's key (normally refused)")
    p.add_argument("--seeds", type=int, default=5, help="random strategy: number of seeds")
    p.add_argument("--concept-min-ccs", type=int, default=None,
                   help="concept:LABEL keeps only heads with at least this CCS (paper: 5)")
    p.add_argument("--mode", choices=["zero", "mean"], default="zero",
                   help="zero-ablation (paper) or mean-ablation over the evaluated images")
    p.add_argument("--max-per-class", type=int, default=None, help="cap images per class (quick runs)")
    p.add_argument("--n-images", type=int, default=None, help="images drawn from the toy world (default 500)")
    p.add_argument("--batch-size", type=int, default=64)
    add_workers(p)
    add_precision(p, "the image tower's forward pass (pruned and original) and the text tower's")
    p.add_argument("--out", required=True, help="output JSON file")
    return p


def protocol_of(args):
    from .protocol import get

    return get(getattr(args, "protocol", "standard"))


def _read_ccs(path: str | None):
    """(the CCS table of ``--ccs``, the model key it records), read before the model loads."""
    from .prune import CCSTable

    if not path:
        return None, None
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"Cannot read the CCS file {path}: {err}. Give the scores JSON written by "
                        "'python -m ccs_core score' or a list of {head, ccs, label} rows.") from err
    return CCSTable.from_json(obj), obj if isinstance(obj, dict) else {}


def _prune_setup(args, default_strategies: list[str], load_data):
    """Every input checked and read (``load_data()``: the dataset) before the model loads; then
    (loaded model, configurations, what ``load_data`` returned, the notes of strategies skipped)."""
    from .models import load_model
    from .prune import build_configs

    output_path(args.out, inputs=[getattr(args, k, None) for k in ("ccs", "prompts", "templates", "class_map")]
                + dataset_paths(args.dataset), folders=dataset_paths(args.dataset))
    positive("--batch-size", args.batch_size)
    positive("--seeds", args.seeds)
    check_precision_device(args)
    from .strategies import MAX_SEEDS

    if args.seeds > MAX_SEEDS:
        raise DataError(f"--seeds must be at most {MAX_SEEDS} (got {args.seeds}): each seed is a full evaluation "
                        "of the pruned model; the paper uses 5.")
    table, obj = _read_ccs(args.ccs)
    data = load_data()
    for part in (data if isinstance(data, tuple) else (getattr(data, "image_set", data),)):
        if hasattr(part, "workers"):  # an ImageSet (not a task or a video set): decode in workers
            part.workers = workers(args)
    loaded = load_model(args.model, args.pretrained, device=args.device)
    if table is not None:
        recorded = obj.get("model_key")
        if recorded and recorded != loaded.key and not args.force:
            raise DataError(f"The CCS file {args.ccs} was scored on another model ({obj.get('model_name')}, key "
                            f"{recorded[:12]}…) than {loaded.name} ({loaded.key[:12]}…): its heads would be the "
                            "wrong ones. Score this model, or pass --force to use it anyway.")
    strategies = args.strategy or (default_strategies if table is not None else [])
    skipped: list[str] = []
    configs = build_configs(strategies, table, loaded.spec.n_layers, loaded.spec.n_heads, args.seeds,
                            args.concept_min_ccs if args.concept_min_ccs is not None else
                            protocol_of(args).concept_min_ccs,
                            skipped=None if args.strategy and not args.skip_empty else skipped)
    for note in skipped:
        print(f"skipped: {note}", file=sys.stderr)
    return loaded, configs, data, skipped


def _print_table(rows: list[dict], columns: list[str]) -> None:
    print("  ".join(f"{c:>14}" for c in columns))
    for r in rows:
        print("  ".join(f"{r[c]:>14.4f}" if isinstance(r.get(c), float) else f"{str(r.get(c)):>14}"
                        for c in columns))


def add_prune_eval(sub) -> None:
    p = _prune_parser(sub, "prune-eval", "zero-shot accuracy (or video retrieval) of original vs soft-pruned "
                      "image towers", cmd_prune_eval, "toy:colour",
                      "toy[:factor], toy-hard:factor, toy-outline:factor, toy-videos, cifar10:ROOT, cifar100:ROOT, "
                      "food101:ROOT, country211:ROOT, pets:ROOT, imagenet-a:DIR, imagenet-r:DIR, videos:DIR, or an "
                      "ImageFolder path")
    p.add_argument("--class-map", default=None, help="ImageNet-A/R: 'wnid<TAB>name' file overriding names")


def cmd_prune_eval(args) -> int:
    from .datasets import load_dataset
    from .evaluate import prune_eval, retrieval_eval, summarize
    from .video import VideoSet

    loaded, configs, (data, task), skipped = _prune_setup(args, ["high", "low", "random"], lambda: load_dataset(
        args.dataset, args.max_per_class, n=toy_count(args, args.dataset, 500), class_map=args.class_map,
        protocol=args.protocol))
    for path, why in data.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    bar = progress_printer(f"prune-eval ({len(configs)} configurations)", args.quiet)
    if isinstance(data, VideoSet):
        rows = retrieval_eval(loaded, data, configs, args.mode, args.batch_size, open_store(), bar, args.precision)
        metrics = ["R@1", "R@5", "R@10", "median_rank"]
    else:
        if task is None:
            raise DataError(f"Dataset {args.dataset!r} has no classes: zero-shot evaluation needs a folder "
                            "with one subfolder per class, or a known dataset.")
        rows = prune_eval(loaded, data, task, configs, args.mode, args.batch_size, open_store(), bar,
                          precision=args.precision)
        metrics = ["accuracy", "mean_true_prob"]
    summary = summarize(rows, metrics)
    write_json(args.out, {"command": "prune-eval", "protocol": args.protocol, "model": loaded.name, "model_key": loaded.key,
                          "dataset": args.dataset, "task": task.name if task else data.name, "mode": args.mode,
                          "precision": args.precision, "metrics": metrics, "rows": rows, "summary": summary,
                          "skipped_strategies": skipped,
                          "skipped_images": [{"path": p, "reason": r} for p, r in data.skipped]})
    _print_table(summary, ["strategy", "runs", "n_heads"] + metrics)
    print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    return 0


def add_bias(sub) -> None:
    p = _prune_parser(sub, "bias", "MaxSkew@K of neutral prompts over groups, original vs pruned", cmd_bias,
                      "toy-bias", "toy-bias (toy world, groups = backgrounds), fairface:CSV[:IMAGE_ROOT] or "
                      "socialcounterfactuals:CSV[:IMAGE_ROOT] (alias scf:)")
    p.add_argument("--attribute", action="append", default=[],
                   help="group attribute(s) (FairFace, SocialCounterfactuals: race, gender; default: both / the "
                        "toy's group)")
    p.add_argument("--k", type=int, default=None,
                   help="top-K images per prompt, for every attribute (default: the paper's: 900 for FairFace, the "
                        "same share, 8.2%%, of other sets; 12 for race and 4 for gender on SocialCounterfactuals, "
                        "among each occupation's images)")
    p.add_argument("--prompts", default=None, help="one prompt per line (default: the paper's 104 "
                                                   "occupations; the toy's shapes for toy-bias)")
    p.add_argument("--templates", default=None, help="one template per line with {} (default: the paper's 4)")


def cmd_bias(args) -> int:
    from .analysis import bias_setup, run_bias
    from .bias import summarize_bias

    loaded, configs, setup, skipped = _prune_setup(args, ["high", "low", "random"], lambda: bias_setup(
        args.dataset, n=toy_count(args, args.dataset, 500), attributes=args.attribute or None, k=args.k,
        prompts=read_lines(args.prompts, "prompts", distinct=True) if args.prompts else None,
        templates=read_lines(args.templates, "templates", distinct=True) if args.templates else None,
        max_per_class=args.max_per_class, protocol=args.protocol))
    data = setup.image_set
    for path, why in data.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if setup.skipped_prompts:
        shown = ", ".join(setup.skipped_prompts[:5]) + (", ..." if len(setup.skipped_prompts) > 5 else "")
        print(f"note: {len(setup.skipped_prompts)} of {len(setup.prompts)} prompts have no image of their "
              f"occupation in {args.dataset} and are skipped ({shown})", file=sys.stderr)
    bar = progress_printer(f"bias ({len(configs)} configurations)", args.quiet)
    rows = run_bias(loaded, setup, configs, args.mode, open_store(), bar, args.batch_size, args.precision)
    summary = summarize_bias(rows)
    write_json(args.out, {"command": "bias", "protocol": args.protocol, "model": loaded.name, "model_key": loaded.key,
                          "dataset": args.dataset, "mode": args.mode, "precision": args.precision, "k": setup.k,
                          "per_occupation": setup.pools is not None, "skipped_prompts": setup.skipped_prompts,
                          "rows": rows, "summary": summary, "skipped_strategies": skipped,
                          "skipped_images": [{"path": p, "reason": r} for p, r in data.skipped]})
    _print_table(summary, ["strategy", "attribute", "runs", "n_heads", "maxskew_sum", "maxskew_mean"])
    print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    return 0


# ---- end of commands ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ccs_core",
                                     description="CCS Explorer headless commands")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    parser.epilog = ("exit status: 0 done; 1 an unexpected error (a bug: --debug shows it); 2 bad input "
                     "(the message says what to fix); 3 'score' (or a step of 'sweep') left heads incomplete or a judge unavailable; "
                     "130 interrupted")
    sub = parser.add_subparsers(dest="command", required=True)
    from .reproduce import add_reproduce
    from .sweep import add_sweep

    # in pipeline order, then the grid and the paper's whole protocol
    for add in (add_spans, add_score, add_prune_eval, add_bias, add_sweep, add_reproduce):
        add(sub)
    for p in sub.choices.values():  # '-q' also after the command (default: the one before it)
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if isinstance(getattr(args, "model", None), str):
        args.model = args.model.strip()  # ' toy ' is the toy model (and its pool)
    args.main = main  # 'sweep' and 'reproduce' run the other commands through it (they do not import the CLI)
    try:
        return int(args.func(args) or 0)
    except CCSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        if argv is None:  # the command line: do not wait at exit for threads stuck on a dead endpoint
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
    except Exception as err:  # a bug, not the input: one line, never a traceback (unless --debug)
        if args.debug:
            raise
        text = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        print(f"error: unexpected {err.__class__.__name__}{': ' + text if text else ''}. This is a bug in CCS "
              "Explorer, not in your input; run it again as 'python -m ccs_core --debug COMMAND ...' for the "
              "traceback.", file=sys.stderr)
        return 1
