"""`veil …`: a thin command-line adapter over the core.

Exit codes: 0 done, 2 the input was refused (unsupported, too large, malformed, not
verifiable) or could not be read, with one readable line on stderr.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from .errors import SanitiseError
from .options import FaceMode, SanitiseOptions

EXIT_REFUSED = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_REFUSED
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veil", description="Keep personal data in photos away from AI services.")
    commands = parser.add_subparsers(title="commands")
    scrub = commands.add_parser("scrub", help="strip metadata and mask faces in one image file")
    scrub.add_argument("input", help="image file to clean ('-' for standard input)")
    scrub.add_argument("output", help="where to write the clean image ('-' for standard output)")
    scrub.add_argument(
        "--faces",
        choices=[mode.value for mode in FaceMode],
        default=FaceMode.MASK.value,
        help="mask (opaque, default), blur or pixelate (weaker: can be undone), or off",
    )
    scrub.add_argument("--drop-icc", action="store_true", help="also drop the colour profile")
    scrub.add_argument("--max-megapixels", type=float, default=50.0, help="refuse larger images (default 50)")
    scrub.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    scrub.set_defaults(handler=_scrub)
    return parser


def _scrub(args: argparse.Namespace) -> int:
    from .core import sanitise  # imported here so `veil --help` stays instant

    options = SanitiseOptions(
        faces=FaceMode(args.faces), keep_icc=not args.drop_icc, max_pixels=int(args.max_megapixels * 1e6)
    )
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
            _write_atomically(Path(args.output), result.data)
        except OSError as error:
            return _refuse(f"cannot write {args.output}: {error.strerror}")
    if args.json:
        print(json.dumps(result.report.to_dict()), file=sys.stderr if args.output == "-" else sys.stdout)
    return 0


def _refuse(message: str) -> int:
    print(f"veil: {message}", file=sys.stderr)
    return EXIT_REFUSED


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers never see a half-written image, and a failure leaves no file behind."""
    handle, temporary = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would surprise a user
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


if __name__ == "__main__":
    sys.exit(main())
