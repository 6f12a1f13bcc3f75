"""Shared fixtures. Tests never touch the repo's cache/: CCS_CACHE_DIR points at a temp dir."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent  # the package comes from `pip install -e .`
os.environ.setdefault("CCS_CACHE_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "ccs-test-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class FakeImageSet:
    """Minimal image set of n random toy-sized images (name, key, len, batches, labels, groups), for
    tests that need the model's forward pass but not real pictures."""

    def __init__(self, n, labels=None, groups=None, seed=0):
        import torch

        from ccs_core.toyworld.world import IMAGE_SIZE

        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
        self.name, self.key, self.labels, self.groups = "fake", f"fake-{n}-{seed}", labels, groups

    def __len__(self):
        return len(self.x)

    def batches(self, preprocess, batch_size):
        for i in range(0, len(self.x), batch_size):
            yield self.x[i:i + batch_size]


@pytest.fixture(scope="session")
def llm_server():
    """One fake LLM server (OpenAI + Anthropic wire formats) for the session; tests ``reset()`` it."""
    from llm_server import FakeLLMServer

    srv = FakeLLMServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def store(tmp_path):
    from ccs_core.store import Store

    return Store(tmp_path / "cache")


@pytest.fixture(scope="session")
def vitb32():
    """A real ViT-B-32 architecture with random weights (no download)."""
    import torch

    from ccs_core.models import load_model

    torch.manual_seed(0)
    return load_model("ViT-B-32")


@pytest.fixture(scope="session")
def tiny():
    """A random-init CLIP of the toy architecture, 6 layers deep (16 heads of width 8, 32 px; the bundled
    toy has 4), so that pruning the last layers leaves unpruned ones before them: real open_clip
    classes, fast enough for many pruning configurations. Tests never modify it."""
    import copy

    import torch

    from ccs_core.models import from_model
    from ccs_core.toyworld.model import TOY_CONFIG, build_toy

    config = copy.deepcopy(TOY_CONFIG)
    config["vision_cfg"]["layers"] = 6
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model, pre, tok = build_toy(config)
    return from_model(model, pre, tok, name="tiny", key="tiny-random-0")


def pytest_sessionstart(session):
    """In CI (CI=true) every pinned requirement and the browser must be there: the tests that would
    otherwise skip without them (AppTest, the browser tests) must run, so a broken set-up fails."""
    import importlib.util

    if not os.environ.get("CI"):
        return
    missing = [m for m in ("streamlit", "playwright", "open_clip", "anthropic", "openai", "altair", "diskcache")
               if importlib.util.find_spec(m) is None]
    if not Path("/usr/bin/chromium").exists():
        missing.append("chromium (/usr/bin/chromium)")
    if missing:
        import pytest

        pytest.exit(f"CI: missing {', '.join(missing)}; scripts/test.sh installs them — fix the set-up "
                    "instead of skipping their tests.", returncode=3)
