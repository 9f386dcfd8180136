"""Personal text, QR codes and barcodes in pictures: read, judged, covered, checked again.

- `ocr`: RapidOCR (PP-OCRv6 on onnxruntime, models shipped in its wheel), loaded once per process.
- `pii`: the rules that say which recognised text is personal (checksums from phonenumbers
  and python-stdnum).
- `codes`: QR codes and barcodes (zxing-cpp), masked whole with their quiet zone.
- `masks`: from a character span to a rectangle; opaque covers.
- `scan`: one picture top to bottom, including documents photographed sideways.

Nothing here is imported while text masking is off.
"""

from .masks import cover
from .ocr import default_reader, model_problem
from .scan import TextScan, scan
from .verify import leftover_text

__all__ = ["TextScan", "cover", "default_reader", "leftover_text", "model_problem", "scan"]
