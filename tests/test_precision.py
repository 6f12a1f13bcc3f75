"""--precision fp32|bf16|fp16 on the pruned evaluation path: close results, float32 outputs, separate
cache entries (fp32's keys as before the option), fp16 refused on the CPU, autocast on the model's device.

Tolerances, measured on this CPU (bench/precision.py, 256 images, the original and 3 pruned configurations):
bf16 features' largest relative error 0.0054 on the bundled toy model (toy:colour; no accuracy change)
and 0.0096 on a random-init ViT-B-32 (1 prediction in 256 changed); in the tests' own cases 0.0047 (toy,
toy-hard:colour, 64 images: the same accuracies, mean true-class probability within 0.00065) and 0.0098
(ViT-B-32, 8 images). The tests allow 0.03 (about 3x).
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from ccs_core import evaluate as ev
from ccs_core import precision
from ccs_core.bias import prompt_embeddings
from ccs_core.errors import DataError
from ccs_core.heads import HeadId
from ccs_core.prune import PruneConfig, build_residual_cache
from ccs_core.store import cache_key
from ccs_core.zeroshot import ZeroShotTask
from tests.conftest import FakeImageSet

FEATURE_TOL = 0.03    # largest relative error of a bf16 feature (measured <= 0.0096)
GPU_REFUSAL = "fp16 autocast needs a GPU"


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest per-row relative error. a, b [N, d]"""
    return float(((a - b).norm(dim=-1) / a.norm(dim=-1)).max())


class Images:
    """n random images of a model's input size with labels."""

    def __init__(self, n: int, size: int, n_classes: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, size, size, generator=g)                 # [N, 3, S, S]
        self.labels = torch.randint(0, n_classes, (n,), generator=g).tolist()
        self.name, self.key = "random", f"random-{n}-{size}-{seed}"

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, preprocess, batch_size: int):
        for i in range(0, len(self.x), batch_size):
            yield self.x[i:i + batch_size]


@pytest.fixture(scope="module")
def toy():
    from ccs_core.models import load_model

    return load_model("toy", device="cpu")


def test_bf16_prune_eval_is_close_to_fp32_on_the_toy_model(toy):
    from ccs_core.datasets import load_dataset

    data, task = load_dataset("toy-hard:colour", None, n=64)  # fine-grained colours: accuracy not saturated
    configs = [PruneConfig("original"), PruneConfig("custom", (HeadId(3, 1), HeadId(2, 5))),
               PruneConfig("custom", (HeadId(1, 0), HeadId(3, 7), HeadId(2, 2)))]
    full = ev.pruned_features(toy, data, configs, precision="fp32")
    half = ev.pruned_features(toy, data, configs, precision="bf16")
    for a, b in zip(full, half):
        assert b.dtype == torch.float32 and rel_err(a, b) < FEATURE_TOL and not torch.equal(a, b)
    rows32 = ev.prune_eval(toy, data, task, configs, precision="fp32")
    rows16 = ev.prune_eval(toy, data, task, configs, precision="bf16")
    for r32, r16 in zip(rows32, rows16):
        assert abs(r32["accuracy"] - r16["accuracy"]) <= 1 / 64 + 1e-9  # at most one image of 64 (measured: 0)
        assert r16["mean_true_prob"] == pytest.approx(r32["mean_true_prob"], abs=0.005)  # measured <= 0.00065
    clf32, clf16 = (ev.text_classifier(toy, task, None, p) for p in ("fp32", "bf16"))
    assert clf16.dtype == torch.float32 and float((clf32 * clf16).sum(-1).min()) > 0.999


def test_bf16_pruned_features_are_close_to_fp32_on_a_vit_b32(vitb32):
    data = Images(8, vitb32.spec.image_size, 10)
    configs = [PruneConfig("original"), PruneConfig("custom", (HeadId(9, 3), HeadId(11, 0)))]
    full = ev.pruned_features(vitb32, data, configs, batch_size=4, precision="fp32")
    half = ev.pruned_features(vitb32, data, configs, batch_size=4, precision="bf16")
    for a, b in zip(full, half):
        assert b.dtype == torch.float32 and b.shape == a.shape and rel_err(a, b) < FEATURE_TOL
    task = ZeroShotTask("random", [f"class {i}" for i in range(10)], ["a photo of a {}.", "a {}."])
    clf32, clf16 = (ev.text_classifier(vitb32, task, None, p) for p in ("fp32", "bf16"))
    assert float((clf32 * clf16).sum(-1).min()) > 0.999
    scale = ev.logit_scale(vitb32)
    for a, b in zip(full, half):
        m32 = ev.zero_shot_metrics(a, clf32, data.labels, scale)
        m16 = ev.zero_shot_metrics(b, clf16, data.labels, scale)
        assert abs(m32["accuracy"] - m16["accuracy"]) <= 1 / 8 + 1e-9  # at most one image of 8
        assert m16["mean_true_prob"] == pytest.approx(m32["mean_true_prob"], abs=0.01)


def test_each_precision_has_its_own_cache_entries_and_fp32_keys_are_unchanged(tiny, store):
    loaded, images = SimpleNamespace(key="model-key"), SimpleNamespace(key="images-key")
    config = PruneConfig("custom", (HeadId(3, 1),))
    pinned = "88e4e3da696583f59a9f4b2680ee2322cffcc2aac562fa5d05316ff1fc0f6042"  # before --precision existed
    assert ev.features_key(loaded, images, config, "zero") == pinned
    assert ev.features_key(loaded, images, config, "zero", "fp32") == pinned
    keys = {p: ev.features_key(loaded, images, config, "zero", p) for p in precision.PRECISIONS}
    assert len(set(keys.values())) == 3
    # stored features: a bf16 run neither reads nor overwrites fp32's entry
    data = FakeImageSet(6, labels=[0, 1, 2] * 2, seed=4)
    configs = [PruneConfig("original"), PruneConfig("custom", (HeadId(5, 1),))]
    f32 = ev.pruned_features(tiny, data, configs, store=store)
    f16 = ev.pruned_features(tiny, data, configs, store=store, precision="bf16")
    assert not torch.equal(f32[1], f16[1])
    assert torch.equal(ev.pruned_features(tiny, data, configs, store=store)[1], f32[1])
    old = ev.features_key(tiny, data, configs[1], "zero")
    assert store.get_arrays("pruned_features", old, {"f": (6, None)}) is not None
    # the text classifier and the bias prompts: fp32 under the old key, bf16 under another
    task = ZeroShotTask("toy-colour", ["red", "green", "blue"], ["{}", "a picture of {} object"])
    ev._CLASSIFIERS.clear()
    for p in ("fp32", "bf16"):
        ev.text_classifier(tiny, task, store, p)
    shape = {"w": (3, None)}
    assert store.get_arrays("classifier", cache_key(kind="classifier", model=tiny.key, task=task.key), shape) is not None
    assert store.get_arrays("classifier", cache_key(kind="classifier", model=tiny.key, task=task.key,
                                                    precision="bf16"), shape) is not None
    assert len([k for k in ev._CLASSIFIERS if k[:2] == (tiny.key, task.key)]) == 2
    prompts, templates = ["red circle"], ["a picture of {}"]
    e32, e16 = (prompt_embeddings(tiny, prompts, templates, store, p) for p in ("fp32", "bf16"))
    old = cache_key(kind="bias_prompts", model=tiny.key, prompts=prompts, templates=templates)
    hit = store.get_arrays("bias_prompts", old, {"emb": (1, None)})
    assert hit is not None and torch.equal(torch.from_numpy(hit["emb"]), e32)
    assert not torch.equal(e32, e16) and float((e32 * e16).sum()) > 0.999
    # a persisted residual cache, and the app's in-memory one (per model, image set, precision)
    build_residual_cache(tiny, data.batches(None, 3), 2, key="six", store=store)
    build_residual_cache(tiny, data.batches(None, 3), 2, key="six", store=store, precision="bf16")
    old = cache_key(kind="residual", model=tiny.key, data="six", first_layer=2)
    assert store.get_arrays("residual", old) is not None
    assert store.get_arrays("residual", cache_key(kind="residual", model=tiny.key, data="six", first_layer=2,
                                                  precision="bf16")) is not None
    ev._RESIDUALS.clear()
    for p in ("fp32", "bf16"):
        ev.pruned_features(tiny, data, configs, keep_residual=True, precision=p)
    assert sorted(k[2] for k in ev._RESIDUALS) == ["bf16", "fp32"]
    ev._RESIDUALS.clear()


def test_fp16_is_refused_on_the_cpu_with_what_to_use(tiny, store, tmp_path, capsys, monkeypatch):
    data = FakeImageSet(2, labels=[0, 1])
    with pytest.raises(DataError, match=GPU_REFUSAL) as err:
        ev.pruned_features(tiny, data, [PruneConfig("original")], store=store, precision="fp16")
    assert "use bf16 or fp32 on the CPU" in str(err.value).replace("Use", "use")
    with pytest.raises(DataError, match=GPU_REFUSAL):
        tiny.encode_texts(["red"], precision="fp16")
    with pytest.raises(DataError, match="Unknown precision 'fp8'"):
        precision.check_precision("fp8")
    from ccs_core import cli

    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("ccs_core.store.DEFAULT_ROOT", tmp_path / "cache")
    for argv in (["prune-eval", "--dataset", "toy:colour", "--n-images", "8"],
                 ["bias", "--dataset", "toy-bias", "--n-images", "8"],
                 ["spans", "--images", "toy", "--n-images", "8"],
                 ["reproduce", "--n-images", "8"]):
        out = ["--out-dir", str(tmp_path / "r")] if argv[0] == "reproduce" else ["--out", str(tmp_path / "o.json")]
        assert cli.main(argv + ["--device", "cpu", "--precision", "fp16"] + out) == 2, argv
        text = capsys.readouterr().err
        assert GPU_REFUSAL in text and "bf16 or fp32 on the CPU" in text, argv
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "r").exists()  # refused before any work


def test_prune_eval_bias_and_spans_record_their_precision(tiny, tmp_path, capsys, monkeypatch):
    import ccs_core.models as models
    from ccs_core import cli

    monkeypatch.setattr(models, "load_model", lambda *a, **k: tiny)
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("ccs_core.store.DEFAULT_ROOT", tmp_path / "cache")
    results = {}
    for p in ("bf16", None):
        out = tmp_path / f"pe-{p}.json"
        assert cli.main(["prune-eval", "--dataset", "toy:colour", "--n-images", "16", "--strategy", "heads:L5.H3",
                         "--out", str(out)] + (["--precision", p] if p else [])) == 0
        results[p] = json.loads(out.read_text())
    assert results["bf16"]["precision"] == "bf16" and results[None]["precision"] == "fp32"
    for r16, r32 in zip(results["bf16"]["rows"], results[None]["rows"]):
        assert r16["mean_true_prob"] == pytest.approx(r32["mean_true_prob"], abs=0.01)
    out = tmp_path / "bias.json"
    assert cli.main(["bias", "--dataset", "toy-bias", "--n-images", "8", "--k", "4", "--strategy", "heads:L5.H3",
                     "--precision", "bf16", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["precision"] == "bf16"
    out = tmp_path / "spans.json"
    assert cli.main(["spans", "--images", "toy", "--n-images", "16", "--layers", "2", "--precision", "bf16",
                     "--out", str(out)]) == 0
    spans = json.loads(out.read_text())
    assert spans["precision"] == spans["params"]["precision"] == "bf16"


def test_reproduce_passes_its_precision_to_every_step(tmp_path):
    from ccs_core.cli import build_parser
    from ccs_core.reproduce import plan

    args = build_parser().parse_args(["reproduce", "--precision", "bf16", "--out-dir", str(tmp_path / "r")])
    steps = dict(plan(args)["steps"])
    for file, argv in steps.items():
        if argv[0] in ("spans", "prune-eval", "bias"):
            assert argv[argv.index("--precision") + 1] == "bf16", file
        else:
            assert "--precision" not in argv  # score runs no forward pass
    assert {argv[0] for argv in steps.values()} >= {"spans", "prune-eval", "bias"}
    plain = build_parser().parse_args(["reproduce", "--out-dir", str(tmp_path / "r")])
    assert not any("--precision" in argv for _, argv in plan(plain)["steps"])  # command lines as before


def test_autocast_follows_the_models_device_on_the_pruned_path(monkeypatch):
    """A stand-in model reporting cuda (this machine may have no GPU): the pruned features' autocast is
    cuda's, fp16 included (refused only on the CPU); fp32 leaves autocast off."""
    seen = []

    class Recorder:
        def __init__(self, device_type, dtype=None, enabled=True):
            seen.append((device_type, dtype, enabled))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch, "autocast", Recorder)
    monkeypatch.setattr(ev, "configs_features", lambda loaded, batches, sets, *a, **k: [
        torch.zeros(2, 4, dtype=torch.bfloat16) for _ in sets])
    spec = SimpleNamespace(n_layers=2, n_heads=2, embed_dim=4)
    data = type("Two", (), {"key": "", "name": "two", "__len__": lambda self: 2,
                            "batches": lambda self, pre, bs: iter(())})()
    for where, p in (("cuda", "bf16"), ("cuda:1", "fp16"), ("mps", "fp16"), ("cpu", "bf16"), ("cuda", "fp32")):
        model = SimpleNamespace(device=where, key="", spec=spec, preprocess=None)
        (f,) = ev.pruned_features(model, data, [PruneConfig("original")], precision=p)
        assert f.dtype == torch.float32  # whatever the autocast computed in
    assert seen == [("cuda", torch.bfloat16, True), ("cuda", torch.float16, True), ("mps", torch.float16, True),
                    ("cpu", torch.bfloat16, True), ("cuda", torch.bfloat16, False)]
    with pytest.raises(DataError, match=GPU_REFUSAL):
        ev.pruned_features(SimpleNamespace(device="cpu", key="", spec=spec), data, [PruneConfig("original")],
                           precision="fp16")
    assert precision.device_type("cuda:0") == "cuda" and precision.device_type(torch.device("mps")) == "mps"
    assert precision.device_type(SimpleNamespace(), torch.zeros(1)) == "cpu"  # no device recorded: the batch's


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 runs on a GPU only")
def test_fp16_and_bf16_on_a_gpu_are_close_to_fp32():
    from ccs_core.models import load_model

    vit = load_model("ViT-B-32", device="cuda")
    data = Images(16, vit.spec.image_size, 10)
    configs = [PruneConfig("original"), PruneConfig("custom", (HeadId(9, 3), HeadId(11, 0)))]
    full = ev.pruned_features(vit, data, configs, precision="fp32")
    for p in ("bf16", "fp16"):
        for a, b in zip(full, ev.pruned_features(vit, data, configs, precision=p)):
            assert b.dtype == torch.float32 and b.device.type == "cpu" and rel_err(a, b) < FEATURE_TOL, p
