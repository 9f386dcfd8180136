"""`veil scrub IN OUT`: strip metadata and mask faces in one image file, or in every file
of a folder (`veil scrub DIR OUTDIR`, see scrub_folder).

Exit codes: 0 done, 2 the input was refused (unsupported, too large, malformed, not
verifiable) or could not be read or written, with one readable line on stderr.
"""

import argparse
import json
import sys
from pathlib import Path

from ..clean.errors import SanitiseError
from ..clean.options import FaceMode, SanitiseOptions, TextMode
from .installation import face_model_problem
from .output import output_refusal, write_atomically
from .scrub_folder import folder_refusal, scrub_folder

EXIT_REFUSED = 2


def register(commands) -> None:
    scrub = commands.add_parser("scrub", help="strip metadata and mask faces in an image or document (PDF, Office, ZIP/TAR) file, or a folder of them")
    scrub.add_argument("input", help="image or document to clean ('-' for standard input), or a folder")
    scrub.add_argument("output", help="where to write the clean image ('-' for standard output), or the folder for a folder's")
    scrub.add_argument(
        "--faces",
        choices=[mode.value for mode in FaceMode],
        default=FaceMode.MASK.value,
        help="mask (opaque, default), blur or pixelate (weaker: can be undone), or off",
    )
    scrub.add_argument(
        "--text",
        choices=[mode.value for mode in TextMode],
        default=TextMode.OFF.value,
        help="mask personal text and every QR code/barcode (pii), all text and codes (all), or nothing (off, default)",
    )
    scrub.add_argument("--drop-icc", action="store_true", help="also drop the colour profile")
    scrub.add_argument("--max-megapixels", type=float, default=50.0, help="refuse larger images (default 50)")
    scrub.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout (a folder: one per file)")
    scrub.add_argument("--jobs", type=_at_least_one, default=2, help="a folder: files cleaned in parallel (default 2)")
    scrub.set_defaults(handler=_scrub)


def _options(args: argparse.Namespace) -> SanitiseOptions:
    return SanitiseOptions(
        faces=FaceMode(args.faces), keep_icc=not args.drop_icc, max_pixels=int(args.max_megapixels * 1e6), text=TextMode(args.text)
    )


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _scrub(args: argparse.Namespace) -> int:
    options = _options(args)
    folder = args.input != "-" and Path(args.input).is_dir()
    refusal = _output_refusal(args, folder)
    if refusal:
        return _refuse(refusal)  # before anything is read, cleaned or written
    problem = face_model_problem() if options.faces is not FaceMode.OFF else None
    if problem:
        return _refuse(f"cannot mask faces: {problem}\n  (or run with --faces off to strip metadata only)")
    problem = _text_model_problem() if options.text is not TextMode.OFF else None
    if problem:
        return _refuse(f"cannot mask text: {problem}\n  (or run with --text off)")
    if folder:
        return scrub_folder(Path(args.input), Path(args.output), options, args.jobs, args.json)
    return _scrub_file(args, options)


def _text_model_problem() -> str | None:
    from ..clean.text import model_problem

    return model_problem()


def _output_refusal(args: argparse.Namespace, folder: bool) -> str | None:
    if folder:
        return folder_refusal(Path(args.input), Path(args.output))
    return output_refusal(Path(args.output)) if args.output != "-" else None


def _scrub_file(args: argparse.Namespace, options: SanitiseOptions) -> int:
    from ..clean.core import sanitise  # imported here so `veil --help` stays instant

    try:
        data = sys.stdin.buffer.read() if args.input == "-" else Path(args.input).read_bytes()
    except OSError as error:
        return _refuse(f"cannot read {args.input}: {error.strerror}")
    try:
        result = sanitise(data, options)
    except SanitiseError as error:
        return _refuse(f"{args.input}: {error.reason}")
    if args.output == "-":
        sys.stdout.buffer.write(result.data)
        sys.stdout.buffer.flush()
    else:
        try:
            write_atomically(Path(args.output), result.data)
        except OSError as error:
            return _refuse(f"cannot write {args.output}: {error.strerror}")
    if args.json:
        print(json.dumps(result.report.to_dict()), file=sys.stderr if args.output == "-" else sys.stdout)
    return 0


def _refuse(message: str) -> int:
    print(f"veil: {message}", file=sys.stderr)
    return EXIT_REFUSED
