"""``python -m ccs_core reproduce``: the paper's whole protocol on one model, and one report beside the
paper's numbers for that model.

The run is a chain of the headless commands, run as written on the command line (the CLI's ``main``,
as ``sweep`` does), under ``--protocol paper``:

    spans -> score -> prune-eval per dataset (original, high, low, random x 5 seeds, every concept's
    CCS-5 heads) -> prune-eval on videos (retrieval) -> bias per bias set (original, high, low, random)

each writing its JSON into ``--out-dir``; then ``report.py`` gathers them into ``report.json``,
``report.md`` and PNG charts, beside the paper's Tables 3, 4, 7, 8, 9 and Figure 5. Every path is
checked before the first step. Every step runs each time and reads the cache, so an interrupted run
resumes, a finished one costs reads, and an edited input is seen; a dataset that fails does not stop
the others (a failed spans or score step stops all, as does a score that wrote nothing: no judge
available; ``steps.json`` records each step's exit). A dataset the user did not give is marked skipped
in the report (the toy model uses the toy world's analogues by default). ``--precision`` goes to every
step that runs the model (spans, prune-eval, bias) and is recorded in the report. The exit status is the
worst step's (0 only when every step that ran finished).
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from .cliutil import add_precision, check_precision_device
from .errors import DataError
from .sweep import run_chain, slug
from .validate import output_path

# (flag, spec kind, paper's dataset name, report section); the order of the paper's tables
CLASSIFICATION = (("cifar10", "cifar10", "CIFAR-10", "table3"), ("cifar100", "cifar100", "CIFAR-100", "table3"),
                  ("food101", "food101", "Food-101", "table3"), ("country211", "country211", "Country-211", "table4"),
                  ("pets", "pets", "Oxford-pets", "table4"), ("imagenet_a", "imagenet-a", "ImageNet-A", "table4"),
                  ("imagenet_r", "imagenet-r", "ImageNet-R", "table4"))
BIAS = (("fairface", "fairface", "FairFace", "table7"),
        ("socialcounterfactuals", "socialcounterfactuals", "SocialCounterfactuals", "table8"))
PRUNE_STRATEGIES = ("high", "low", "random", "concepts")
BIAS_STRATEGIES = ("high", "low", "random")
# The toy world's analogues when the toy model is given no dataset: fine-grained tasks for Table 3,
# outline renditions (unseen style) for Table 4's out-of-domain sets, its videos, its biased set.
TOY_FACTORS = ("colour", "shape", "background", "size")
TOY_DEFAULTS = {"table3": [f"toy-hard:{f}" for f in TOY_FACTORS],
                "table4": [f"toy-outline:{f}" for f in TOY_FACTORS],
                "figure5": ["toy-videos"], "table7": ["toy-bias"]}


def add_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="the paper's protocol on one model: spans, CCS, pruning on every "
                                         "dataset given, bias; one report beside the paper's tables")
    p.add_argument("--model", default="toy", help="open_clip architecture (e.g. ViT-B-16), or 'toy' (default)")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag (openai, laion2b_s34b_b88k) "
                                                      "or checkpoint path")
    p.add_argument("--images", default=None, help="images for TEXTSPAN (the paper: ImageNet validation images; "
                                                  "default for the toy model: its held-out set)")
    p.add_argument("--pool", default=None, help="description pool (the paper: Gandelsman et al.'s "
                                                "image_descriptions_general.txt); default the bundled one")
    p.add_argument("--judges", default=None, help="score --judges (the paper: openai,anthropic,gemini; "
                                                  "default: as score)")
    p.add_argument("--labeller", default=None, help="score --labeller")
    for flag, kind, name, _ in CLASSIFICATION:
        p.add_argument(f"--{flag.replace('_', '-')}", dest=flag, default=None, metavar="ROOT",
                       help=f"{name}: the folder '{kind}:ROOT' takes (torchvision layout, never downloaded)")
    p.add_argument("--videos", action="append", default=[], metavar="DIR",
                   help="a text-video retrieval set (videos:DIR; MSR-VTT, MSVD, DiDeMo); repeatable")
    p.add_argument("--fairface", default=None, metavar="CSV[:ROOT]", help="FairFace labels (fairface:CSV[:ROOT])")
    p.add_argument("--socialcounterfactuals", default=None, metavar="CSV[:ROOT]",
                   help="SocialCounterfactuals labels (socialcounterfactuals:CSV[:ROOT])")
    p.add_argument("--dataset", action="append", default=[], metavar="SPEC",
                   help="any other prune-eval dataset spec (reported as 'other'); repeatable")
    p.add_argument("--paper-model", default=None,
                   help="the paper row to compare with (default: the model's own row when it is one of the "
                        "paper's six; else the same architecture's OpenAI row, else ViT-B-32-OpenAI)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N, mps or auto (default: each command's)")
    p.add_argument("--batch-size", type=int, default=None, help="prune-eval / bias batch size")
    p.add_argument("--workers", type=int, default=None, help="image decoding processes (each command's --workers)")
    add_precision(p, "every step's --precision (spans, prune-eval, bias; default: theirs, fp32)", default=None)
    p.add_argument("--max-per-class", type=int, default=None, help="cap images per class (quick runs)")
    p.add_argument("--n-images", type=int, default=None, help="toy world sets' size (quick runs)")
    p.add_argument("--out-dir", required=True, help="the run's folder: each step's JSON, steps.json, the report")
    p.set_defaults(func=cmd_reproduce)


def _given(args) -> dict[str, list[tuple[str, str]]]:
    """Report section -> [(paper dataset name, spec)] for the data the user gave (toy defaults for the
    toy model when none is given)."""
    sections: dict[str, list[tuple[str, str]]] = {s: [] for s in ("table3", "table4", "figure5", "table7",
                                                                   "table8", "other")}
    for flag, kind, name, section in CLASSIFICATION:
        if getattr(args, flag):
            sections[section].append((name, f"{kind}:{getattr(args, flag)}"))
    for d in args.videos:
        sections["figure5"].append((Path(d).name or d, f"videos:{d}"))
    for flag, kind, name, section in BIAS:
        if getattr(args, flag):
            sections[section].append((name, f"{kind}:{getattr(args, flag)}"))
    for spec in args.dataset:
        sections["other"].append((spec, spec))
    if args.model.strip().lower() == "toy" and not any(sections.values()):
        for section, specs in TOY_DEFAULTS.items():
            sections[section] = [(spec, spec) for spec in specs]
    return sections


def plan(args) -> dict:
    """The chain (folder, steps as (file, argv)) and what each dataset step reports."""
    folder = Path(args.out_dir).expanduser()
    common = ["--model", args.model] + (["--pretrained", args.pretrained] if args.pretrained else []) + \
        (["--device", args.device] if args.device else [])
    images = args.images or ("toy" if args.model.strip().lower() == "toy" else None)
    if images is None:
        raise DataError("reproduce --model " + args.model + " needs --images DIR: the images TEXTSPAN "
                        "analyses (the paper used ImageNet validation images; any folder of photos works).")
    spans = ["spans", *common, "--images", images, "--protocol", "paper", "--out", str(folder / "spans.json")]
    spans += (["--pool", args.pool] if args.pool else []) + (["--precision", args.precision] if args.precision else [])
    spans += (["--workers", str(args.workers)] if args.workers is not None else [])
    spans += (["--n-images", str(args.n_images)] if args.n_images and images.startswith("toy") else [])
    score = ["score", "--spans", str(folder / "spans.json"), "--out", str(folder / "scores.json")]
    score += (["--judges", args.judges] if args.judges else []) + (["--labeller", args.labeller] if args.labeller else [])
    steps = [("spans.json", spans), ("scores.json", score)]
    extra = (["--precision", args.precision] if args.precision else []) + \
        (["--batch-size", str(args.batch_size)] if args.batch_size else []) + \
        (["--workers", str(args.workers)] if args.workers is not None else []) + \
        (["--max-per-class", str(args.max_per_class)] if args.max_per_class else [])
    datasets = []
    for section, items in _given(args).items():
        for name, spec in items:
            command = "bias" if section in ("table7", "table8") else "prune-eval"
            strategies = BIAS_STRATEGIES if command == "bias" or section == "figure5" else PRUNE_STRATEGIES
            file = f"{'bias' if command == 'bias' else 'prune'}__{slug(spec)}.json"
            argv = [command, *common, "--dataset", spec, "--protocol", "paper", "--ccs", str(folder / "scores.json"),
                    "--skip-empty", *[a for s in strategies for a in ("--strategy", s)], *extra, "--out",
                    str(folder / file)]
            if args.n_images and spec.startswith("toy") and spec != "toy-videos":  # its 64 clips are fixed
                argv[-2:-2] = ["--n-images", str(args.n_images)]
            steps.append((file, argv))
            datasets.append({"section": section, "name": name, "spec": spec, "file": file})
    files = [f for f, _ in steps]
    if len(set(files)) != len(files):
        raise DataError("Two datasets given to reproduce would write the same file (the same spec twice?); "
                        "give each once.")
    return {"name": folder.name, "folder": str(folder), "steps": steps, "datasets": datasets}


# what each kind of dataset flag takes, for the messages of ``check_inputs``
WHAT = {"torchvision": "the root torchvision's dataset class reads (README: Reproduce the paper, layouts)",
        "imagenet-a": "the folder with one sub-folder of images per WordNet id",
        "videos": "the folder with one sub-folder of frames per video and a captions file",
        "folder": "a folder with one sub-folder of images per class", "csv": "the label CSV (CSV[:IMAGE_ROOT])"}
WHAT["imagenet-r"] = WHAT["imagenet-a"]


def check_inputs(args) -> list[str]:
    """Every option checked before the first step (a typo found after the spans and the scoring would
    cost them): no blank value, every dataset spec parsed and its folders and files there, the toy's
    --n-images and --workers in range. -> the folders the run reads (--out-dir must lie outside them)."""
    from .datasets import CSV_LOADERS, TORCHVISION, csv_paths, is_toy_spec, parse_spec
    from .toyworld.tasks import check_count

    if not str(args.out_dir).strip():
        raise DataError("--out-dir is empty; give the run's folder (e.g. runs/repro-toy): an empty path would "
                        "write every step's JSON and the report into the current folder.")
    for flag in ("images", "pool", "pretrained", "judges", "labeller", "device", "paper_model"):
        value = getattr(args, flag, None)
        if value is not None and not str(value).strip():
            raise DataError(f"--{flag.replace('_', '-')} is empty; give a value or leave the option out (its "
                            "default is used then).")
    if args.n_images is not None:
        check_count(args.n_images)
    if args.workers is not None and args.workers < 0:
        raise DataError(f"--workers must be 0 (decode in this process) or more (got {args.workers}).")
    given = [(f"--{flag.replace('_', '-')}", getattr(args, flag), f"{kind}:") for flag, kind, _, _ in
             (*CLASSIFICATION, *BIAS) if getattr(args, flag) is not None]
    given += [("--videos", d, "videos:") for d in args.videos] + [("--dataset", s, "") for s in args.dataset]
    read = [args.images] if args.images and not is_toy_spec(args.images) else []
    for flag, path in (("--images", read[0] if read else None),
                       ("--pool", args.pool if args.pool and args.pool not in ("bundled", "toy") else None)):
        if path and not Path(path).expanduser().exists():
            raise DataError(f"{flag} {path} does not exist; fix the path (nothing has run yet).")
    for flag, value, kind in given:
        if not value.strip():
            raise DataError(f"{flag} is empty; give {'a dataset spec' if flag == '--dataset' else 'its path'}, or "
                            f"leave {flag} out (the report then lists the dataset as skipped).")
        spec = parse_spec(kind + value)
        if spec.is_toy:
            continue
        what = WHAT["csv" if spec.kind in CSV_LOADERS else "torchvision" if spec.kind in TORCHVISION else spec.kind]
        if spec.kind in CSV_LOADERS:
            csv_file, root = csv_paths(spec.arg)
            wanted = [(csv_file, "file")] + ([(root, "folder")] if root else [])
        else:
            wanted = [(spec.arg, "folder")]
        for path, kind_of in wanted:
            p = Path(path).expanduser()
            if not p.exists() and flag == "--dataset" and spec.kind == "folder":
                raise DataError(f"--dataset {value!r} is neither a dataset spec nor an existing folder; 'python -m "
                                "ccs_core prune-eval --help' lists the specs (toy[:FACTOR], cifar10:ROOT, ...).")
            if not p.exists():
                problem = "does not exist"
            elif kind_of == "folder" and not p.is_dir():
                problem = "is a file, not a folder"
            elif kind_of == "file" and not p.is_file():
                problem = "is a folder, not a CSV file"
            else:
                if kind_of == "folder":
                    read.append(str(p))
                continue
            raise DataError(f"{flag} {value}: {p} {problem}. Give {what}. (reproduce checks every dataset before "
                            "its first step, so that a wrong path costs no spans or scoring.)")
    return read


def check_out_dir(folder: Path, args, read: list[str]) -> None:
    """--out-dir can hold the run: a folder (or one to make), writable, outside every folder the run
    reads, and none of the report's own names taken by something of the wrong kind."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"--out-dir {folder} is a file; give a folder (reproduce writes each step's JSON, "
                        "steps.json and the report there).")
    for name, what in (("report.json", "report"), ("report.md", "Markdown report"),
                       ("steps.json", "record of the finished steps")):
        if (folder / name).exists() and not (folder / name).is_file():
            raise DataError(f"{folder / name} is a folder (or not a regular file), but reproduce writes its {what} "
                            "there; remove it or choose another --out-dir.")
    output_path(folder / "report.json", "reproduce report", inputs=[args.pool, args.images], folders=read,
                flag="--out-dir")
    charts = folder / "charts"
    if charts.exists() and not charts.is_dir():
        raise DataError(f"{charts} is a file, but reproduce writes its charts in that folder; remove it or choose "
                        "another --out-dir.")
    odd = sorted(c.name for c in charts.glob("*.png") if not c.is_file()) if charts.is_dir() else []
    if odd:
        raise DataError(f"{charts / odd[0]} is not a regular file, but reproduce writes a chart there; remove it or "
                        "choose another --out-dir.")


def cmd_reproduce(args) -> int:
    from .report import paper_reference, write_report
    from .validate import positive

    for flag in ("batch_size", "max_per_class", "n_images"):
        if getattr(args, flag) is not None:
            positive("--" + flag.replace("_", "-"), getattr(args, flag))
    read = check_inputs(args)
    paper_reference(args.model, args.pretrained, args.paper_model)  # a wrong --paper-model before any step
    check_precision_device(args)  # fp16 on the CPU: refused here, not by each step in turn
    chain = plan(args)
    folder = Path(chain["folder"])
    check_out_dir(folder, args, read)
    if not args.quiet:
        print(f"reproduce: {len(chain['steps'])} steps into {folder} (spans, score, "
              f"{len(chain['datasets'])} dataset(s)); each reads the cache, so what finished before is "
              "not recomputed", file=sys.stderr)
    progress = None if args.quiet else (lambda i, n, name: print(f"reproduce: step {i}/{n}: {name}", file=sys.stderr))
    def step(argv: list[str]) -> int:  # each step's tables go to stderr: stdout is the report's summary
        with contextlib.redirect_stdout(sys.stderr):
            return args.main(argv)

    # every step runs (from the cache: only what changed or never finished is computed); a dataset
    # that fails does not stop the others, a failed spans or score step stops all
    records = run_chain(chain, step, quiet=args.quiet, progress=progress, rerun=True, independent_after=2)
    report = write_report(folder, chain, records, args)
    for line in report["summary_lines"]:
        print(line)
    print(f"wrote {folder / 'report.md'} (and report.json, {len(report['charts'])} chart(s))", file=sys.stderr)
    codes = [r["code"] for r in records if r["code"] is not None]
    return next((code for code in (130, 1, 2, 3) if code in codes), 0)
