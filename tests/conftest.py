import sys
from pathlib import Path

# The tests import helpers that live beside them (fixtures, exiftool_judge, sample_faces).
sys.path.insert(0, str(Path(__file__).resolve().parent))
