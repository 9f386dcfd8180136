"""The peer of scripts/bench/text: Microsoft Presidio's image redactor (Tesseract OCR +
presidio-analyzer), run from its own venv (.bench-venv-presidio) on a folder of PNGs.

Presidio's analyzer normally loads a spaCy model (en_core_web_lg) that must be downloaded;
no registry package ships one here, so it runs on a blank English spaCy pipeline: its
pattern and checksum recognisers (e-mail, phone, credit card, IBAN, US SSN, UK NINO, ...)
all work, its NER-based ones (PERSON, LOCATION) find nothing. The table says so.

Usage: python text_presidio.py IN_DIR OUT_DIR  -> prints {"name.png": ms, ...} as JSON.
"""

import json
import sys
import time
from pathlib import Path

from PIL import Image


def analyzer():
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class BlankSpacy(SpacyNlpEngine):
        """spaCy without a downloaded model: tokens only, no entities."""

        def load(self):
            self.nlp = {"en": spacy.blank("en")}

    engine = BlankSpacy(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def main() -> int:
    from presidio_image_redactor import ImageAnalyzerEngine, ImageRedactorEngine

    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    redactor = ImageRedactorEngine(image_analyzer_engine=ImageAnalyzerEngine(analyzer_engine=analyzer()))
    times = {}
    for path in sorted(source.glob("*.png")):
        image = Image.open(path).convert("RGB")
        started = time.perf_counter()
        redacted = redactor.redact(image, fill=(0, 0, 0))
        times[path.name] = (time.perf_counter() - started) * 1000
        redacted.save(target / path.name)
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
