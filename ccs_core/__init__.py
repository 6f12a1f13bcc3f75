"""ccs_core: Concept Consistency Scores for the attention heads of CLIP image encoders."""
from .errors import CCSError
from .heads import HeadId, parse_heads

__all__ = ["CCSError", "HeadId", "parse_heads"]
