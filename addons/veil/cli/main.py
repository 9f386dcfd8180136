"""`veil …`: a thin command-line adapter over the core. Each group of subcommands lives in
its own module (scrub, run, policy, audit, browser, demo); this one builds the parser and runs
the chosen handler.

Exit codes: 0 done, 2 the input was refused or the arguments are wrong, with one readable
line on stderr (each module states its own).
"""

import argparse
import os
import signal
import sys

from .audit import register as register_audit_commands
from .browser import register as register_browser_commands
from .demo import register as register_demo_command
from .installation import version
from .policy import register as register_policy_commands
from .run import register as register_run_command
from .scrub import register as register_scrub_command

EXIT_USAGE = 2
# What a shell reports for a program killed by SIGPIPE: `veil … | head -1` stopped reading.
EXIT_READER_GONE = 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status = args.handler(args)
        sys.stdout.flush()  # here, not at exit, where a reader gone would escape as a traceback
        return status
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """The reader of our output left (`| head`): what is unprinted is not wanted, so stop
    quietly. stdout goes to /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_READER_GONE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veil", description="Keep personal data in photos away from AI services.")
    parser.add_argument("--version", action="version", version=f"veil {version()}")
    commands = parser.add_subparsers(title="commands")
    register_scrub_command(commands)
    register_run_command(commands)
    register_policy_commands(commands)
    register_audit_commands(commands)
    register_browser_commands(commands)
    register_demo_command(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
