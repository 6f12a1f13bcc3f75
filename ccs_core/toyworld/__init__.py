"""The bundled toy world: a procedural world of coloured shapes, and a small CLIP trained on it offline."""

from pathlib import Path

# The bundled files (here, not in model.py: reading paths must not import torch).
TOY_DIR = Path(__file__).resolve().parent
TOY_CHECKPOINT = TOY_DIR / "toy_clip.pt"
TOY_CARD = TOY_DIR / "model_card.json"
