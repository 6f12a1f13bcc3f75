"""The one orchestrator: model + image set + text pool + parameters -> spans -> labels/verdicts -> CCS.

Every step goes through the artifact store, so the app and the CLI (which both call these functions)
never compute a result twice, and a warm start reads everything from cache/. Progress has one shape
everywhere (core, CLI, app): ``progress(done, total, message)``, counted per step, the message naming
the step ("Step 2/3 · embedding the text pool ...").
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .ccs import Thresholds
from .errors import DataError, HeadSpecError
from .heads import HeadId
from .precision import check_precision
from .protocol import NORMS, PROTOCOLS, check_norm
from .protocol import get as get_protocol
from .scores import ScoreResult
from .store import Store, cache_key

if TYPE_CHECKING:  # torch is imported where it is used: a warm start reads cached results without it
    import torch

Progress = Callable[[int, int, str], None]  # (done, total, message)
SPANS_VERSION = "spans-v2"  # v2: each head records its total variance


def _quiet(done: int, total: int, message: str = "") -> None:
    pass


@dataclass(frozen=True)
class SpanParams:
    n_layers: int = 4   # analyse the last n_layers blocks of the image tower
    n_spans: int = 5    # TEXTSPAN descriptions per head
    rank: int = 80      # top right-singular directions the texts are projected onto
    precision: str = "fp32"  # the decomposition's forward pass: fp32, or bf16 / fp16 autocast (stored as float32)
    norm: str = "own-mean"   # the decomposition's convention: own-mean, or gandelsman (decompose.py)


@dataclass
class HeadSpans:
    head: str                 # "L11.H5"
    texts: list[str]          # the spans, in TEXTSPAN order
    indices: list[int]        # their indices in the pool
    variances: list[float]    # variance each span explains
    explained_share: float    # share of the head's variance the spans explain together
    total_variance: "float | None" = None  # the head's variance over the images (None: older results)
    silent: bool = False      # its output does not vary over the images: the spans are arbitrary

SILENT_SHARE = 1e-9  # a head whose variance is below this share of the largest head's is silent
IDENTICAL = 1e-10    # every head's variance below this share of its squared mean term: the images are copies


@dataclass
class SpansResult:
    model_key: str
    model_name: str
    image_set: str
    image_set_key: str
    pool: str
    pool_key: str
    params: dict
    layers: list[int]
    n_heads: int
    n_images: int
    heads: list[HeadSpans] = field(default_factory=list)
    random_weights: bool = False  # an architecture with random weights: its spans describe noise
    protocol: str = "standard"    # the protocol it was made under (protocol.py; older files: standard)
    norm: str = "own-mean"        # the decomposition's convention (older files: own-mean)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "SpansResult":
        """Read a result back, checking its shape and types (a DataError says what is wrong); extra
        keys (e.g. the CLI's ``skipped_images``) are ignored. Head names are written canonically."""
        how = "write one with 'python -m ccs_core spans ... --out FILE.json'"
        if not isinstance(d, dict) or not isinstance(d.get("heads"), list) or \
                not all(isinstance(h, dict) for h in d["heads"]):
            raise DataError(f"Not a spans result: expected a JSON object whose 'heads' is a list of heads ({how}).")
        missing = [k for k, f in cls.__dataclass_fields__.items()
                   if k not in d and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise DataError(f"Not a spans result: it has no {', '.join(missing)} ({how}).")
        bad = [k for k in ("model_key", "model_name", "image_set_key", "pool_key") if not isinstance(d[k], str)]
        if bad:
            raise DataError(f"The spans result's {', '.join(bad)} must be text, not {d[bad[0]]!r} ({how}).")
        def whole(v, least: int = 0) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= least

        checks = {"layers": (isinstance(d["layers"], list) and bool(d["layers"]) and
                             all(whole(v) for v in d["layers"]), "a list of layer numbers"),
                  "n_heads": (whole(d["n_heads"], 1), "a whole number >= 1"),
                  "n_images": (whole(d["n_images"], 1), "a whole number >= 1"),
                  "params": (isinstance(d["params"], dict), "an object"),
                  "random_weights": (isinstance(d.get("random_weights", False), bool), "true or false"),
                  "protocol": (str(d.get("protocol", "standard")) in PROTOCOLS, " or ".join(PROTOCOLS)),
                  "norm": (d.get("norm", "own-mean") in NORMS, " or ".join(NORMS))}
        wrong = next(((k, want) for k, (ok, want) in checks.items() if not ok), None)
        if wrong:
            raise DataError(f"The spans result's {wrong[0]} is {d.get(wrong[0])!r:.60}; expected {wrong[1]} ({how}).")
        if not d["heads"]:
            raise DataError(f"The spans result has no heads, so there is nothing to label or judge ({how}).")
        if d["params"].get("norm", d.get("norm", "own-mean")) != d.get("norm", "own-mean"):
            raise DataError(f"The spans result says norm {d.get('norm', 'own-mean')!r} but its params say "
                            f"{d['params']['norm']!r}; one convention made it ({how}).")
        heads = []
        for h in d["heads"]:
            try:
                name = str(HeadId.parse(h.get("head")))
            except HeadSpecError as err:
                raise DataError(f"The spans result names a head {h.get('head')!r}: {err}") from err
            texts = h.get("texts")
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                raise DataError(f"Head {name}: 'texts' must be a list of non-empty strings, not {texts!r:.80}.")
            if not isinstance(h.get("silent", False), bool):
                raise DataError(f"Head {name}: 'silent' must be true or false, not {h['silent']!r}.")
            heads.append(HeadSpans(**{**{k: v for k, v in h.items() if k in HeadSpans.__dataclass_fields__},
                                      "head": name}))
        names = [h.head for h in heads]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DataError(f"The spans result names head(s) {', '.join(dup)} more than once; each head once.")
        layers = d.get("layers")
        outside = [n for n in names if HeadId.parse(n).layer not in layers or HeadId.parse(n).head >= d["n_heads"]]
        if outside:
            raise DataError(f"Head(s) {', '.join(outside[:3])} lie outside the result's analysed layers {layers} "
                            f"or its {d['n_heads']} heads per layer (H0..H{d['n_heads'] - 1}).")
        return cls(**{**{k: v for k, v in d.items() if k in cls.__dataclass_fields__}, "heads": heads})

    @classmethod
    def from_cache(cls, hit: "dict | None") -> "SpansResult | None":
        """A stored result, or None (a miss, recomputed) when the entry is not a valid spans result."""
        if hit is None:
            return None
        try:
            return cls.from_json(hit)
        except DataError:
            return None

    def by_head(self) -> dict[str, HeadSpans]:
        return {h.head: h for h in self.heads}


def text_embeddings(loaded, pool, store: Store | None = None, progress=None) -> torch.Tensor:
    """Normalised text embeddings of a pool, cached per (model, pool). # [M, embed_dim]

    ``progress(done, total)`` is called after every batch."""
    import torch

    key = cache_key(model=loaded.key, pool=pool.key)
    if store is not None and (hit := store.get_arrays("text_emb", key, {"emb": (len(pool), loaded.spec.embed_dim)})) is not None:
        return torch.from_numpy(hit["emb"])
    emb = loaded.encode_texts(list(pool.texts), batch_size=128, progress=progress)
    if store is not None:
        store.set_arrays("text_emb", key, {"emb": emb.numpy()})
    return emb


def spans_key(loaded, image_set, pool, params: SpanParams) -> str:
    parts = asdict(params)
    if parts["precision"] == "fp32":  # the default: keys as before the option existed
        del parts["precision"]
    if parts["norm"] == "own-mean":   # likewise
        del parts["norm"]
    return cache_key(v=SPANS_VERSION, model=loaded.key, images=image_set.key, pool=pool.key, params=parts)


def check_span_params(params: SpanParams, n_model_layers: int, n_images: int, n_texts: int,
                      embed_dim: int | None = None) -> None:
    """Raise a clear CCSError for parameters TEXTSPAN cannot honour (it would return fewer spans)."""
    if not 1 <= params.n_layers <= n_model_layers:
        raise HeadSpecError(f"Number of layers must be between 1 and {n_model_layers} for this model "
                            f"(got {params.n_layers}).")
    odd = next((k for k in ("n_layers", "n_spans", "rank") if isinstance(getattr(params, k), bool)
                or not isinstance(getattr(params, k), int)), None)
    if odd is not None:
        raise DataError(f"{odd} must be a whole number (got {getattr(params, odd)!r}).")
    check_precision(params.precision)
    check_norm(params.norm)
    if params.n_spans < 1 or params.rank < params.n_spans:
        raise DataError(f"Ask for at least 1 span and a rank of at least the number of spans (got "
                        f"{params.n_spans} spans, rank {params.rank}; the paper uses 5 and 80).")
    if embed_dim is not None and params.n_spans > min(params.rank, embed_dim):
        raise DataError(f"{params.n_spans} spans per head, but TEXTSPAN can find at most "
                        f"{min(params.rank, embed_dim)} here (each span removes one of the rank-{params.rank} "
                        f"directions of a {embed_dim}-wide embedding): ask for fewer spans.")
    if n_texts < params.n_spans:
        raise DataError(f"The text pool has {n_texts} descriptions but {params.n_spans} spans per head "
                        "were asked for: use a larger pool or fewer spans.")
    if n_images < max(2, params.n_spans):
        raise DataError(f"The image set has {n_images} image(s); TEXTSPAN needs at least "
                        f"{max(2, params.n_spans)} for {params.n_spans} spans (hundreds give stable spans).")


def run_spans(loaded, image_set, pool, params: SpanParams = SpanParams(), store: Store | None = None,
              progress: Progress = _quiet, shards=None, protocol: str = "standard") -> SpansResult:
    """Decompose the image set by head and find every analysed head's TEXTSPAN descriptions.
    ``shards``: decompose in shards elsewhere (``ccs_core.shards``: Ray tasks), merged exactly.
    ``protocol`` is recorded only (the spans depend on it through ``params.norm``, not otherwise)."""
    store = store if store is not None else Store(None)
    protocol = get_protocol(protocol).name
    key = spans_key(loaded, image_set, pool, params)
    hit = SpansResult.from_cache(store.get("spans", key))  # a warm start: no torch import
    if hit is not None:  # (an entry that is not a valid result is a miss: recomputed, overwritten)
        progress(1, 1, "Spans loaded from cache")
        return replace(hit, image_set=image_set.name, pool=pool.name,  # same content, maybe new names
                       protocol=protocol, norm=params.norm)
    from .decompose import decompose_image_set
    from .textspan import textspan_moments
    check_span_params(params, loaded.spec.n_layers, len(image_set), len(pool), loaded.spec.embed_dim)
    dec = decompose_image_set(loaded, image_set, n_layers=params.n_layers, store=store, precision=params.precision,
                              progress=lambda d, t: progress(d, t, "Step 1/3 · decomposing the images"),
                              shards=shards, norm=params.norm)
    m = dec.moments
    spread = float(m.cov.diagonal(dim1=1, dim2=2).sum(-1).max())                 # the largest head variance
    size = float((m.mean ** 2).sum(-1).max())                                     # and squared mean term
    if spread <= IDENTICAL * max(size, 1e-30):
        raise DataError(f"Every head's output is (nearly) the same on all {len(image_set)} images (largest "
                        f"variance {spread:.1e} against a mean term of {size:.1e}): the images are copies of "
                        "one another, so TEXTSPAN has nothing to explain. Analyse images that differ.")
    progress(0, len(pool), "Step 2/3 · embedding the text pool")  # the app and CLI add rate and ETA
    texts = text_embeddings(loaded, pool, store, progress=lambda d, t: progress(
        d, t, "Step 2/3 · embedding the text pool"))
    progress(0, 1, "Step 3/3 · TEXTSPAN on every head")
    flat = textspan_moments(m, texts, n_spans=params.n_spans, rank=params.rank)  # from the streamed sums
    H = dec.n_heads
    results = [flat[li * H:(li + 1) * H] for li in range(len(dec.layers))]
    top = max((r.total_variance for layer in results for r in layer), default=0.0)
    heads = []
    for li, layer in enumerate(dec.layers):
        for h, res in enumerate(results[li]):
            heads.append(HeadSpans(head=str(HeadId(layer, h)),
                                   texts=[pool.texts[i] for i in res.indices],
                                   indices=[int(i) for i in res.indices],
                                   variances=[float(v) for v in res.variances],
                                   explained_share=float(res.explained_share),
                                   total_variance=float(res.total_variance),
                                   silent=bool(res.total_variance <= SILENT_SHARE * top)))
    result = SpansResult(model_key=loaded.key, model_name=loaded.name, image_set=image_set.name,
                         image_set_key=image_set.key, pool=pool.name, pool_key=pool.key,
                         params=asdict(params), layers=list(dec.layers), n_heads=loaded.spec.n_heads,
                         n_images=len(image_set), heads=heads, random_weights=bool(getattr(loaded, "random_init", False)),
                         protocol=protocol, norm=params.norm)
    store.set("spans", key, result.to_json())
    progress(1, 1, "Spans ready")
    return result


def top_images(loaded, image_set, pool, spans: SpansResult, head: "str | HeadId", k: int = 4,
               store: Store | None = None) -> list[list[int]]:
    """For each span of ``head``: indices of the k images whose (centred) head contribution goes
    furthest along the span's direction as TEXTSPAN chose it (``textspan.span_directions``: the text
    without the earlier spans' directions, sign kept). The decomposition is read from the cache."""
    import torch

    from .decompose import decompose_image_set
    from .textspan import span_directions

    head = HeadId.parse(head)
    hs = spans.by_head()[str(head)]
    dec = decompose_image_set(loaded, image_set, n_layers=spans.params["n_layers"], store=store,
                              precision=spans.params.get("precision", "fp32"), norm=spans.norm)
    contrib = dec.head(head.layer, head.head).double()                      # [N, d]
    dirs = span_directions(contrib, text_embeddings(loaded, pool, store), hs.indices,
                           rank=int(spans.params.get("rank", 80)))           # [S, d]
    scores = (contrib - contrib.mean(0, keepdim=True)) @ dirs.T             # [N, S]
    k = min(k, scores.shape[0])
    return [torch.topk(scores[:, s], k).indices.tolist() for s in range(scores.shape[1])]


def head_table(spans: SpansResult, scores: "ScoreResult | None" = None) -> list[dict]:
    """One row per analysed head: layer, head, variance explained, and (if scored) label, CCS, category."""
    rows = []
    for hs in spans.heads:
        hid = HeadId.parse(hs.head)
        row = {"head": hs.head, "layer": hid.layer, "index": hid.head,
               "explained": hs.explained_share, "top_span": hs.texts[0] if hs.texts else ""}
        s = scores.head(hs.head) if scores is not None else None
        row.update({"label": s and s.label, "ccs": s and s.ccs, "category": s and s.category,
                    "note": head_note(scores, hs.head)})
        rows.append(row)
    return rows


def head_note(scores: "ScoreResult | None", head: str) -> str:
    """Why a head has no CCS ('' when it has one): not judged yet, or which request failed and how."""
    if scores is not None and head in scores.silent:
        return ("silent: its output does not vary over these images, so its spans describe nothing "
                "(not scored)")
    rec = scores.head(head) if scores is not None else None
    if rec is None:
        return "not labelled or judged yet"
    if rec.ccs is not None:
        return ""
    errs = scores.errors_of(head)
    first = f": {errs[0]['error'][:160]}" if errs else ""
    if rec.label is None:
        who = errs[0].get("agent", "the labeller") if errs else "the labeller"
        return f"no label ({who} failed{first}); re-ask to retry"
    missing = [j for j in scores.used_judges if j not in rec.verdicts]
    if missing or errs:
        return f"no verdict from {', '.join(missing) or errs[0].get('agent')}{first}; re-ask to retry"
    return "a judge's answer could not be read for some span; re-ask to retry"


def explained_matrix(spans: SpansResult) -> np.ndarray:
    """[n_layers, n_heads] share of variance explained by each head's spans."""
    m = np.zeros((len(spans.layers), spans.n_heads))
    for hs in spans.heads:
        hid = HeadId.parse(hs.head)
        m[spans.layers.index(hid.layer), hid.head] = hs.explained_share
    return m


SCORES_VERSION = "scores-v1"


def scores_key(spans: SpansResult, labeller, judges) -> str:
    """Key of the latest score of these spans by this labeller and these judges (own-mean spans: the
    key as before the convention was a parameter)."""
    params = {k: v for k, v in spans.params.items() if k != "norm"}
    return cache_key(v=SCORES_VERSION, model=spans.model_key, images=spans.image_set_key,
                     pool=spans.pool_key, params=params, labeller=labeller.describe(),
                     judges=[j.describe() for j in judges],
                     **({} if spans.norm == "own-mean" else {"norm": spans.norm}))


def cached_scores(spans: SpansResult, labeller, judges, store: Store | None) -> "ScoreResult | None":
    """The last ``run_scores`` result for these spans, labeller and judges, if any (no request)."""
    hit = None if store is None else store.get("scores", scores_key(spans, labeller, judges))
    return None if hit is None else ScoreResult.from_json(hit, "the stored scores")


def run_scores(spans: SpansResult, labeller, judges, store: Store | None = None,
               progress: Progress = _quiet, labels: dict[str, str] | None = None,
               thresholds=None, retry_unparseable: bool = False) -> ScoreResult:
    """Label every head of ``spans``, judge every span, and compute CCS and CCS@K.

    Labels and verdicts go through the verdict cache one by one (a re-run makes no request); the
    whole result is also stored, so a warm start can show the grid without re-scoring.
    """
    from .judges import score_heads

    store = store if store is not None else Store(None)
    # a silent head's spans are whatever TEXTSPAN's ties give (pool order): never label or judge them
    result = score_heads({h.head: h.texts for h in spans.heads if not h.silent}, labeller, judges, store,
                         progress=lambda d, t: progress(d, t, "Labelling and judging"),
                         labels=labels, thresholds=thresholds or Thresholds(),
                         retry_unparseable=retry_unparseable)
    result.silent = [h.head for h in spans.heads if h.silent]
    result.source = {"model_key": spans.model_key, "model_name": spans.model_name, "image_set": spans.image_set,
                     "pool": spans.pool, "params": spans.params, "layers": spans.layers,
                     "n_heads_per_layer": spans.n_heads, "protocol": spans.protocol, "norm": spans.norm}
    store.set("scores", scores_key(spans, labeller, judges), result.to_json())
    progress(1, 1, "Scores ready")
    return result


# ---- bias: one place for the dataset-dependent defaults (app and CLI) ---------------------------

@dataclass
class BiasSetup:
    image_set: Any                       # an ImageSet with group labels
    attributes: dict[str, list[str]]     # attribute -> group of every image
    prompts: list[str]                   # neutral prompts (occupations; the toy's shapes)
    templates: list[str]                 # each with one "{}"; a prompt's embedding is their mean
    k: dict[str, int]                    # attribute -> top-K images per prompt
    pools: list[list[int]] | None = None  # per prompt, the images it ranks (its occupation's); None: all
    skipped_prompts: list[str] = field(default_factory=list)  # prompts with no image of their occupation


def bias_setup(dataset: str, n: int = 400, attributes: list[str] | None = None, k: int | None = None,
               prompts: list[str] | None = None, templates: list[str] | None = None,
               max_per_class: int | None = None, protocol: str = "standard") -> BiasSetup:
    """The image set, groups, prompts, templates and K for a bias dataset spec ("toy-bias",
    "fairface:CSV[:ROOT]" or "socialcounterfactuals:CSV[:ROOT]"); defaults: the toy's shapes over its
    backgrounds, or the paper's 104 occupations x 4 templates over race and gender with the paper's K
    (``bias.default_k``: 900 on FairFace, 12 race / 4 gender on SocialCounterfactuals). ``k`` given: that K
    for every attribute. Images with an occupation (SocialCounterfactuals) are pooled per prompt
    (``bias.occupation_pools``)."""
    from .datasets import load_dataset, parse_spec
    from .validate import text_list

    attributes = [attributes] if isinstance(attributes, str) else attributes
    prompts = None if prompts is None else text_list(prompts, "prompts")
    templates = None if templates is None else text_list(templates, "templates")
    data, _ = load_dataset(dataset, max_per_class, n=n, protocol=protocol)
    parsed = parse_spec(dataset)
    if parsed.is_toy:
        from .toyworld.world import NEUTRAL, zero_shot_prompts

        toy_prompts, toy_templates = zero_shot_prompts(NEUTRAL)
        prompts, templates = prompts or toy_prompts, templates or toy_templates
    from .bias import bias_templates, check_pools, default_k, occupation_pools, occupations

    if not hasattr(data, "attributes"):  # a VideoSet: retrieval, not groups
        raise DataError(f"{dataset} is a video set; MaxSkew needs images with groups (toy-bias, "
                        "fairface:CSV[:ROOT] or socialcounterfactuals:CSV[:ROOT]); videos go to prune-eval for "
                        "retrieval.")
    available = data.attributes or ({"group": data.groups} if data.groups else {})
    names = attributes or [a for a in ("race", "gender") if a in available] or list(available)
    if not available:
        raise DataError(f"The dataset {dataset!r} has no groups to measure bias over: use toy-bias (shapes "
                        "over the toy backgrounds), fairface:CSV[:ROOT] or socialcounterfactuals:CSV[:ROOT] "
                        "(race and gender).")
    missing = [a for a in names if a not in available]
    if missing or not names:
        raise DataError(f"Attribute(s) {', '.join(missing) or '(none)'} not in {dataset}; available: "
                        f"{', '.join(available)}.")
    from .validate import templates as check_templates, top_k

    single = next((a for a in names if len(set(available[a])) < 2), None)
    if single is not None:
        raise DataError(f"Every image of {dataset} has the same {single} ({available[single][0]!r}): MaxSkew "
                        "compares groups, so it needs at least two (it would be 0 whatever the model does).")
    prompts = list(prompts or occupations())
    subjects = getattr(data, "subjects", None)
    pools = occupation_pools(prompts, subjects) if subjects else None
    ranked = len(data) if pools is None else min((len(p) for p in pools if p), default=len(data))  # a K without
    # the paper's value is a share of the images one prompt ranks (the smallest occupation's)
    ks = {a: default_k(parsed.kind, a, ranked) if k is None else k for a in names}
    skipped = [] if pools is None else check_pools(pools, prompts, subjects, ks, dataset)  # K <= each pool
    ks = {a: top_k(kk, len(data)) for a, kk in ks.items()}
    return BiasSetup(data, {a: list(available[a]) for a in names}, prompts,
                     check_templates(list(templates or bias_templates())), ks, pools, skipped)


def run_bias(loaded, setup: BiasSetup, configs, mode: str = "zero", store: Store | None = None,
             progress=None, batch_size: int = 64, precision: str = "fp32") -> list[dict]:
    """MaxSkew rows (one per configuration x attribute) for ``setup``, both towers under ``precision``."""
    from .bias import bias_eval

    return bias_eval(loaded, setup.image_set, configs, setup.attributes, setup.k, setup.prompts,
                     setup.templates, mode, batch_size, store, progress, pools=setup.pools, precision=precision)


# ---- where inputs come from (shared by the sidebar and the CLI) --------------------------------

TOY_IMAGES = "toy"          # the toy world's held-out images
BUNDLED_POOL = "bundled"    # the project's general-purpose description pool
TOY_POOL = "toy"            # the toy world's tagged pool


def resolve_images(spec: str, n: int = 512, seed: int = 0, max_per_class: int | None = None):
    """The images to analyse: a toy spec ("toy", "toy:split=val", "toy-hard"; see
    ``datasets.GRAMMAR``) -> the toy world's images; anything else is an image folder path."""
    from .datasets import parse_spec

    if not (spec or "").strip():
        raise DataError("No images named: give --images toy (the toy world), toy-hard, toy-outline, or an image "
                        "folder (a path; '.' for the current folder).")
    parsed = parse_spec(spec)
    if parsed.kind in ("toy", "toy-hard", "toy-outline"):
        from .toyworld.tasks import toy_image_set

        if parsed.arg:  # a factor picks a zero-shot task; the images to analyse are the same for every one
            raise DataError(f"{spec!r}: a factor ({parsed.arg!r}) chooses a zero-shot task, which --images has "
                            f"none of; write {parsed.kind}" + (f":split={parsed.split}" if parsed.split != "test"
                                                               else "") + " (prune-eval --dataset takes the factor).")
        return toy_image_set(split=parsed.split, n=n, seed=seed, style=parsed.style)
    if parsed.kind != "folder" and ":" not in spec and Path(spec.strip()).expanduser().is_dir():
        parsed = replace(parsed, kind="folder", arg=spec.strip())  # a folder that happens to be named cifar10
    if parsed.is_toy or parsed.kind != "folder":
        raise DataError(f"{spec!r} is not a set of images to analyse: --images takes toy, toy-hard or "
                        "toy-outline (with ,split=SPLIT), or an image folder (datasets go to prune-eval --dataset).")
    from .data import load_image_folder

    folder = parsed.arg
    if folder.lower().startswith("toy") and not Path(folder).expanduser().exists():
        raise DataError(f"{spec!r} is neither a folder nor a toy image spec: the toy world's are toy, toy-hard and "
                        "toy-outline, with ':split=SPLIT' for another split (e.g. toy:split=train).")
    return load_image_folder(folder, max_per_class=max_per_class)


def resolve_pool(spec: str | None, model_name: str = ""):
    """"bundled", "toy" or a path to a one-per-line .txt; default: the toy pool for the toy model."""
    from .textpool import bundled_pool, load_pool

    spec = (spec or "").strip() or (TOY_POOL if model_name == "toy" else BUNDLED_POOL)
    if spec == TOY_POOL:
        from .toyworld.pool import toy_pool

        return toy_pool()
    if spec == BUNDLED_POOL:
        return bundled_pool()
    return load_pool(spec)
