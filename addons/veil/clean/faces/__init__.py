"""Finding faces (CenterFace) and covering them."""

from .detector import CenterFace, Face, default_detector
from .mask import apply_masks

__all__ = ["CenterFace", "Face", "apply_masks", "default_detector"]
