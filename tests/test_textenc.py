"""Cut-to-longest text encoding equals open_clip's own ``encode_text`` over the full context."""
from __future__ import annotations

import copy

import torch

from ccs_core import textenc, tower

TEXTS = ["a dog", "a photo of a very small red car parked on a long empty street at night", "cat",
         "an image with a blue diamond on a striped background", "", "a", "a ring on a diagonal"]


def reference(loaded, texts):
    with torch.no_grad():
        return loaded.model.encode_text(loaded.tokenizer(texts), normalize=True).float()


def test_cut_batches_equal_full_context_vitb32(vitb32):
    texts = TEXTS * 5  # several batches of mixed lengths, sorted and restored
    fast = textenc.encode_texts(vitb32.model, vitb32.tokenizer, texts, vitb32.spec.embed_dim, batch_size=4)
    full = reference(vitb32, texts)
    assert fast.shape == full.shape
    assert (fast - full).abs().max() < 1e-5
    # the cut really happens: the longest text here is far shorter than CLIP's 77 tokens
    pos = tower.text_pool_positions(vitb32.model, vitb32.tokenizer(texts))
    assert pos is not None and int(pos.max()) + 1 < 30


def test_cut_equals_full_on_the_toy_tower_and_via_loaded_model(tiny):
    texts = ["red circle", "a picture of a small green square at the top left", "dog", "circle"] * 3
    assert (tiny.encode_texts(texts, batch_size=5) - reference(tiny, texts)).abs().max() < 1e-5


def test_unknown_pooling_falls_back_to_encode_text(tiny):
    model = copy.deepcopy(tiny.model)  # never touch the shared fixture
    model.text_pool_type = "last"      # the last position depends on every token: no cut allowed
    tokens = tiny.tokenizer(["red circle", "a picture of red circle"])
    assert tower.text_pool_positions(model, tokens) is None
    got = textenc.encode_texts(model, tiny.tokenizer, ["red circle", "a picture of red circle"],
                               tiny.spec.embed_dim)
    with torch.no_grad():
        want = model.encode_text(tokens, normalize=True)
    assert torch.allclose(got, want, atol=1e-6)


def test_progress_reports_every_batch(tiny):
    seen = []
    tiny.encode_texts([f"red circle {i}" for i in range(10)], batch_size=4,
                      progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 10), (8, 10), (10, 10)]
