"""tower.py is the only reader of open_clip's tower internals: pin it against open_clip's own
``encode_image`` / ``encode_text`` for every supported variant, and check that decompose and prune
(built on it) still sum to / reproduce the real forward pass."""
from __future__ import annotations

import copy

import pytest
import torch

from ccs_core import tower
from ccs_core.decompose import decompose
from ccs_core.models import from_model, load_model
from ccs_core.prune import pruned_image_features


def variant(**vision) -> "object":
    """A random-init toy-sized CLIP with ``vision`` changes (layer scale, QuickGELU...)."""
    import open_clip

    from ccs_core.toyworld.model import TOY_CONFIG, ToyPreprocess, ToyTokenizer, toy_vocab

    cfg = copy.deepcopy(TOY_CONFIG)
    quick = vision.pop("quick_gelu", False)
    cfg["vision_cfg"].update(vision)
    tok = ToyTokenizer(toy_vocab(), cfg["text_cfg"]["context_length"])
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = open_clip.CLIP(embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"],
                               text_cfg=dict(cfg["text_cfg"], vocab_size=tok.vocab_size), quick_gelu=quick)
    return from_model(model, ToyPreprocess(cfg["vision_cfg"]["image_size"]), tok, name="variant",
                      key=f"variant-{sorted(vision.items())}-{quick}")


@pytest.fixture(scope="module", params=["toy", "tiny", "layer-scale", "quick-gelu", "vit-b-32"])
def loaded(request, tiny, vitb32):
    if request.param == "toy":
        return load_model("toy")
    if request.param == "tiny":
        return tiny
    if request.param == "layer-scale":
        return variant(ls_init_value=0.3)
    if request.param == "quick-gelu":
        return variant(quick_gelu=True)
    return vitb32


def images_for(loaded, n: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    s = loaded.spec.image_size
    return torch.randn(n, 3, s, s, generator=g)


def test_tower_forward_equals_encode_image(loaded):
    x = images_for(loaded)
    with torch.no_grad():
        want = loaded.model.encode_image(x).float()
    got = tower.image_features(loaded, x)
    assert torch.allclose(got, want, atol=2e-4, rtol=1e-4), float((got - want).abs().max())


def test_decomposition_sums_and_unpruned_features_match(loaded):
    x = images_for(loaded)
    with torch.no_grad():
        want = loaded.model.encode_image(x).float()
    dec = decompose(loaded, x, n_layers=min(3, loaded.spec.n_layers))
    assert torch.allclose(dec.total(), want, atol=2e-4, rtol=1e-4)
    assert torch.allclose(pruned_image_features(loaded, x, []), want, atol=2e-4, rtol=1e-4)


def test_head_outputs_through_out_proj_equal_the_attention_module(loaded):
    blk = tower.blocks(loaded)[-1]
    x = tower.run_blocks(loaded, tower.embed(loaded, images_for(loaded)), 0, loaded.spec.n_layers - 1)
    with torch.no_grad():
        h = blk.ln_1(x)
        want = blk.attn(h, h, h, need_weights=False)[0]
        got = tower.out_proj(blk, tower.head_outputs(blk, x))
        cls = tower.head_writes(blk, tower.head_outputs(blk, x, cls_only=True)[:, 0]).sum(1)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(cls + blk.attn.out_proj.bias, want[:, 0], atol=1e-5)  # the heads' writes sum up


def test_text_cut_equals_encode_text(loaded):
    texts = ["red circle", "a picture of a small green square at the top left"]
    tokens = loaded.tokenizer(texts)
    pos = tower.text_pool_positions(loaded.model, tokens)
    assert pos is not None
    with torch.no_grad():
        want = loaded.model.encode_text(tokens, normalize=True)
        got = tower.encode_text_cut(loaded.model, tokens[:, : int(pos.max()) + 1])
    assert torch.allclose(got, want, atol=1e-5)
