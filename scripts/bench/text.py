"""Text masking benchmark (scripts/bench/text): a fixed set of rendered screenshots, ID cards,
photographed letters (upright, sideways, upside down) and number plates, each with the boxes
of its personal tokens, other words and codes (tests/text_samples.py).

For Veil (`text: pii`) and the peers on the same images in the same run: recall of personal
tokens, share of other words kept, codes masked (all judged by pixels), time per image
(p50/p95 in process; whole `veil scrub` processes), and peak memory. Prints Markdown.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, cpu_model, git_revision  # noqa: E402

sys.path.insert(0, str(ROOT / "addons"))
sys.path.insert(0, str(ROOT / "tests"))
import text_samples as samples  # noqa: E402

PEER_VENV = Path(os.environ.get("VEIL_PRESIDIO_VENV", ROOT / ".bench-venv-presidio"))  # overridable: an existing venv


def fixed_set(quick: bool) -> list[samples.Sample]:
    if quick:
        return [samples.screenshot(100), samples.id_card(200)]
    shots = [samples.screenshot(100 + i) for i in range(6)]
    cards = [samples.id_card(200 + i) for i in range(3)] + [samples.photographed(samples.id_card(210), 210, turn=90)]
    letters = [samples.photographed(samples.letter(300 + i), 300 + i) for i in range(2)]
    letters += [samples.photographed(samples.letter(310), 310, turn=180), samples.photographed(samples.letter(311), 311, turn=270)]
    return shots + cards + letters + [samples.plate(400), samples.plate(401)]


@dataclass
class Outcome:
    name: str
    how: str
    outputs: dict[str, Image.Image] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)
    note: str = ""


def run_veil(images: list[samples.Sample]) -> Outcome:
    from veil.clean.core import sanitise
    from veil.clean.options import FaceMode, SanitiseOptions, TextMode

    options = SanitiseOptions(faces=FaceMode.OFF, text=TextMode.PII)
    sanitise(images[0].png(), options)  # load the models once, as a worker does at start
    outcome = Outcome("Veil `text: pii` (RapidOCR PP-OCRv6 + rules, verified)", "in process: sanitise(), including the second read")
    for sample in images:
        data = sample.png()
        started = time.perf_counter()
        result = sanitise(data, options)
        outcome.ms[sample.name] = (time.perf_counter() - started) * 1000
        outcome.outputs[sample.name] = Image.open(io.BytesIO(result.data)).convert("RGB")
    return outcome


def run_tesseract_rules(images: list[samples.Sample]) -> Outcome:
    """Tesseract's word boxes, grouped into its lines, judged by Veil's own rules and filled:
    the same rules as Veil, another OCR engine, no verification."""
    import pytesseract

    from veil.clean.options import TextDetectionSettings
    from veil.clean.text import pii
    from veil.clean.text.masks import cover, span_rect
    from veil.clean.text.ocr import Line, Word

    settings = TextDetectionSettings()
    outcome = Outcome("Tesseract 5 + Veil's rules", "in process: pytesseract word boxes -> lines -> the same rules -> fill")
    for sample in images:
        started = time.perf_counter()
        data = pytesseract.image_to_data(sample.image, output_type=pytesseract.Output.DICT)
        grouped: dict[tuple, list[Word]] = {}
        for i, text in enumerate(data["text"]):
            if text.strip() and float(data["conf"][i]) > 0:
                box = (data["left"][i], data["top"][i], data["left"][i] + data["width"][i], data["top"][i] + data["height"][i])
                grouped.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(Word(text, box))
        lines = [
            Line(" ".join(w.text for w in words), 1.0, (min(w.box[0] for w in words), min(w.box[1] for w in words), max(w.box[2] for w in words), max(w.box[3] for w in words)), tuple(words))
            for words in grouped.values()
        ]
        rects = [span_rect(lines[h.line], h.start, h.end, settings, sample.image.size) for h in pii.find_personal_text(lines)]
        outcome.outputs[sample.name] = cover(sample.image, rects)
        outcome.ms[sample.name] = (time.perf_counter() - started) * 1000
    return outcome


def run_presidio(images: list[samples.Sample], tmp: Path) -> Outcome:
    python = PEER_VENV / "bin" / "python"
    how = "its own venv: ImageRedactorEngine.redact(), Tesseract OCR, blank spaCy (no model download possible)"
    outcome = Outcome("Presidio image redactor (Tesseract)", how)
    if not python.exists():
        outcome.note = f"not installed ({PEER_VENV.name}: scripts/bench/text creates it)"
        return outcome
    source, target = tmp / "in", tmp / "presidio"
    source.mkdir(exist_ok=True)
    target.mkdir(exist_ok=True)
    for sample in images:
        sample.image.save(source / f"{sample.name}.png")
    done = subprocess.run([str(python), str(Path(__file__).with_name("text_presidio.py")), str(source), str(target)], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        outcome.note = f"failed: {done.stderr.strip().splitlines()[-1][:160] if done.stderr.strip() else done.returncode}"
        return outcome
    times = json.loads(done.stdout.strip().splitlines()[-1])
    for sample in images:
        outcome.ms[sample.name] = times[f"{sample.name}.png"]
        outcome.outputs[sample.name] = Image.open(target / f"{sample.name}.png").convert("RGB")
    return outcome


def whole_process_ms(images: list[samples.Sample], tmp: Path, runs: int) -> tuple[list[float], int]:
    """`veil scrub IN OUT --text pii --faces off` as a user runs it: one process per image
    (screenshots only), and the largest peak RSS of those processes in MiB."""
    veil = [sys.executable, "-m", "veil.cli", "scrub"]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "addons"))
    times, peak = [], 0
    for sample in [s for s in images if s.name.startswith("screenshot")][:runs]:
        source, target = tmp / f"{sample.name}.png", tmp / f"{sample.name}-out.png"
        sample.image.save(source)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        subprocess.run([*veil, str(source), str(target), "--text", "pii", "--faces", "off"], check=True, env=env, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return times, peak // 1024


def scores(outcome: Outcome, images: list[samples.Sample]) -> dict:
    verdicts = [samples.judge(sample, outcome.outputs[sample.name]) for sample in images if sample.name in outcome.outputs]
    total = lambda attribute: sum(getattr(v, attribute) for v in verdicts)  # noqa: E731
    shots = [outcome.ms[s.name] for s in images if s.name.startswith("screenshot") and s.name in outcome.ms]
    every = list(outcome.ms.values())
    return {
        "recall": total("personal_covered") / max(1, total("personal_total")),
        "kept": total("others_kept") / max(1, total("others_total")),
        "codes": f"{total('codes_covered')}/{total('codes_total')}",
        "shot_p50": statistics.median(shots) if shots else None,
        "p50": statistics.median(every) if every else None,
        "p95": percentile(every, 0.95),
        "missed": sorted({kind for v in verdicts for kind in v.missed}),
    }


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def fmt(ms: float | None) -> str:
    return "—" if ms is None else f"{ms / 1000:.2f} s"


def table(outcomes: list[Outcome], images: list[samples.Sample], process: tuple[list[float], int], inproc_peak_mib: int) -> str:
    baseline = scores(outcomes[0], images)
    lines = [
        "| tool | PII recall | other words kept | codes masked | 1080p screenshot p50 | all images p50 / p95 | time vs Veil | missed kinds | how |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        if not outcome.outputs:
            lines.append(f"| {outcome.name} | — | — | — | — | — | — | — | {outcome.note} |")
            continue
        s = scores(outcome, images)
        ratio = "1.00×" if outcome is outcomes[0] else f"{s['p50'] / baseline['p50']:.2f}×"
        lines.append(
            f"| {outcome.name} | {s['recall']:.3f} | {s['kept']:.3f} | {s['codes']} | {fmt(s['shot_p50'])} | "
            f"{fmt(s['p50'])} / {fmt(s['p95'])} | {ratio} | {', '.join(s['missed']) or '—'} | {outcome.how} |"
        )
    times, peak = process
    lines += [
        "",
        f"Whole `veil scrub IN OUT --text pii --faces off` process per 1080p screenshot (start, model load, clean, verify, write): "
        f"p50 {fmt(statistics.median(times) if times else None)} over {len(times)} runs; peak RSS {peak} MiB. "
        f"Peak RSS of this benchmark process (Veil and the Tesseract peer in process): {inproc_peak_mib} MiB.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two images: a smoke check, not numbers to publish")
    parser.add_argument("--skip-peers", action="store_true", help="Veil alone")
    args = parser.parse_args()
    images = fixed_set(args.quick)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        outcomes = [run_veil(images)]
        if not args.skip_peers:
            outcomes += [run_presidio(images, tmp), run_tesseract_rules(images)]
        process = whole_process_ms(images, tmp, runs=2 if args.quick else 4)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    load = os.getloadavg()[0]
    print(f"## Text masking — {len(images)} images ({', '.join(sorted({s.name.rsplit('-', 1)[0] for s in images}))})\n")
    print(f"{cpu_model()}, {os.cpu_count()} cores, load average {load:.1f} at the end, revision {git_revision()}\n")
    print(table(outcomes, images, process, peak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
