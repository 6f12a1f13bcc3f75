"""load_model: errors users can cause, the random-init spec, QuickGELU resolution, local checkpoints."""
from __future__ import annotations

import json

import pytest
import torch

from ccs_core.errors import DataError, ModelLoadError
from ccs_core.models import ModelSpec, _resolve_quickgelu, load_model

TINY_CFG = {"embed_dim": 32,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 16, "patch_size": 8},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory):
    """Register a tiny open_clip config 'ccs-test-tiny' (text tower small, real tokenizer)."""
    import open_clip

    d = tmp_path_factory.mktemp("cfg")
    (d / "ccs-test-tiny.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(d)
    return "ccs-test-tiny"


def test_unknown_architecture():
    with pytest.raises(ModelLoadError, match=r"Unknown model architecture 'ViT-Q-99'.*ViT-B-32"):
        load_model("ViT-Q-99")


def test_unknown_tag():
    with pytest.raises(ModelLoadError, match=r"Unknown pretrained tag 'no_such_tag'.*openai"):
        load_model("ViT-B-32", "no_such_tag")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model("ViT-B-32", str(tmp_path / "weights.pt"))


def test_corrupt_checkpoint(tmp_path, tiny_arch):
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"Could not load the checkpoint .*weights\.pt.*complete"):
        load_model(tiny_arch, str(bad))


def test_wrong_architecture_checkpoint(tmp_path, tiny_arch):
    import open_clip

    other = dict(TINY_CFG, embed_dim=48)
    (tmp_path / "ccs-test-other.json").write_text(json.dumps(other))
    open_clip.add_model_config(tmp_path)
    path = tmp_path / "other.pt"
    torch.save(open_clip.create_model("ccs-test-other").state_dict(), path)
    with pytest.raises(ModelLoadError, match="Could not load the checkpoint"):
        load_model(tiny_arch, str(path))


def test_random_init_vitb32_spec(vitb32):
    assert vitb32.spec == ModelSpec(n_layers=12, n_heads=12, head_dim=64, width=768, embed_dim=512,
                                    image_size=224)
    assert vitb32.pretrained is None and vitb32.key and not vitb32.model.training
    emb = vitb32.encode_texts(["a photo of a dog", "a cat"])
    assert emb.shape == (2, 512) and torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_quickgelu_resolution():
    assert _resolve_quickgelu("ViT-B-32", "openai") == ("ViT-B-32-quickgelu", False)
    assert _resolve_quickgelu("ViT-B-16", "openai") == ("ViT-B-16-quickgelu", False)
    assert _resolve_quickgelu("ViT-B-32", "laion2b_s34b_b79k") == ("ViT-B-32", False)
    assert _resolve_quickgelu("ViT-B-32-quickgelu", "openai") == ("ViT-B-32-quickgelu", False)
    assert _resolve_quickgelu("ViT-B-32", None) == ("ViT-B-32", False)
    assert _resolve_quickgelu("ViT-B-32", "/some/file.pt") == ("ViT-B-32", False)
    # a local OpenAI checkpoint: by its file name, or by the caller's explicit choice
    assert _resolve_quickgelu("ViT-B-32", "/w/ViT-B-32-openai.pt") == ("ViT-B-32-quickgelu", False)
    assert _resolve_quickgelu("ViT-B-32", "/w/mine.pt", quick_gelu=True) == ("ViT-B-32-quickgelu", False)
    assert _resolve_quickgelu("ViT-B-32", "openai", quick_gelu=False) == ("ViT-B-32", False)


def test_local_checkpoint_roundtrip(tmp_path, tiny_arch):
    import open_clip

    torch.manual_seed(123)
    model = open_clip.create_model(tiny_arch).eval()
    path = tmp_path / "tiny.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    loaded = load_model(tiny_arch, str(path))
    assert loaded.spec == ModelSpec(2, 4, 16, 64, 32, 32)
    assert loaded.pretrained == str(path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.encode_images(x), model.encode_image(x, normalize=False))
        tokens = open_clip.get_tokenizer(tiny_arch)(["a red square"])
        assert torch.equal(loaded.model.encode_text(tokens), model.encode_text(tokens))
    again = load_model(tiny_arch, str(path))
    assert again.key == loaded.key
    torch.save({"state_dict": open_clip.create_model(tiny_arch).state_dict()}, path)  # new weights
    assert load_model(tiny_arch, str(path)).key != loaded.key


def test_pretrained_tag_offline_says_how_to_fix():
    with pytest.raises(ModelLoadError, match=r"(?s)cannot be downloaded.*local checkpoint"):
        load_model("ViT-B-32", "openai")


def test_random_init_is_reproducible_and_leaves_the_callers_rng_alone(tiny_arch):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a = load_model(tiny_arch)
    assert torch.equal(torch.rand(3), expected)
    b = load_model(tiny_arch)
    assert a.key == b.key and all(torch.equal(x, y) for x, y in zip(a.model.parameters(),
                                                                     b.model.parameters()))


def test_toy_with_a_tag_is_refused_and_with_a_checkpoint_path_loads_it():
    from ccs_core.errors import ModelLoadError
    from ccs_core.models import load_model
    from ccs_core.toyworld.model import TOY_DIR

    with pytest.raises(ModelLoadError, match="own bundled weights"):
        load_model("toy", "openai")
    bundled, control = load_model("toy"), load_model("toy", str(TOY_DIR / "toy_control.pt"))
    assert control.key != bundled.key and control.pretrained.endswith("toy_control.pt")
    assert not bundled.random_init and not control.random_init


def test_random_init_is_flagged(vitb32):
    assert vitb32.random_init


def test_device_auto_picks_what_this_machine_has():
    from ccs_core.models import check_device

    want = "cuda" if torch.cuda.is_available() else (
        "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
    assert check_device("auto") == want and check_device("cpu") == "cpu"
    with pytest.raises(ModelLoadError, match="Unknown device"):
        check_device("quantum")


def test_device_defaults_to_auto_in_the_library_and_every_command():
    import inspect

    from ccs_core.cli import build_parser
    from ccs_core.models import check_device, from_model

    assert inspect.signature(load_model).parameters["device"].default == "auto"
    parser = build_parser()
    for argv in (["spans"], ["prune-eval"], ["bias"]):
        assert parser.parse_args(argv + ["--out", "x.json"]).device == "auto"
    toy = load_model("toy")  # auto: this machine's first device; the key is the same on every device
    assert toy.device == check_device("auto") and toy.key == load_model("toy", device="cpu").key
    assert check_device(torch.device("cpu")) == "cpu"
    again = from_model(toy.model, toy.preprocess, toy.tokenizer, name="toy", key=toy.key, device="auto")
    assert again.device == check_device("auto")


def test_bf16_autocast_follows_the_models_device_not_the_batchs(monkeypatch):
    """The batch comes from the CPU loader; on a GPU model autocast must be cuda's (checked here with a
    stand-in model, as this machine may have no GPU), on the CPU the real forward runs under cpu's."""
    from types import SimpleNamespace

    import ccs_core.decompose as dec

    seen = []

    class Recorder:
        def __init__(self, device_type, dtype=None, enabled=True):
            seen.append((device_type, dtype, enabled))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(dec.torch, "autocast", Recorder)
    monkeypatch.setattr(dec, "_decompose", lambda loaded, images, n, norm="own-mean": dec.Decomposition(
        torch.zeros(1, 1, 1, 2), torch.zeros(1, 2), [0]))
    cpu_batch = torch.zeros(1, 3, 8, 8)
    for where in ("cuda", "cuda:1", torch.device("mps"), "cpu"):
        dec.decompose(SimpleNamespace(device=where), cpu_batch, n_layers=1, precision="bf16")
    dec.decompose(SimpleNamespace(device="cuda"), cpu_batch, n_layers=1)  # fp32: autocast off
    dec.decompose(SimpleNamespace(device="cuda"), cpu_batch, n_layers=1, precision="fp16")
    assert seen == [("cuda", torch.bfloat16, True), ("cuda", torch.bfloat16, True), ("mps", torch.bfloat16, True),
                    ("cpu", torch.bfloat16, True), ("cuda", torch.bfloat16, False), ("cuda", torch.float16, True)]
    with pytest.raises(DataError, match="fp16 autocast needs a GPU"):  # refused before autocast on the CPU
        dec.decompose(SimpleNamespace(device="cpu"), cpu_batch, n_layers=1, precision="fp16")
    assert len(seen) == 6
    assert dec.autocast_device(SimpleNamespace(), cpu_batch) == "cpu"  # no device recorded: the batch's
    monkeypatch.undo()
    toy = load_model("toy", device="cpu")
    x = torch.rand(2, 3, toy.spec.image_size, toy.spec.image_size)
    half, full = dec.decompose(toy, x, n_layers=2, precision="bf16"), dec.decompose(toy, x, n_layers=2)
    assert half.heads.dtype == torch.float32
    # bf16 keeps 8 bits of mantissa: the total (class-token embedding) within 2% of fp32 in norm
    assert float((half.total() - full.total()).norm() / full.total().norm()) < 0.02
