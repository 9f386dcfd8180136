"""`veil trust` and `veil pac`: setting up a person's machine to use Veil. Thin adapters over
`trust` (the steps per operating system) and `pac` (the proxy auto-config file).

Exit codes: 0 done, 1 a step of `trust --apply` failed, 2 bad arguments, a bad policy or a
refusal to apply without confirmation.
"""

import argparse
import sys
from pathlib import Path

from . import ca_files, trust

EXIT_FAILED, EXIT_REFUSED = 1, 2


def register(commands) -> None:
    command = commands.add_parser(
        "trust",
        help="show (and with --apply, do) what makes your browsers and tools trust Veil's CA",
        description="Prints the steps that make this user's browsers, SDKs and tools trust Veil's CA. "
        "Nothing is changed unless --apply is given; then Veil first lists exactly what it will do.",
    )
    command.add_argument("--confdir", default="~/.mitmproxy", help="where the CA certificate lives (default ~/.mitmproxy)")
    command.add_argument("--os", choices=trust.SYSTEMS, default=None, help="show the steps for another system")
    command.add_argument("--apply", action="store_true", help="perform the steps marked automatic, for this user only")
    command.add_argument("--yes", action="store_true", help="with --apply: do not ask for confirmation")
    command.add_argument("--env", action="store_true", help="print only the environment variables, for eval")
    command.set_defaults(handler=_trust)

    pac = commands.add_parser(
        "pac",
        help="write a proxy auto-config file sending only the protected hosts through Veil",
        description="Writes a PAC file: hosts the policy protects go to the proxy, everything else DIRECT. "
        "A running Veil also serves it at http://HOST:PORT/proxy.pac.",
    )
    pac.add_argument("--proxy", default="127.0.0.1:8080", help="where Veil listens, HOST:PORT (default 127.0.0.1:8080)")
    pac.add_argument("--policy", default=None, help="policy file (default: config/policy.yaml)")
    pac.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    pac.set_defaults(handler=_pac)


# --------------------------------------------------------------------------------------------
# veil trust
# --------------------------------------------------------------------------------------------


def _trust(args: argparse.Namespace) -> int:
    here = trust.current_system()
    system = args.os or here
    if args.apply and system != here:
        print(f"veil: --apply works on this machine only ({here}); drop --os {system} or --apply", file=sys.stderr)
        return EXIT_REFUSED
    situation = _situation(system, Path(args.confdir).expanduser(), on_this_machine=system == here)
    if args.env:
        if not situation.ca_pem.exists():
            print(f"veil: {situation.ca_pem} does not exist yet; start Veil once (`veil run`) to create it", file=sys.stderr)
            return EXIT_REFUSED
        print("\n".join(ca_files.advice_lines(situation.ca_pem, system)))
        return 0
    step_list = trust.steps(situation)
    missing_ca = not situation.ca_pem.exists()
    if not args.apply:
        print(f"Trusting Veil's CA ({situation.ca_pem}) on {system}. Nothing has been changed; "
              f"`veil trust --apply` performs the steps marked [auto] for you.")  # fmt: skip
        if missing_ca:
            print("The CA does not exist yet: start Veil once (`veil run`) and it is created there.")
        print()
        print(_render_marked(step_list, system))
        return 0
    if missing_ca:
        print(f"veil: {situation.ca_pem} does not exist yet; start Veil once (`veil run`) to create it", file=sys.stderr)
        return EXIT_REFUSED
    return _apply(step_list, system, assume_yes=args.yes)


def _situation(system: str, confdir: Path, on_this_machine: bool) -> trust.Situation:
    home = Path.home()
    if not on_this_machine:
        return trust.Situation(system, confdir / "mitmproxy-ca-cert.pem", home)
    nssdb = home / ".pki" / "nssdb"
    profiles = ()
    if system == "linux":
        found = [*home.glob(".mozilla/firefox/*/cert9.db"), *home.glob("snap/firefox/common/.mozilla/firefox/*/cert9.db")]
        profiles = tuple(sorted(path.parent for path in found))
    return trust.Situation(
        system,
        confdir / "mitmproxy-ca-cert.pem",
        home,
        nssdb_exists=(nssdb / "cert9.db").exists(),
        firefox_profiles=profiles,
        system_bundle=ca_files.system_roots(),  # on Windows certifi's, when installed
    )


def _render_marked(step_list: list[trust.Step], system: str) -> str:
    marked = [
        trust.Step(f"[{'auto' if step.automatic else 'you'}] {step.title}", step.actions, step.automatic, step.undo, step.why)
        for step in step_list
    ]
    return trust.render(marked, system)


def _apply(step_list: list[trust.Step], system: str, assume_yes: bool) -> int:
    automatic = [step for step in step_list if step.automatic]
    print("Veil will now do exactly this, for your user only:\n")
    print(trust.render(automatic, system, only_automatic=True))
    print()
    if not assume_yes:
        if not sys.stdin.isatty():
            print("veil: not changing anything without confirmation; run again with --yes", file=sys.stderr)
            return EXIT_REFUSED
        if input("Go ahead? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing was changed.")
            return EXIT_REFUSED
    failed = 0
    for step in automatic:
        try:
            trust.perform(step)
        except trust.StepFailed as error:
            failed += 1
            print(f"FAILED: {step.title}: {error}")
        else:
            print(f"done: {step.title}")
    manual = [step for step in step_list if not step.automatic]
    if manual:
        print("\nLeft for you to do:\n")
        print(trust.render(manual, system))
    return EXIT_FAILED if failed else 0


# --------------------------------------------------------------------------------------------
# veil pac
# --------------------------------------------------------------------------------------------


def _pac(args: argparse.Namespace) -> int:
    from ..policy import DEFAULT_POLICY_PATH, PolicyError, load_policy
    from ..proxy.pac import BadProxyAddress, pac_script
    from .output import output_refusal, write_atomically

    try:
        script = pac_script(load_policy(args.policy or DEFAULT_POLICY_PATH), args.proxy)
    except PolicyError as error:
        print(error, file=sys.stderr)
        return EXIT_REFUSED
    except BadProxyAddress as error:
        print(f"veil: --proxy {error}", file=sys.stderr)
        return EXIT_REFUSED
    if args.output == "-":
        sys.stdout.write(script)
        return 0
    refusal = output_refusal(Path(args.output))
    if refusal:
        print(f"veil: {refusal}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        write_atomically(Path(args.output), script.encode())
    except OSError as error:
        print(f"veil: cannot write {args.output}: {error.strerror}", file=sys.stderr)
        return EXIT_REFUSED
    return 0
