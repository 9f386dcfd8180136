"""Veil core benchmark: strip and mask timings against floors and peers, in one run.

Run it through scripts/bench/core (which sets up .venv first). Markdown goes to stdout,
progress to stderr. Every number in one output comes from the same run on the same
machine; ratios are against the floors measured in that run, never against old numbers.

1. Strip (FaceMode.OFF) per photo, on the 8 MP jolla JPEG and on the metadata corpus:
   copy floor, Veil in process, exiftool per file and in batch, mat2 per file and in batch.
2. Face masking on a 12 MP (4000x3000) JPEG built from scikit-image's astronaut and
   matplotlib's grace_hopper: Pillow decode+encode floor, Veil (warm), `veil scrub` and
   the deface CLI as whole processes.

Nothing is written into the repository: every file goes to a temporary directory.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
# Run as a script, Python puts scripts/bench/ first on sys.path; the benchmarks import each
# other as the package `bench` (as scripts/load_test.py does), so scripts/ goes first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, cpu_model, git_revision  # noqa: E402

DATA = Path(os.environ.get("VEIL_BENCH_DATA", ROOT.parent / "shared" / "data"))
JOLLA = DATA / "metadata" / "jpeg" / "ianare_mobile_jolla.jpg"
CORPUS_DIRS = ("jpeg", "png", "webp")
EXTENSION = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}

# Targets printed next to the results.
STRIP_VS_FLOOR_MAX = 3.0  # Veil strip within 3x the copy floor
STRIP_VS_EXIFTOOL_MIN = 2.0  # Veil >= 2x faster than exiftool batch
MASK_VS_DEFACE_MAX = 0.5  # Veil mask time <= 0.5x deface's

PHOTO_SIZE = (4000, 3000)
PHOTO_QUALITY = 90
TILE = 1000  # 4 x 3 tiles of 1000 px, each one face (astronaut / Grace Hopper alternating)
EXPECTED_FACES = (PHOTO_SIZE[0] // TILE) * (PHOTO_SIZE[1] // TILE)

TIMEOUT_PER_FILE = 60  # seconds, one peer process on one file
TIMEOUT_BATCH = 600  # one peer process over a folder
TIMEOUT_DEFACE = 900


@dataclass(frozen=True)
class Reps:
    jolla_inproc: int
    corpus_inproc: int
    jolla_exiftool_file: int
    corpus_exiftool_file: int
    jolla_batch_copies: int
    batch: int
    jolla_mat2_file: int
    corpus_mat2_file: int
    mask_floor: int
    mask_veil: int
    mask_cli: int
    deface_one: int
    deface_three: int
    deface_opencv: int


FULL = Reps(
    jolla_inproc=200, corpus_inproc=30, jolla_exiftool_file=10, corpus_exiftool_file=3,
    jolla_batch_copies=20, batch=5, jolla_mat2_file=10, corpus_mat2_file=2,
    mask_floor=5, mask_veil=5, mask_cli=3, deface_one=3, deface_three=2, deface_opencv=1,
)
QUICK = Reps(
    jolla_inproc=20, corpus_inproc=3, jolla_exiftool_file=2, corpus_exiftool_file=1,
    jolla_batch_copies=5, batch=1, jolla_mat2_file=2, corpus_mat2_file=1,
    mask_floor=2, mask_veil=2, mask_cli=1, deface_one=1, deface_three=1, deface_opencv=1,
)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    name: str
    ms: float | None  # per photo; None when not measured
    how: str  # repetitions / method
    note: str = ""  # shown instead of a time when ms is None, or appended otherwise


@dataclass
class Table:
    title: str
    baseline: str  # name of the floor row
    veil: str  # name of the Veil row
    rows: list[Row] = field(default_factory=list)
    veil_column: str = "× Veil"

    def get(self, name: str) -> Row | None:
        return next((row for row in self.rows if row.name == name), None)


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 100:
        return f"{ms:.1f} ms"
    return f"{ms:,.0f} ms"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×" if ratio < 100 else f"{ratio:,.0f}×"


def render(table: Table) -> str:
    base = table.get(table.baseline)
    veil = table.get(table.veil)
    lines = [
        f"#### {table.title}",
        "",
        f"| | time per photo | × floor | {table.veil_column} | runs | notes |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in table.rows:
        vs_floor = row.ms / base.ms if row.ms is not None and base and base.ms else None
        vs_veil = row.ms / veil.ms if row.ms is not None and veil and veil.ms else None
        name = f"**{row.name}**" if row is veil else row.name
        lines.append(
            f"| {name} | {fmt_ms(row.ms)} | {fmt_ratio(vs_floor)} | {fmt_ratio(vs_veil)} | {row.how} | {row.note} |"
        )
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "**met**" if ok else "**MISSED**"


# --------------------------------------------------------------------------- timing helpers


def runs_text(count: int, passes: bool = False) -> str:
    unit = ("pass" if count == 1 else "passes") if passes else ""
    return f"median of {count}{' ' + unit if unit else ''}" if count > 1 else f"1 {unit or 'run'}"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def time_process(argv: list[str], timeout: float, cwd: Path | None = None, env=None) -> tuple[float, int, str]:
    """Wall time of one whole process (start to exit), its exit code and the tail of stderr."""
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, timeout=timeout,
    )
    elapsed = time.perf_counter() - started
    return elapsed, done.returncode, done.stderr.decode(errors="replace")[-2000:]


def peer_row(name: str, measure, how: str) -> Row:
    """Runs a peer measurement; a timeout or a crash becomes a readable row, not a failure."""
    try:
        ms, note = measure()
        return Row(name, ms, how, note)
    except subprocess.TimeoutExpired as error:
        return Row(name, None, how, f"timed out after {error.timeout:.0f} s")
    except FileNotFoundError as error:
        return Row(name, None, how, f"not installed ({error.filename})")
    except Exception as error:  # noqa: BLE001 - a peer's failure must not lose the other numbers
        return Row(name, None, how, f"failed: {type(error).__name__}: {str(error)[:120]}")


def unavailable_row(name: str, skip_peers: bool) -> Row:
    return Row(name, None, "", "skipped (--skip-peers)" if skip_peers else "not installed")


# --------------------------------------------------------------------------- environment


def tool_version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[-1].strip() if done.returncode == 0 and text else None


def setup_deface(skip_peers: bool) -> tuple[str | None, str]:
    """Path of the deface CLI in .bench-venv (created on demand) or None and why."""
    if skip_peers:
        return None, "skipped (--skip-peers)"
    log("preparing .bench-venv with deface 1.5.0 and its dependencies (first run takes a minute)")
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "bench" / "_peers.sh")], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=1800,
        )
    except subprocess.TimeoutExpired:
        return None, "not installed (setting up .bench-venv timed out)"
    if done.returncode != 0 or not done.stdout.strip():
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        return None, f"not installed (.bench-venv setup failed: {tail[0][:100]})"
    return done.stdout.strip().splitlines()[-1], ""


# --------------------------------------------------------------------------- 1. strip


def corpus_files(sanitise, options) -> tuple[list[Path], list[str]]:
    """Every JPEG/PNG/WebP in the corpus folders that Veil accepts (one warm-up call each)."""
    accepted, refused = [], []
    for folder in CORPUS_DIRS:
        for path in sorted((DATA / "metadata" / folder).iterdir()):
            if not path.is_file() or path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp"):
                continue
            try:
                sanitise(path.read_bytes(), options)
            except Exception as error:  # noqa: BLE001
                refused.append(f"{path.name} ({type(error).__name__})")
                continue
            accepted.append(path)
    return accepted, refused


def copy_into(files: list[Path], folder: Path) -> list[Path]:
    """Flat, uniquely named copies with an extension matching the content (peers filter on it)."""
    from veil.clean import formats

    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for number, source in enumerate(files):
        kind = formats.sniff(source.read_bytes()[:64]).name
        target = folder / f"{number:03d}_{source.stem}{EXTENSION[kind]}"
        shutil.copyfile(source, target)
        copies.append(target)
    return copies


def inproc_per_file(files: list[Path], out_dir: Path, works: dict, reps: int) -> dict[str, float]:
    """read -> work -> write of every file, for each of `works`, interleaved pass by pass so
    that machine noise hits them alike. Each pass writes NEW files (a rewrite in place makes
    ext4 flush on close, which is not what a proxy writing fresh files pays); they are
    deleted between passes, untimed. Returns the median over passes, per file, in ms."""
    samples: dict[str, list[float]] = {name: [] for name in works}
    for number in range(reps + 1):  # pass 0 is an untimed warm-up: page cache, first calls
        for name, work in works.items():
            target = out_dir / f"{name}_{number}"
            target.mkdir()
            outs = [target / f"{index:03d}{path.suffix}" for index, path in enumerate(files)]
            started = time.perf_counter()
            for path, out in zip(files, outs):
                out.write_bytes(work(path.read_bytes()))
            elapsed = time.perf_counter() - started
            shutil.rmtree(target)
            if number:
                samples[name].append(elapsed / len(files))
    return {name: median_ms(values) for name, values in samples.items()}


def per_file_processes(files: list[Path], make_argv, output_of, reps: int) -> tuple[float, str]:
    """One process per file; median over `reps` passes of the mean per file, in ms, and a
    note on the files the peer did not clean (non-zero exit or no output)."""
    samples, failed = [], []
    for _ in range(reps):
        total, failed = 0.0, []
        for path in files:
            output = output_of(path)
            output.unlink(missing_ok=True)
            elapsed, code, _ = time_process(make_argv(path, output), TIMEOUT_PER_FILE)
            total += elapsed
            if code != 0 or not output.exists():
                failed.append(path)
        samples.append(total / len(files))
    return median_ms(samples), failure_note(failed)


def failure_note(failed: list[Path]) -> str:
    if not failed:
        return ""
    kinds = sorted({path.suffix.lower() for path in failed})
    return f"; {len(failed)} not cleaned" + (f" (all {kinds[0]}: not supported)" if len(kinds) == 1 else "")


def batch_process(files: list[Path], make_argv, reset, reps: int) -> tuple[float, int, str]:
    """One process over all `files`; median over `reps` of total / len(files), in ms."""
    samples, code, err = [], 0, ""
    for _ in range(reps):
        reset()
        elapsed, code, err = time_process(make_argv(), TIMEOUT_BATCH)
        samples.append(elapsed / len(files))
    return median_ms(samples), code, err


def strip_tables(reps: Reps, skip_peers: bool, tmp: Path) -> tuple[list[Table], dict]:
    from veil.clean.core import sanitise
    from veil.clean.options import FaceMode, SanitiseOptions

    off = SanitiseOptions(faces=FaceMode.OFF)

    def veil(data: bytes) -> bytes:
        return sanitise(data, off).data

    def copy(data: bytes) -> bytes:
        return data

    log("selecting the corpus (files Veil accepts)")
    corpus, refused = corpus_files(sanitise, off)
    facts = {"corpus": corpus, "refused": refused}
    exiftool = shutil.which("exiftool")
    mat2 = shutil.which("mat2")

    tables = []
    for label, files, inproc_reps, file_reps in (
        ("jolla", [JOLLA], reps.jolla_inproc, (reps.jolla_exiftool_file, reps.jolla_mat2_file)),
        ("corpus", corpus, reps.corpus_inproc, (reps.corpus_exiftool_file, reps.corpus_mat2_file)),
    ):
        work = tmp / f"strip_{label}"
        work.mkdir()
        if label == "jolla":
            size = JOLLA.stat().st_size
            title = (
                f"Strip metadata, one 8 MP phone JPEG (`{JOLLA.name}`, 3264×2448, {size:,} B)"
            )
            inproc_how = f"median of {inproc_reps}"
            # Batch peers get a folder of copies of the same photo: the cost per 8 MP file
            # once the process start is shared.
            batch_files = copy_into([JOLLA] * reps.jolla_batch_copies, work / "batch_in")
        else:
            total = sum(path.stat().st_size for path in files)
            kinds = {kind: sum(1 for p in files if p.parent.name == kind) for kind in CORPUS_DIRS}
            title = (
                f"Strip metadata, corpus: {len(files)} files "
                f"({kinds['jpeg']} JPEG, {kinds['png']} PNG, {kinds['webp']} WebP; "
                f"{total / 1e6:.2f} MB, mean {total / len(files) / 1e3:.0f} kB), mean per file"
            )
            inproc_how = runs_text(inproc_reps, True)
            batch_files = copy_into(files, work / "batch_in")
        table = Table(title, baseline="copy (floor)", veil="Veil sanitise, in process")
        tables.append(table)

        log(f"{label}: copy floor and Veil in process")
        inputs = copy_into(files, work / "in")
        out_dir = work / "out"
        out_dir.mkdir()
        timings = inproc_per_file(inputs, out_dir, {"copy": copy, "veil": veil}, inproc_reps)
        table.rows.append(Row("copy (floor)", timings["copy"], inproc_how, "read file → write new file, in process"))
        table.rows.append(Row("Veil sanitise, in process", timings["veil"], inproc_how,
                              "read → `sanitise(faces=OFF)` → write new file"))

        n_batch = len(batch_files)
        batch_note = f"one process over {n_batch} {'copies' if label == 'jolla' else 'files'}, total ÷ {n_batch}"
        exif_file_how = runs_text(file_reps[0], label == "corpus")
        mat2_file_how = runs_text(file_reps[1], label == "corpus")
        batch_how = runs_text(reps.batch)

        # exiftool, one process per file
        name = "exiftool, one process per file"
        if skip_peers or not exiftool:
            table.rows.append(unavailable_row(name, skip_peers))
        else:
            log(f"{label}: exiftool per file")
            peers_dir = work / "exiftool_out"
            peers_dir.mkdir()

            def measure():
                ms, failures = per_file_processes(
                    inputs, lambda path, out: [exiftool, "-q", "-q", "-all=", "-o", f"{peers_dir}/", str(path)],
                    lambda path: peers_dir / path.name, file_reps[0],
                )
                # `-o OUTDIR/` rather than `-o OUT.webp`: exiftool 12.57 answers "Can't write RIFF
                # files" to the latter, yet cleans WebP when it names the output itself.
                return ms, "`exiftool -all= -o OUTDIR/ IN`" + failures

            table.rows.append(peer_row(name, measure, exif_file_how))

        # exiftool, one process over a folder
        name = "exiftool, batch"
        if skip_peers or not exiftool:
            table.rows.append(unavailable_row(name, skip_peers))
        else:
            log(f"{label}: exiftool batch")
            batch_out = work / "exiftool_batch_out"

            def reset():
                shutil.rmtree(batch_out, ignore_errors=True)

            def measure():
                argv = [exiftool, "-q", "-q", "-all=", "-o", f"{batch_out}/", "-ext", "jpg", "-ext", "png",
                        "-ext", "webp", str(work / "batch_in")]
                ms, code, _ = batch_process(batch_files, lambda: argv, reset, reps.batch)
                failed = [path for path in batch_files if not (batch_out / path.name).exists()]
                return ms, f"`exiftool -all= -o OUTDIR/ -ext jpg -ext png -ext webp INDIR`; {batch_note}" + failure_note(failed)

            table.rows.append(peer_row(name, measure, batch_how))

        # mat2, one process per file (it writes NAME.cleaned.EXT next to the input: copies)
        name = "mat2, one process per file"
        if skip_peers or not mat2:
            table.rows.append(unavailable_row(name, skip_peers))
        else:
            log(f"{label}: mat2 per file (slow)")
            mat2_in = copy_into(files, work / "mat2_in")

            def cleaned(path: Path) -> Path:
                return path.with_name(f"{path.stem}.cleaned{path.suffix}")

            def measure():
                ms, failures = per_file_processes(mat2_in, lambda path, out: [mat2, str(path)], cleaned, file_reps[1])
                return ms, "`mat2 IN` (writes IN.cleaned.EXT)" + failures

            table.rows.append(peer_row(name, measure, mat2_file_how))

        # mat2, one process over all files
        name = "mat2, batch"
        if skip_peers or not mat2:
            table.rows.append(unavailable_row(name, skip_peers))
        else:
            log(f"{label}: mat2 batch")
            mat2_batch = work / "mat2_batch"

            def reset():
                shutil.rmtree(mat2_batch, ignore_errors=True)
                mat2_batch.mkdir()
                for path in batch_files:
                    shutil.copyfile(path, mat2_batch / path.name)

            def measure():
                names = [str(mat2_batch / path.name) for path in batch_files]
                ms, code, _ = batch_process(batch_files, lambda: [mat2, *names], reset, reps.batch)
                failed = [path for path in batch_files
                          if not (mat2_batch / f"{path.stem}.cleaned{path.suffix}").exists()]
                return ms, f"`mat2 f1 f2 …`; {batch_note}" + failure_note(failed)

            table.rows.append(peer_row(name, measure, batch_how))
    return tables, facts


# --------------------------------------------------------------------------- 2. mask


def build_photo(path: Path) -> None:
    """A 12 MP 'phone photo' with 12 faces: 4x3 tiles alternating scikit-image's astronaut
    and matplotlib's Grace Hopper, upscaled 512 -> 1000 px, with Gaussian sensor-like
    noise (sigma 4) so it compresses like a phone JPEG; saved at quality 90."""
    import numpy as np
    import skimage.data
    from matplotlib import cbook
    from PIL import Image

    astronaut = Image.fromarray(skimage.data.astronaut()).convert("RGB")
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        hopper = Image.open(handle).convert("RGB")
    hopper = hopper.crop((0, 0, hopper.width, hopper.width))  # square, face kept
    faces = [astronaut.resize((TILE, TILE), Image.Resampling.LANCZOS), hopper.resize((TILE, TILE), Image.Resampling.LANCZOS)]
    canvas = Image.new("RGB", PHOTO_SIZE)
    columns, rows = PHOTO_SIZE[0] // TILE, PHOTO_SIZE[1] // TILE
    for row in range(rows):
        for column in range(columns):
            canvas.paste(faces[(row + column) % 2], (column * TILE, row * TILE))
    pixels = np.asarray(canvas, dtype=np.float32)
    rng = np.random.default_rng(20240601)
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * 4.0
    noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    noisy.save(path, "JPEG", quality=PHOTO_QUALITY)


def count_deface_faces(deface: str, photo: Path, backend: str) -> str:
    python = Path(deface).with_name("python")
    code = (
        "import sys, imageio.v3 as iio\n"
        "from deface.centerface import CenterFace\n"
        f"c = CenterFace(in_shape=None, backend={backend!r})\n"
        "dets, _ = c(iio.imread(sys.argv[1]), threshold=0.2)\n"
        "print('FACES', len(dets))\n"
    )
    try:
        done = subprocess.run([str(python), "-c", code, str(photo)], capture_output=True, text=True, timeout=TIMEOUT_DEFACE)
    except subprocess.TimeoutExpired:
        return "timed out"
    for line in done.stdout.splitlines():
        if line.startswith("FACES "):
            return line.split()[1]
    return "failed"


def mask_tables(reps: Reps, deface: str | None, deface_why: str, tmp: Path) -> tuple[list[Table], dict]:
    from PIL import Image

    from veil.clean.core import sanitise
    from veil.clean.options import SanitiseOptions

    work = tmp / "mask"
    work.mkdir()
    photo = work / "photo12mp.jpg"
    log("building the 12 MP test photo")
    build_photo(photo)
    data = photo.read_bytes()
    facts: dict = {"photo_bytes": len(data)}
    title = (
        f"Mask faces, one 12 MP JPEG ({PHOTO_SIZE[0]}×{PHOTO_SIZE[1]}, q{PHOTO_QUALITY}, {len(data) / 1e6:.1f} MB, "
        f"{EXPECTED_FACES} faces: astronaut + Grace Hopper mosaic with noise)"
    )
    table = Table(title, baseline="Pillow decode + encode (floor)", veil="Veil sanitise (MASK), in process",
                  veil_column="Veil ÷ this")

    log("mask: Pillow floor")

    def codec() -> None:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image.save(io.BytesIO(), "JPEG", quality=PHOTO_QUALITY)

    codec()
    samples = []
    for _ in range(reps.mask_floor):
        started = time.perf_counter()
        codec()
        samples.append(time.perf_counter() - started)
    table.rows.append(Row("Pillow decode + encode (floor)", median_ms(samples), runs_text(reps.mask_floor),
                          f"in memory, `quality={PHOTO_QUALITY}`"))

    log("mask: Veil cold call (model load)")
    options = SanitiseOptions()
    veil_name = "Veil sanitise (MASK), in process"
    try:
        started = time.perf_counter()
        first = sanitise(data, options)
        facts["veil_cold_ms"] = (time.perf_counter() - started) * 1000
        facts["veil_faces"] = len(first.report.faces)
        facts["veil_quality"] = first.report.jpeg_quality
        log("mask: Veil warm runs")
        samples, stages = [], []
        for _ in range(reps.mask_veil):
            started = time.perf_counter()
            result = sanitise(data, options)
            samples.append(time.perf_counter() - started)
            stages.append(result.report.timings_ms)
    except Exception as error:  # noqa: BLE001 - report it in the table, keep the other numbers
        log(f"mask: Veil failed: {error!r}")
        table.rows.append(Row(veil_name, None, "", f"**failed**: {type(error).__name__}: {str(error)[:120]}"))
    else:
        facts["stages"] = {key: statistics.median(s.get(key, 0.0) for s in stages) for key in stages[0]}
        table.rows.append(Row(veil_name, median_ms(samples), runs_text(reps.mask_veil) + ", after 1 warm-up",
                              "default options; in memory; model load excluded"))

    log("mask: veil scrub CLI (whole process)")
    veil_cli = ROOT / ".venv" / "bin" / "veil"

    def veil_process():
        out = work / "veil_out.jpg"
        runs = []
        for _ in range(reps.mask_cli):
            out.unlink(missing_ok=True)
            elapsed, code, err = time_process([str(veil_cli), "scrub", str(photo), str(out)], TIMEOUT_DEFACE)
            if code != 0:
                raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else f"exit {code}")
            runs.append(elapsed)
        return median_ms(runs), "`veil scrub IN OUT`: interpreter start + imports + model load + one photo"

    table.rows.append(peer_row("`veil scrub` CLI, whole process", veil_process, runs_text(reps.mask_cli)))

    deface_rows = ("deface CLI, whole process (1 photo)", "deface, per photo (3 vs 1 photo in one process)",
                   "deface CLI `--backend opencv`, whole process")
    if deface is None:
        for name in deface_rows:
            table.rows.append(Row(name, None, "", deface_why))
        facts["deface_faces"] = deface_why
        return [table], facts

    three = [work / f"copy{i}.jpg" for i in range(3)]
    for path in three:
        shutil.copyfile(photo, path)

    def run_deface(inputs: list[Path], extra: list[str]) -> float:
        for path in inputs:
            path.with_name(f"{path.stem}_anonymized{path.suffix}").unlink(missing_ok=True)
        elapsed, code, err = time_process([deface, *extra, *map(str, inputs)], TIMEOUT_DEFACE, cwd=work)
        missing = [p for p in inputs if not p.with_name(f"{p.stem}_anonymized{p.suffix}").exists()]
        if code != 0 or missing:
            raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else f"exit {code}")
        return elapsed

    log("mask: deface CLI, 1 photo")
    one_runs: list[float] = []

    def deface_one():
        run_deface(three[:1], [])  # warm-up: page cache for the venv's libraries
        one_runs.extend(run_deface(three[:1], []) for _ in range(reps.deface_one))
        return median_ms(one_runs), "`deface IN` (defaults: onnxruntime, full resolution, blur, threshold 0.2)"

    table.rows.append(peer_row(deface_rows[0], deface_one, runs_text(reps.deface_one) + ", after 1 warm-up"))

    log("mask: deface CLI, 3 photos in one process")

    def deface_per_photo():
        runs = [run_deface(three, []) for _ in range(reps.deface_three)]
        three_ms = median_ms(runs)
        one_ms = median_ms(one_runs)
        per_photo = (three_ms - one_ms) / 2
        note = f"(3 photos {fmt_ms(three_ms)} − 1 photo {fmt_ms(one_ms)}) ÷ 2; "
        if per_photo <= 0 or per_photo > one_ms:
            return per_photo, note + "inconsistent: the machine was probably busy, rerun"
        return per_photo, note + f"so start + imports + model load ≈ {fmt_ms(one_ms - per_photo)}"

    table.rows.append(peer_row(deface_rows[1], deface_per_photo, runs_text(reps.deface_three) + " of the 3-photo process"))

    log("mask: deface CLI with the OpenCV backend")

    def deface_opencv():
        runs = [run_deface(three[:1], ["--backend", "opencv"]) for _ in range(reps.deface_opencv)]
        return median_ms(runs), "what `pip install deface` alone gives (no onnxruntime)"

    table.rows.append(peer_row(deface_rows[2], deface_opencv, runs_text(reps.deface_opencv)))

    log("mask: counting deface's faces")
    facts["deface_faces"] = count_deface_faces(deface, photo, "onnxrt")
    facts["deface_faces_opencv"] = count_deface_faces(deface, photo, "opencv")
    return [table], facts


# --------------------------------------------------------------------------- report


def profile_strip(quick: bool) -> str:
    """cProfile of sanitise(faces=OFF), in memory (no file I/O), on the 8 MP JPEG and on the corpus."""
    from veil.clean.core import sanitise
    from veil.clean.options import FaceMode, SanitiseOptions

    options = SanitiseOptions(faces=FaceMode.OFF)
    corpus, _ = corpus_files(sanitise, options)
    jolla = JOLLA.read_bytes()
    cases = (
        (f"{20 if quick else 200} × sanitise(jolla, faces=OFF)", [jolla] * (20 if quick else 200)),
        (f"{1 if quick else 10} passes of sanitise(faces=OFF) over the {len(corpus)}-file corpus",
         [path.read_bytes() for path in corpus] * (1 if quick else 10)),
    )
    parts = []
    for title, inputs in cases:
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for data in inputs:
            sanitise(data, options)
        profiler.disable()
        elapsed = (time.perf_counter() - started) * 1000 / len(inputs)
        for order, count in (("cumulative", 22), ("tottime", 12)):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(count)
            text = out.getvalue()
            parts.append(f"cProfile of {title} ({elapsed:.2f} ms per call under the profiler), by {order}:\n"
                         + text[text.find("   ncalls"):].rstrip())
    return "\n\n".join(parts)


def machine_facts(deface: str | None) -> list[str]:
    import numpy
    import onnxruntime
    import PIL

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    deface_version = tool_version([deface, "--version"]) if deface else None
    load = ", ".join(f"{start:.2f} → {end:.2f}" for start, end in zip(LOAD_AT_START, os.getloadavg()))
    busy = LOAD_AT_START[0] > 0.5 * affinity or os.getloadavg()[0] > 1.5 * affinity
    threads = os.environ.get("VEIL_ORT_THREADS") or "2 (default)"
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; Veil at `{git_revision()}`",
        f"- Machine: {cpu_model()}, nproc {affinity}, {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Load average (1, 5, 15 min) at start → end: {load}"
        + (" — **the machine was busy: numbers are noisy**" if busy else ""),
        f"- Python {platform.python_version()}, Pillow {PIL.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"numpy {numpy.__version__}; VEIL_ORT_THREADS={threads}",
        f"- Peers: exiftool {tool_version(['exiftool', '-ver']) or 'not installed'}, "
        f"{tool_version(['mat2', '--version']) or 'mat2 not installed'}, "
        f"deface {deface_version or 'not installed'}" + (" (in .bench-venv, with onnxruntime)" if deface_version else ""),
    ]


LOAD_AT_START = os.getloadavg()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke check)")
    parser.add_argument("--skip-peers", action="store_true", help="only Veil and the floors")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the strip on the 8 MP JPEG")
    args = parser.parse_args()
    reps = QUICK if args.quick else FULL
    if not JOLLA.is_file():
        print(f"bench: test data not found at {DATA} (set VEIL_BENCH_DATA)", file=sys.stderr)
        return 2

    deface, deface_why = setup_deface(args.skip_peers)
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as scratch:
        tmp = Path(scratch)
        strip, strip_facts = strip_tables(reps, args.skip_peers, tmp)
        mask, mask_facts = mask_tables(reps, deface, deface_why, tmp)
        facts = machine_facts(deface)

    out = [f"### Veil core benchmark{' (--quick: few repetitions, smoke check only)' if args.quick else ''}", ""]
    out += facts + [""]

    for table in strip:
        out += [render(table), ""]
        floor, veil, batch = (table.get(n) for n in ("copy (floor)", "Veil sanitise, in process", "exiftool, batch"))
        vs_floor = veil.ms / floor.ms
        speedup = batch.ms / veil.ms if batch and batch.ms else None
        out.append(
            f"Targets: strip within {STRIP_VS_FLOOR_MAX:g}× the copy floor → {fmt_ratio(vs_floor)} "
            f"{verdict(vs_floor <= STRIP_VS_FLOOR_MAX)}; ≥ {STRIP_VS_EXIFTOOL_MIN:g}× faster than exiftool batch → "
            + (f"{fmt_ratio(speedup)} faster {verdict(speedup >= STRIP_VS_EXIFTOOL_MIN)}" if speedup else "not measured")
        )
        out.append("")

    table = mask[0]
    out += [render(table), ""]
    veil = table.get(table.veil)
    if "stages" in mask_facts:
        out.append(
            "Veil's own stage timings (median `report.timings_ms`): "
            + ", ".join(f"{key} {fmt_ms(value)}" for key, value in mask_facts["stages"].items())
            + f". First call in the process (model load + session compile + photo): {fmt_ms(mask_facts['veil_cold_ms'])}."
        )
        out.append("")
    deface_cli = table.get("deface CLI, whole process (1 photo)")
    deface_photo = table.get("deface, per photo (3 vs 1 photo in one process)")
    veil_cli = table.get("`veil scrub` CLI, whole process")
    parts = []
    if veil.ms and deface_cli and deface_cli.ms:
        ratio = veil.ms / deface_cli.ms
        parts.append(f"Veil ÷ deface CLI (whole process, what a user pays) → {fmt_ratio(ratio)} {verdict(ratio <= MASK_VS_DEFACE_MAX)}")
    if veil.ms and deface_photo and deface_photo.ms:
        ratio = veil.ms / deface_photo.ms
        parts.append(f"warm Veil ÷ deface per photo (like for like, model loaded) → {fmt_ratio(ratio)} {verdict(ratio <= MASK_VS_DEFACE_MAX)}")
    if veil_cli and veil_cli.ms and deface_cli and deface_cli.ms:
        ratio = veil_cli.ms / deface_cli.ms
        parts.append(f"`veil scrub` ÷ deface CLI (both whole processes) → {fmt_ratio(ratio)} {verdict(ratio <= MASK_VS_DEFACE_MAX)}")
    out.append(f"Target: Veil ≤ {MASK_VS_DEFACE_MAX:g}× deface's time. " + ("; ".join(parts) if parts else "not measured") + ".")
    out.append("")
    deface_faces = mask_facts.get("deface_faces")
    faces_line = f"Faces found (for information; {EXPECTED_FACES} in the photo): Veil {mask_facts.get('veil_faces', 'failed')}, deface {deface_faces}"
    if "deface_faces_opencv" in mask_facts:
        faces_line += f" (onnxruntime) / {mask_facts['deface_faces_opencv']} (OpenCV backend)"
    out.append(faces_line + f" (both at threshold 0.2). Veil re-encoded at estimated quality {mask_facts.get('veil_quality')}.")
    out.append("")

    corpus, refused = strip_facts["corpus"], strip_facts["refused"]
    out += [
        "Notes:",
        f"- Corpus = every .jpg/.png/.webp under `metadata/{{jpeg,png,webp}}/` of the test data that Veil accepts "
        f"({len(corpus)} files); refused and left out: {', '.join(refused) or 'none'}.",
        "- In-process rows time read + work + write of new files in a temp dir (copy and Veil interleaved, after one "
        "untimed warm-up pass); "
        "peer rows time whole processes (start to exit), outputs deleted between runs. Times per photo.",
        "- Batch rows on the 8 MP JPEG run over a folder of copies of it, so the process start is shared.",
        "- × floor = row ÷ the floor of its table; × Veil = row ÷ Veil (how many times slower than Veil); "
        "Veil ÷ this < 1 means Veil is faster.",
        "- deface: run from `.bench-venv` (deface 1.5.0 + opencv-python, imageio, imageio-ffmpeg, scikit-image, tqdm, "
        "onnx, onnxruntime); it runs the network at full resolution and blurs; Veil fills faces opaquely and "
        "verifies its output (the verify stage re-runs detection inside every mask).",
    ]
    if args.skip_peers:
        out.append("- `--skip-peers`: exiftool, mat2 and deface were not run.")
    print("\n".join(out))
    if args.profile:
        print("\n```\n" + profile_strip(args.quick) + "\n```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
