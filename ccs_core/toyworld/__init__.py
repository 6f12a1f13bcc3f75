"""The bundled toy world: a procedural world of coloured shapes, and a small CLIP trained on it offline."""
