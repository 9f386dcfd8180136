"""The pure cleaner: `sanitise(bytes, options) -> Result` — sniff, strip or mask, verify.

Layer rule: `clean` imports nothing from `policy`, `proxy`, `audit` or `cli`, and never
mitmproxy. It does no I/O: bytes in, bytes and a report out, or one typed error.

- `core`: the sequence for one image; `options`, `report`, `errors`: its contract.
- `formats/`: one module per image format (magic bytes, lossless strip, re-encode, padding).
- `faces/`: the detector (CenterFace on onnxruntime) and the masks.
- `verify`: the second look at every output (independent re-parse, re-detection in the masks).
"""
