"""Shards: a decomposition computed in pieces, here or as Ray tasks, is the one computed at once."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ccs_core.decompose import decompose_image_set
from ccs_core.shards import local_runner, ranges
from ccs_core.store import Store


def test_ranges_cover_every_image_once():
    for n, k in ((10, 3), (7, 7), (3, 8), (1000, 16)):
        parts = ranges(n, k)
        assert parts[0][0] == 0 and parts[-1][1] == n and len(parts) == min(n, k)
        assert all(a < b and b == c for (a, b), (c, _) in zip(parts, parts[1:] + [(n, n)]))


def test_shards_merged_equal_the_single_process_result(tiny, tmp_path):
    from ccs_core.toyworld.tasks import toy_image_set

    images = toy_image_set("test", n=37, seed=0)
    whole = decompose_image_set(tiny, images, n_layers=2, batch_size=8, store=Store(tmp_path / "a"))
    parts = decompose_image_set(tiny, images, n_layers=2, batch_size=8, store=Store(tmp_path / "b"),
                                shards=local_runner(tiny, images, 3, n_layers=2, batch_size=8))
    # other batch boundaries round the float32 forward pass differently (~1e-7); the merge itself is
    # exact (test_textspan: shards of the same numbers)
    assert np.allclose(parts.by_head, whole.by_head, atol=1e-6) and np.allclose(parts.full, whole.full, atol=1e-6)
    assert parts.moments.n == whole.moments.n == 37
    assert torch.allclose(parts.moments.mean, whole.moments.mean, atol=1e-6)
    assert torch.allclose(parts.moments.cov, whole.moments.cov, atol=1e-6)
    direct = torch.from_numpy(np.cov(np.asarray(parts.by_head[5], dtype=np.float64).T, bias=True))
    assert (parts.moments.cov[5] - direct).abs().max() < 1e-9  # the merged moments are the shards' numbers
    with pytest.raises(Exception, match="cache on disk"):
        decompose_image_set(tiny, images, n_layers=2, store=Store(None),
                            shards=local_runner(tiny, images, 3, n_layers=2))


def test_a_local_two_worker_ray_run_gives_the_same_spans(tmp_path, monkeypatch, capsys):
    """spans --ray --shards 2 on the toy model: two Ray tasks write the shards; the spans are those of
    the in-process run, exactly."""
    pytest.importorskip("ray")  # in requirements-dev.txt: CI runs this
    from ccs_core.cli import main

    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "plain"))
    assert main(["-q", "spans", "--n-images", "96", "--out", str(tmp_path / "plain.json")]) == 0
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "ray"))
    monkeypatch.setenv("RAY_ADDRESS", "")
    assert main(["-q", "spans", "--n-images", "96", "--ray", "--shards", "2", "--workers", "0",
                 "--out", str(tmp_path / "ray.json")]) == 0, capsys.readouterr().err
    plain, ray = (json.loads((tmp_path / f).read_text()) for f in ("plain.json", "ray.json"))
    assert [h["texts"] for h in ray["heads"]] == [h["texts"] for h in plain["heads"]]
    assert [v for h in ray["heads"] for v in h["variances"]] == pytest.approx(
        [v for h in plain["heads"] for v in h["variances"]], rel=1e-5)


def test_ray_options_are_checked(tmp_path, monkeypatch, capsys):
    from ccs_core.cli import main

    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "c"))
    assert main(["spans", "--shards", "2", "--out", str(tmp_path / "s.json")]) == 2
    assert "--shards N (at least 1) goes with --ray" in capsys.readouterr().err


def test_a_sweep_runs_each_chain_once_and_resumes(tmp_path, monkeypatch, capsys):
    """sweep: spans -> score -> prune-eval per (model, images), each step's JSON in the chain's
    folder; a second run finds them and runs nothing; a bad dataset stops its chain with exit 2."""
    from ccs_core.cli import main

    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "grid"
    assert main(["-q", "sweep", "--datasets", "toy:colour", "--out-dir", str(out)]) == 0
    first = capsys.readouterr().out
    assert "toy__toy: spans.json ok, scores.json ok, prune__toy-colour.json ok" in first
    rows = json.loads((out / "toy__toy" / "prune__toy-colour.json").read_text())["summary"]
    assert {r["strategy"] for r in rows} >= {"original", "high", "random"}
    assert main(["-q", "sweep", "--datasets", "toy:colour", "--out-dir", str(out)]) == 0
    assert "spans.json done before, scores.json done before, prune__toy-colour.json done before" in capsys.readouterr().out
    (out / "toy__toy" / "spans.json").write_text("{}")  # JSON, but not a spans result: run again
    assert main(["-q", "sweep", "--datasets", "toy:colour", "--out-dir", str(out)]) == 0
    assert "spans.json ok, scores.json ok, prune__toy-colour.json ok" in capsys.readouterr().out
    assert main(["-q", "sweep", "--datasets", "toy:colour", "--judges", "toy", "--out-dir", str(out)]) == 0
    assert "spans.json done before, scores.json ok, prune__toy-colour.json ok" in capsys.readouterr().out
    assert main(["-q", "sweep", "--datasets", "toy:colour,toy:nofactor", "--out-dir", str(out)]) == 2
    summary = json.loads((out / "sweep.json").read_text())
    last = summary[0]["steps"][-1]  # with the step's own message, and whether it wrote its output
    assert last == {"step": "prune__toy-nofactor.json", "status": "failed", "code": 2, "fresh": False,
                    "message": last["message"]} and "nofactor" in last["message"]
    assert main(["sweep", "--models", "toy,toy", "--out-dir", str(out)]) == 2
    assert "names 'toy' twice" in capsys.readouterr().err


def test_shards_carry_the_convention(tiny, tmp_path):
    """A gandelsman entry from shards is the single-process gandelsman entry; a runner built for another
    convention than the entry's is refused (it would write own-mean terms under a gandelsman key)."""
    from ccs_core.errors import DataError
    from ccs_core.toyworld.tasks import toy_image_set

    images = toy_image_set("test", n=11, seed=0)
    whole = decompose_image_set(tiny, images, n_layers=2, batch_size=4, store=Store(tmp_path / "a"), norm="gandelsman")
    parts = decompose_image_set(tiny, images, n_layers=2, batch_size=4, store=Store(tmp_path / "b"), norm="gandelsman",
                                shards=local_runner(tiny, images, 2, n_layers=2, batch_size=4, norm="gandelsman"))
    assert parts.norm == "gandelsman" and np.allclose(parts.by_head, whole.by_head, atol=1e-6)
    assert np.allclose(np.linalg.norm(parts.full, axis=-1), 1.0, atol=1e-5)  # the normalised embedding
    with pytest.raises(DataError, match="same norm"):
        decompose_image_set(tiny, images, n_layers=2, store=Store(tmp_path / "c"), norm="gandelsman",
                            shards=local_runner(tiny, images, 2, n_layers=2))
