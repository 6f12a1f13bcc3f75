"""Zero-shot accuracy table, text classifier cache, text-video retrieval."""
from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image

from ccs_core import evaluate as ev
from ccs_core.errors import DataError
from ccs_core.prune import CCSTable, PruneConfig, strategy_configs
from ccs_core.video import VideoSet, load_video_folder
from ccs_core.zeroshot import ZeroShotTask
from tests.conftest import FakeImageSet


def FakeSet(n, labels, seed=0):
    return FakeImageSet(n, labels=labels, seed=seed)


TASK = ZeroShotTask("toy-colour", ["red", "green", "blue"], ["{}", "a picture of {} object"])


def test_text_classifier_is_mean_of_normalised_templates(tiny, store):
    clf = ev.text_classifier(tiny, TASK, store)
    assert clf.shape == (3, 64)
    e = tiny.encode_texts(["green", "a picture of green object"]).mean(0)
    assert torch.allclose(clf[1], e / e.norm(), atol=1e-6)
    assert ev.text_classifier(tiny, TASK, store) is clf  # memory cache
    ev._CLASSIFIERS.clear()
    assert torch.equal(ev.text_classifier(tiny, TASK, store), clf)  # Store cache
    with pytest.raises(DataError, match="no class names"):
        ev.text_classifier(tiny, ZeroShotTask("empty", [], ["{}"]))


def test_zero_shot_metrics_by_hand():
    clf = torch.eye(3)
    feats = torch.tensor([[2.0, 0, 0], [0, 0, 5], [0, 1, 0], [1, 1, 0]])
    m = ev.zero_shot_metrics(feats, clf, [0, 1, 1, 1], scale=1.0)
    assert m["accuracy"] == pytest.approx(0.5)  # ties go to the first class (argmax)
    e = torch.e
    p = [e / (e + 2), 1 / (e + 2), e / (e + 2), torch.exp(torch.tensor(2 ** -0.5)).item()
         / (2 * torch.exp(torch.tensor(2 ** -0.5)).item() + 1)]
    assert m["mean_true_prob"] == pytest.approx(sum(p) / 4, rel=1e-5)


def test_prune_eval_table_matches_brute_force(tiny, store):
    data = FakeSet(12, [i % 3 for i in range(12)])
    rows_in = [{"head": f"L5.H{h}", "ccs": 5 if h < 2 else 0, "label": "colour"} for h in range(8)]
    table = CCSTable(rows_in)
    configs = [PruneConfig("original")] + [c for s in ("high", "low", "random")
                                           for c in strategy_configs(s, table, 6, 8)]
    rows = ev.prune_eval(tiny, data, TASK, configs, batch_size=5, store=store)
    assert [r["strategy"] for r in rows] == ["original", "high", "low"] + ["random"] * 5
    assert set(rows[0]) >= {
        "strategy", "seed", "n_heads", "heads", "accuracy", "mean_true_prob", "n_images", "task", "mode"}
    clf, scale = ev.text_classifier(tiny, TASK), ev.logit_scale(tiny)
    ref = copy.deepcopy(tiny.model.visual)
    with torch.no_grad():
        for h in (0, 1):
            ref.transformer.resblocks[5].attn.out_proj.weight[:, h * tiny.spec.head_dim:(h + 1) * tiny.spec.head_dim] = 0
        want = ev.zero_shot_metrics(ref(data.x), clf, data.labels, scale)
        orig = ev.zero_shot_metrics(tiny.encode_images(data.x), clf, data.labels, scale)
    assert rows[1]["heads"] == ["L5.H0", "L5.H1"]
    assert rows[1]["accuracy"] == want["accuracy"]
    assert rows[1]["mean_true_prob"] == pytest.approx(want["mean_true_prob"], rel=1e-5)
    assert rows[0]["mean_true_prob"] == pytest.approx(orig["mean_true_prob"], rel=1e-5)
    summary = ev.summarize(rows)
    rnd = [s for s in summary if s["strategy"] == "random"][0]
    accs = torch.tensor([r["accuracy"] for r in rows[3:]], dtype=torch.float64)
    assert rnd["runs"] == 5 and rnd["accuracy"] == pytest.approx(float(accs.mean()))
    assert rnd["accuracy_std"] == pytest.approx(float(accs.std()))
    assert ev.prune_eval(tiny, data, TASK, configs, store=store) == rows  # features from the Store
    assert ev.prune_eval(tiny, data, TASK, configs[:2], mode="mean")[1]["mode"] == "mean"


def test_prune_eval_needs_labels(tiny):
    with pytest.raises(DataError, match="no class labels"):
        ev.prune_eval(tiny, FakeSet(3, None), TASK, [PruneConfig("original")])


def test_retrieval_metrics_by_hand():
    videos = torch.eye(4)
    text = torch.tensor([[1.0, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 0, 0.2, 0.5], [0, 0, 0, 1]])
    m = ev.retrieval_metrics(text, videos, [0, 1, 2, 0])  # ranks 1, 2, 2, 2 (0,0 tie counts against)
    assert m == {"R@1": 0.25, "R@5": 1.0, "R@10": 1.0, "median_rank": 2.0}


def test_video_embedding_is_mean_of_normalised_frames():
    f = torch.tensor([[3.0, 0], [0, 1], [0, 2]])
    v = ev.video_embeddings(f, [0, 0, 1], 2)
    assert torch.allclose(v, torch.tensor([[2 ** -0.5, 2 ** -0.5], [0, 1]]))


def test_retrieval_on_toy_videos(tiny, store):
    from ccs_core.toyworld.tasks import toy_videos

    clips, caps = toy_videos(n=6, frames=3)
    vs = VideoSet.from_clips("toy-videos", clips, caps)
    configs = [PruneConfig("original")] + strategy_configs("heads:L5.H0,L4.H1", None, 6, 8)
    rows = ev.retrieval_eval(tiny, vs, configs, batch_size=4, store=store)
    assert [r["strategy"] for r in rows] == ["original", "custom"] and rows[0]["n_videos"] == 6
    frames = torch.stack([tiny.preprocess(im) for c in clips for im in c])
    vid = ev.video_embeddings(tiny.encode_images(frames), [i for i in range(6) for _ in range(3)], 6)
    assert rows[0] == {**rows[0], **ev.retrieval_metrics(tiny.encode_texts(caps), vid, range(6))}
    for r in rows:
        assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] == 1.0 and 1 <= r["median_rank"] <= 6


def test_video_folder(tmp_path):
    for vid, n in [("v1", 3), ("v2", 2), ("v3", 0)]:
        (tmp_path / vid).mkdir()
        for i in range(n):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / vid / f"{i:03d}.png")
    (tmp_path / "v2" / "bad.jpg").write_bytes(b"not an image")
    (tmp_path / "captions.txt").write_text("v1\ta red thing\nv2\tblue\nv1\tanother\nv3\tnothing\n")
    vs = load_video_folder(tmp_path)
    assert vs.video_ids == ["v1", "v2"] and [len(f) for f in vs.frames] == [3, 2]
    assert vs.captions == ["a red thing", "blue", "another"] and vs.caption_video == [0, 1, 0]
    assert sorted(r for _, r in vs.skipped) == ["no readable frames", "unreadable image: UnidentifiedImageError"]
    with pytest.raises(DataError, match="captions file"):
        load_video_folder(tmp_path / "v1")
    (tmp_path / "captions.txt").write_text("v1 no tab here\n")
    with pytest.raises(DataError, match="TAB"):
        load_video_folder(tmp_path)


def test_cli_prune_eval_and_bias(tiny, tmp_path, monkeypatch, capsys):
    import json

    import ccs_core.models as models
    from ccs_core import cli

    monkeypatch.setattr(models, "load_model", lambda *a, **k: tiny)
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("ccs_core.store.DEFAULT_ROOT", tmp_path / "cache")
    ccs = tmp_path / "ccs.json"
    ccs.write_text(json.dumps([{"head": f"L5.H{h}", "ccs": 5 if h < 2 else 0, "label": "colour"}
                               for h in range(8)]))
    out = tmp_path / "pe.json"
    assert cli.main(["prune-eval", "--dataset", "toy:colour", "--n-images", "8", "--ccs", str(ccs),
                     "--seeds", "2", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["strategy"] for r in res["rows"]] == ["original", "high", "low", "random", "random"]
    assert res["rows"][1]["heads"] == ["L5.H0", "L5.H1"] and res["task"] == "toy-colour"
    assert "accuracy" in capsys.readouterr().out
    out = tmp_path / "bias.json"
    assert cli.main(["bias", "--dataset", "toy-bias", "--n-images", "8", "--k", "4",
                     "--strategy", "heads:L5.H3", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [(r["strategy"], r["attribute"], r["k"]) for r in res["rows"]] == [
        ("original", "background", 4), ("custom", "background", 4)]
    assert cli.main(["prune-eval", "--dataset", "toy", "--strategy", "high", "--out", str(out)]) == 2
    assert "needs CCS scores" in capsys.readouterr().err


def test_kept_residual_is_reused_and_exact(tiny):
    data = FakeSet(7, [i % 3 for i in range(7)], seed=9)
    ev._RESIDUALS.clear()
    configs = [PruneConfig("original")] + strategy_configs("heads:L5.H0,L4.H3", None, 6, 8)
    streamed = ev.prune_eval(tiny, data, TASK, configs, batch_size=3)
    kept = ev.prune_eval(tiny, data, TASK, configs, batch_size=3, first_layer=3, keep_residual=True)
    assert [r["mean_true_prob"] for r in kept] == pytest.approx([r["mean_true_prob"] for r in streamed], rel=1e-5)
    (cache,) = ev._RESIDUALS.values()
    assert cache.first_layer == 3 and len(cache.resid) == 7
    later = strategy_configs("heads:L3.H1", None, 6, 8)
    ev.prune_eval(tiny, data, TASK, later, keep_residual=True)
    assert list(ev._RESIDUALS.values()) == [cache]  # layer 3 is covered: no recomputation
    ev.prune_eval(tiny, data, TASK, strategy_configs("heads:L1.H1", None, 6, 8), keep_residual=True)
    assert list(ev._RESIDUALS.values())[0].first_layer == 1  # an earlier layer replaces it
    ev._RESIDUALS.clear()


def test_preview_eval_rows_are_marked_approximate(tiny):
    from ccs_core.decompose import decompose
    from ccs_core.prune import DirectEffectPreview

    data = FakeSet(6, [0, 1, 2, 0, 1, 2], seed=4)
    pv = DirectEffectPreview.from_decomposition(decompose(tiny, data.x, n_layers=2))
    configs = [PruneConfig("original")] + strategy_configs("heads:L5.H0,L4.H2", None, 6, 8)
    rows = ev.preview_eval(tiny, pv, data.labels, TASK, configs)
    exact = ev.prune_eval(tiny, data, TASK, configs)
    assert all(r["approximate"] for r in rows) and rows[1]["heads"] == ["L4.H2", "L5.H0"]
    assert rows[0]["mean_true_prob"] == pytest.approx(exact[0]["mean_true_prob"], rel=1e-4)  # no heads: exact
