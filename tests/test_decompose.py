"""decompose: heads + rest == encode_image; per-head terms match brute-force head ablation; caching."""
from __future__ import annotations

import copy

import pytest
import numpy as np
import torch

from ccs_core.decompose import UnsupportedModelError, decompose, decompose_image_set
from ccs_core.textspan import Moments
from ccs_core.errors import HeadSpecError, ModelLoadError
from ccs_core.models import from_model


def tiny(seed: int = 0, **vision) -> "object":
    import open_clip

    torch.manual_seed(seed)
    vc = dict(image_size=32, patch_size=8, width=64, head_width=16, layers=3)
    vc.update(vision)
    model = open_clip.CLIP(embed_dim=32, vision_cfg=vc,
                           text_cfg=dict(context_length=16, vocab_size=100, width=32, heads=2, layers=1))
    return from_model(model, preprocess=lambda im: torch.zeros(3, 32, 32), tokenizer=None,
                      name="tiny", key=f"tiny-{seed}-{sorted(vision.items())}")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).norm(dim=-1) / b.norm(dim=-1)).max())


@pytest.mark.parametrize("vision", [{}, {"ls_init_value": 0.3}, {"no_ln_pre": True},
                                    {"final_ln_after_pool": True}, {"layers": 5}])
def test_tiny_sum_equals_encode_image(vision):
    lm = tiny(**vision)
    x = torch.randn(3, 3, 32, 32)
    for k in (1, 3):
        d = decompose(lm, x, n_layers=k)
        assert d.heads.shape == (3, k, 4, 32) and d.rest.shape == (3, 32)
        n = lm.spec.n_layers
        assert d.layers == list(range(n - k, n))
        with torch.no_grad():
            ref = lm.model.encode_image(x, normalize=False)
        assert rel_err(d.heads.sum((1, 2)) + d.rest, ref) < 1e-4


def test_vitb32_sum_equals_encode_image(vitb32):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    d = decompose(vitb32, x, n_layers=4)
    assert d.heads.shape == (2, 4, 12, 512)
    assert d.layers == [8, 9, 10, 11]
    with torch.no_grad():
        ref = vitb32.model.encode_image(x, normalize=False)
    assert rel_err(d.total(), ref) < 1e-4


def test_last_layer_heads_match_brute_force_ablation():
    """Zeroing head h's out_proj columns (in a copy) removes exactly its term from the attention output."""
    lm = tiny(seed=3, ls_init_value=0.7)
    x = torch.randn(4, 3, 32, 32)
    d = decompose(lm, x, n_layers=2)
    vis = lm.model.visual
    ln, gamma_ls = vis.ln_post, vis.transformer.resblocks[-1].ls_1.gamma

    def cls_attention_out(visual) -> torch.Tensor:  # the last block's attention output at CLS [B, W]
        got = []
        hook = visual.transformer.resblocks[-1].attn.register_forward_hook(
            lambda m, i, o: got.append(o[0][:, 0]))
        with torch.no_grad():
            visual(x)
        hook.remove()
        return got[0]

    with torch.no_grad():
        full = cls_attention_out(vis)
        r = copy.deepcopy(vis)
        r.ln_post, r.proj = torch.nn.Identity(), None
        resid = r(x)                                             # the raw CLS residual before ln_post
        sigma = torch.sqrt(resid.var(-1, unbiased=False, keepdim=True) + ln.eps)
        for h in range(4):
            ablated = copy.deepcopy(vis)
            ablated.transformer.resblocks[-1].attn.out_proj.weight[:, h * 16:(h + 1) * 16] = 0
            c = (full - cls_attention_out(ablated)) * gamma_ls  # head h's term in the residual
            expect = (ln.weight * (c - c.mean(-1, keepdim=True)) / sigma) @ vis.proj
            assert torch.allclose(d.heads[:, -1, h], expect, atol=1e-5, rtol=1e-4)


def test_model_weights_untouched():
    lm = tiny(ls_init_value=0.5)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    decompose(lm, torch.randn(2, 3, 32, 32), n_layers=3)
    after = lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("vision", [{"pool_type": "avg"}, {"attentional_pool": True},
                                    {"qk_norm": True}])
def test_unsupported_towers_raise_clear_error(vision):
    with pytest.raises(ModelLoadError, match="(?i)pool|attention"):  # at load or at decompose
        decompose(tiny(**vision), torch.randn(1, 3, 32, 32))
    with pytest.raises(UnsupportedModelError, match="pool type 'avg'"):
        decompose(tiny(pool_type="avg"), torch.randn(1, 3, 32, 32))


def test_bad_layer_count():
    with pytest.raises(HeadSpecError, match="between 1 and 3"):
        decompose(tiny(), torch.randn(1, 3, 32, 32), n_layers=4)


class _Set:
    """A minimal image set: preprocessed tensors, counting the batches it hands out."""

    def __init__(self, n: int):
        self.x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        self.name, self.key, self.served = "rand", f"rand-{n}", 0

    def __len__(self):
        return len(self.x)

    def batches(self, preprocess, batch_size):
        for i in range(0, len(self.x), batch_size):
            self.served += 1
            yield self.x[i:i + batch_size]


def test_decompose_image_set_batches_progress_and_cache(store, monkeypatch):
    lm, images = tiny(), _Set(7)
    seen = []
    d = decompose_image_set(lm, images, n_layers=2, batch_size=3, store=store,
                            progress=lambda done, total: seen.append((done, total)))
    assert d.heads.shape == (7, 2, 4, 32) and images.served == 3
    assert seen[0] == (0, 7) and seen[-1] == (7, 7)
    direct = decompose(lm, images.x, n_layers=2)
    assert torch.allclose(d.heads, direct.heads, atol=1e-6)
    # second run: loaded from the store, no forward pass, no batch read
    import ccs_core.decompose as mod

    monkeypatch.setattr(mod, "decompose", lambda *a, **k: pytest.fail("forward pass on a cache hit"))
    again = decompose_image_set(lm, images, n_layers=2, batch_size=3, store=store)
    assert images.served == 3
    assert torch.equal(again.heads, d.heads) and np.array_equal(again.rest, d.rest)
    assert again.layers == d.layers == [1, 2]
    assert isinstance(again.by_head, np.memmap)  # read lazily from disk, not loaded whole
    assert torch.equal(again.moments.s2, d.moments.s2) and again.moments.n == 7
    # the streamed moments are those of all 7 images at once
    whole = Moments.of(direct.heads.reshape(7, 8, 32).transpose(0, 1))
    assert torch.allclose(d.moments.mean, whole.mean, atol=1e-6) and torch.allclose(d.moments.cov, whole.cov, atol=1e-6)
    assert torch.allclose(d.total(), direct.total(), atol=1e-5)


def test_decompose_image_set_with_a_real_image_set(store):
    import numpy as np
    from PIL import Image

    from ccs_core.data import ImageSet

    rng = np.random.default_rng(0)
    ims = [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(5)]
    iset = ImageSet.from_images("rand", ims)

    def pre(im):
        return torch.from_numpy(np.asarray(im.resize((32, 32)), dtype=np.float32)).permute(2, 0, 1) / 255

    lm = tiny()
    lm.preprocess = pre
    d = decompose_image_set(lm, iset, n_layers=3, batch_size=2, store=store)
    x = torch.stack([pre(im) for im in ims])
    with torch.no_grad():
        ref = lm.model.encode_image(x, normalize=False)
    assert rel_err(d.total(), ref) < 1e-4
    other = ImageSet.from_images("rand", ims[:4])
    assert decompose_image_set(lm, other, n_layers=3, store=store).heads.shape[0] == 4  # new key


def test_an_interrupted_decomposition_leaves_no_entry_and_an_in_memory_store_still_works(tmp_path, monkeypatch):
    from ccs_core.store import Store

    lm, images = tiny(), _Set(7)
    store = Store(tmp_path / "cache")
    import ccs_core.decompose as mod

    real, calls = mod.decompose, []

    def fail_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(mod, "decompose", fail_second)
    with pytest.raises(KeyboardInterrupt):
        decompose_image_set(lm, images, n_layers=2, batch_size=3, store=store)
    folder = tmp_path / "cache" / "arrays" / "decomposition"
    assert not list(folder.iterdir())  # neither an entry nor a temporary folder
    monkeypatch.setattr(mod, "decompose", real)
    on_disk = decompose_image_set(lm, images, n_layers=2, batch_size=3, store=store)
    in_memory = decompose_image_set(lm, images, n_layers=2, batch_size=3, store=Store(None))
    assert [p.name for p in folder.iterdir()] == [p.name for p in folder.iterdir() if not p.name.startswith(".")]
    assert torch.equal(on_disk.heads, in_memory.heads) and np.array_equal(on_disk.full, in_memory.full)
    assert torch.equal(on_disk.head(2, 3), in_memory.heads[:, 1, 3])


def test_row_files_write_blocks_along_an_axis(tmp_path):
    from ccs_core.mapped import RowFile

    rng = np.random.default_rng(0)
    want = rng.standard_normal((3, 10, 4)).astype(np.float32)
    for path in (tmp_path / "a.npy", None):
        f = RowFile(path, want.shape, np.dtype(np.float32), row_axis=1)
        for s in (0, 4, 7):
            f.write(s, want[:, s:s + {0: 4, 4: 3, 7: 3}[s]])
        with pytest.raises(ValueError, match="does not fit"):
            f.write(8, want[:, :3])
        f.close()
        got = np.load(path) if path else f.array
        assert np.array_equal(got, want)


def test_bf16_decomposition_is_close_to_fp32_stored_as_float32_and_keyed_apart(vitb32, store):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    full, half = decompose(vitb32, x, n_layers=4), decompose(vitb32, x, n_layers=4, precision="bf16")
    assert half.heads.dtype == torch.float32 and half.rest.dtype == torch.float32
    assert 0 < rel_err(half.total(), full.total()) < 0.05 and rel_err(half.heads, full.heads) < 0.05
    lm, images = tiny(), _Set(5)
    a = decompose_image_set(lm, images, n_layers=2, store=store)
    b = decompose_image_set(lm, images, n_layers=2, store=store, precision="bf16")
    assert images.served == 2 * 1 and not torch.equal(a.heads, b.heads)  # two entries, one per precision


# ---- the two conventions (own-mean, gandelsman) ---------------------------------------------------

def unit(e: torch.Tensor) -> torch.Tensor:
    return e / e.norm(dim=-1, keepdim=True)


def with_biases(lm):
    """``lm`` (a fresh model of this test's own) with random out_proj biases and ln_post gamma, beta:
    open_clip initialises them to 0, 0, 1, which would hide a misplaced bias share."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for blk in lm.model.visual.transformer.resblocks:
            blk.attn.out_proj.bias.copy_(torch.randn(blk.attn.out_proj.bias.shape, generator=g))
        ln = lm.model.visual.ln_post
        ln.weight.copy_(1 + 0.3 * torch.randn(ln.weight.shape, generator=g))
        ln.bias.copy_(torch.randn(ln.bias.shape, generator=g))
    return lm


@pytest.mark.parametrize("vision", [{}, {"ls_init_value": 0.3}, {"no_ln_pre": True}, {"layers": 5}])
def test_both_conventions_sum_to_the_embedding_with_biases(vision):
    """sum_i [gamma (c_i - mu w_i) / sigma + beta w_i] = ln_post(sum_i c_i) when the shares w_i sum to 1;
    @ proj, / |embedding|: the terms add up to encode_image(x, normalize=True)."""
    lm = with_biases(tiny(**vision))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = lm.model.encode_image(x, normalize=False)
    for k in (1, 3):
        own, g = decompose(lm, x, n_layers=k), decompose(lm, x, n_layers=k, norm="gandelsman")
        assert own.norm == "own-mean" and g.norm == "gandelsman" and g.heads.shape == own.heads.shape
        assert rel_err(own.total(), ref) < 1e-4                       # own-mean: the raw embedding
        assert float((g.total() - unit(ref)).norm(dim=-1).max()) < 1e-5  # gandelsman: the unit one
        assert rel_err(g.heads * ref.norm(dim=-1)[:, None, None, None], own.heads) > 1e-3  # not a rescaling


def test_vitb32_both_conventions_sum_to_the_embedding(vitb32):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = vitb32.model.encode_image(x, normalize=False)
    own, g = decompose(vitb32, x, n_layers=4), decompose(vitb32, x, n_layers=4, norm="gandelsman")
    assert rel_err(own.total(), ref) < 1e-4
    assert float((g.total() - unit(ref)).norm(dim=-1).max()) < 1e-5
    assert g.heads.shape == (2, 4, 12, 512) and not torch.allclose(g.heads, own.heads / ref.norm(dim=-1)[:, None, None, None])


def test_gandelsman_head_terms_follow_the_shares_of_the_whole_tower():
    """A head's term, from brute-force ablation: its raw write c plus 1/H of its layer's out_proj bias,
    centred by mu / ((2L + 1) H), plus beta / ((2L + 1) H), @ proj, / |embedding| (TEXTSPAN's code: T =
    2L + 1 terms for L blocks, an attention output split over its H heads), whatever K is."""
    lm = with_biases(tiny(seed=4, ls_init_value=0.7))
    x = torch.randn(4, 3, 32, 32)
    vis, L, H = lm.model.visual, lm.spec.n_layers, lm.spec.n_heads
    blk, ln = vis.transformer.resblocks[-1], vis.ln_post

    def cls_attention_out(visual) -> torch.Tensor:  # [B, W]
        got = []
        hook = visual.transformer.resblocks[-1].attn.register_forward_hook(lambda m, i, o: got.append(o[0][:, 0]))
        with torch.no_grad():
            visual(x)
        hook.remove()
        return got[0]

    with torch.no_grad():
        emb = lm.model.encode_image(x, normalize=False)
        r = copy.deepcopy(vis)
        r.ln_post, r.proj = torch.nn.Identity(), None
        resid = r(x)                                                             # [B, W]
        mu = resid.mean(-1, keepdim=True)
        sigma = torch.sqrt(resid.var(-1, unbiased=False, keepdim=True) + ln.eps)
        w = 1 / ((2 * L + 1) * H)
        full = cls_attention_out(vis)
        for k in (1, 2):
            d = decompose(lm, x, n_layers=k, norm="gandelsman")
            for h in range(H):
                ablated = copy.deepcopy(vis)
                ablated.transformer.resblocks[-1].attn.out_proj.weight[:, h * 16:(h + 1) * 16] = 0
                c = (full - cls_attention_out(ablated) + blk.attn.out_proj.bias / H) * blk.ls_1.gamma
                expect = ((ln.weight * (c - mu * w) / sigma + ln.bias * w) @ vis.proj) / emb.norm(dim=-1, keepdim=True)
                assert torch.allclose(d.heads[:, -1, h], expect, atol=1e-6, rtol=1e-4)


def test_conventions_are_entries_of_their_own_and_the_default_key_is_unchanged(store):
    from ccs_core.decompose import VERSION, entry
    from ccs_core.errors import DataError
    from ccs_core.store import cache_key

    lm, images = tiny(), _Set(5)
    key_own, _ = entry(lm, images, 2)
    assert key_own == cache_key(model=lm.key, images=images.key, n_layers=2, version=VERSION)  # as before
    assert entry(lm, images, 2, norm="gandelsman")[0] != key_own
    a = decompose_image_set(lm, images, n_layers=2, store=store)
    g = decompose_image_set(lm, images, n_layers=2, store=store, norm="gandelsman")
    assert images.served == 2 and (a.norm, g.norm) == ("own-mean", "gandelsman")
    again = decompose_image_set(lm, images, n_layers=2, store=store, norm="gandelsman")
    assert images.served == 2 and again.norm == "gandelsman" and np.array_equal(again.by_head, g.by_head)
    with torch.no_grad():
        ref = lm.model.encode_image(images.x, normalize=False)
    assert rel_err(a.total(), ref) < 1e-4 and float((g.total() - unit(ref)).norm(dim=-1).max()) < 1e-5
    with pytest.raises(DataError, match="Unknown decomposition convention 'gandelsmann'"):
        decompose(lm, images.x, norm="gandelsmann")


def test_the_pruning_preview_reads_own_mean_terms_only(store):
    from ccs_core.prune import DirectEffectPreview

    lm, images = tiny(), _Set(4)
    g = decompose_image_set(lm, images, n_layers=2, store=store, norm="gandelsman")
    with pytest.raises(HeadSpecError, match="own-mean"):
        DirectEffectPreview.from_decomposition(g)
    own = DirectEffectPreview.from_decomposition(decompose_image_set(lm, images, n_layers=2, store=store))
    assert own.features().shape == (4, 32)
