"""How to make the current user's software trust Veil's CA: the steps per operating system,
as data. Pure: paths in, `Step`s out; `veil trust` prints them and, with `--apply`, performs
the ones marked automatic.

A step is automatic only when it changes the current user's own trust (their NSS databases,
their login keychain, their certificate store) or writes a file in Veil's own folder, never
the machine-wide store (that needs an administrator, who should run the printed commands).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

NICKNAME = "Veil CA (mitmproxy)"  # how the CA is named in NSS databases
CA_COMMON_NAME = "mitmproxy"  # the subject mitmproxy gives its CA
BUNDLE_NAME = "veil-ca-bundle.pem"
SYSTEMS = ("linux", "macos", "windows")
# Runtimes that read a CA file from the environment. NODE_EXTRA_CA_CERTS adds to Node's own
# roots; the others REPLACE the default roots, so they get a bundle of the system's roots plus
# Veil's CA (unprotected hosts are tunnelled untouched and still show their real certificates).
REPLACING_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
ADDING_VARIABLES = ("NODE_EXTRA_CA_CERTS",)


def current_system() -> str:
    return {"darwin": "macos", "win32": "windows", "cygwin": "windows"}.get(sys.platform, "linux")


# --------------------------------------------------------------------------------------------
# Actions: what one step does, shown as a command and performed the same way
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Run a program (never through a shell)."""

    argv: tuple[str, ...]

    def show(self, system: str) -> str:
        return subprocess.list2cmdline(self.argv) if system == "windows" else shlex.join(self.argv)


@dataclass(frozen=True)
class MakeDirectory:
    path: Path

    def show(self, system: str) -> str:
        return f'mkdir "{self.path}"' if system == "windows" else shlex.join(["mkdir", "-p", "-m", "700", str(self.path)])


@dataclass(frozen=True)
class Concatenate:
    """Write `parts` one after the other into `output` (a CA bundle)."""

    output: Path
    parts: tuple[Path, ...]

    def show(self, system: str) -> str:
        if system == "windows":
            return f'copy /b {"+".join(chr(34) + str(p) + chr(34) for p in self.parts)} "{self.output}"'
        return f"cat {' '.join(shlex.quote(str(p)) for p in self.parts)} > {shlex.quote(str(self.output))}"


@dataclass(frozen=True)
class Note:
    """Something for the person to do or set; never performed."""

    text: str

    def show(self, system: str) -> str:
        return self.text


Action = Run | MakeDirectory | Concatenate | Note


@dataclass(frozen=True)
class Step:
    title: str
    actions: tuple[Action, ...]
    automatic: bool  # `veil trust --apply` performs it
    undo: tuple[str, ...] = ()
    why: str = ""

    def show(self, system: str) -> list[str]:
        return [action.show(system) for action in self.actions]


# --------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Situation:
    """What the steps depend on; the CLI fills it in from the real machine."""

    system: str  # linux | macos | windows
    ca_pem: Path  # mitmproxy-ca-cert.pem
    home: Path
    nssdb_exists: bool = False  # ~/.pki/nssdb already holds a database
    firefox_profiles: tuple[Path, ...] = ()  # Firefox profile folders holding cert9.db (Linux)
    system_bundle: Path | None = None  # the OS's own CA bundle, to extend for the env variables

    @property
    def ca_cer(self) -> Path:
        return self.ca_pem.with_name("mitmproxy-ca-cert.cer")

    @property
    def bundle(self) -> Path:
        return bundle_path(self.ca_pem)

    @property
    def nssdb(self) -> Path:
        return self.home / ".pki" / "nssdb"


def steps(situation: Situation) -> list[Step]:
    if situation.system not in SYSTEMS:
        raise ValueError(f"unknown system {situation.system!r}; use one of {', '.join(SYSTEMS)}")
    by_system = {"linux": _linux, "macos": _macos, "windows": _windows}
    return [*by_system[situation.system](situation), *_environment(situation)]


def nss_add(database: Path, ca_pem: Path) -> Run:
    """certutil (libnss3-tools) adding the CA as trusted for TLS servers ("C,,")."""
    return Run(("certutil", "-d", f"sql:{database}", "-A", "-t", "C,,", "-n", NICKNAME, "-i", str(ca_pem)))


def nss_create(database: Path) -> tuple[Action, ...]:
    return (MakeDirectory(database), Run(("certutil", "-d", f"sql:{database}", "-N", "--empty-password")))


def _nss_undo(database: Path) -> str:
    return shlex.join(["certutil", "-d", f"sql:{database}", "-D", "-n", NICKNAME])


def _linux(s: Situation) -> list[Step]:
    create = () if s.nssdb_exists else nss_create(s.nssdb)
    result = [
        Step(
            "Chromium and Google Chrome (your NSS database; needs certutil from libnss3-tools)",
            (*create, nss_add(s.nssdb, s.ca_pem)),
            automatic=True,
            undo=(_nss_undo(s.nssdb),),
            why="Chromium-based browsers on Linux read the user's trusted roots from ~/.pki/nssdb. Restart them after.",
        )
    ]
    for profile in s.firefox_profiles:
        result.append(
            Step(
                f"Firefox profile {profile.name}",
                (nss_add(profile, s.ca_pem),),
                automatic=True,
                undo=(_nss_undo(profile),),
                why="Firefox keeps its own NSS database per profile. Close Firefox first.",
            )
        )
    if not s.firefox_profiles:
        result.append(
            Step(
                "Firefox (no profile found; for each profile folder P holding cert9.db)",
                (Note('certutil -d "sql:$P" ' + shlex.join(nss_add(Path("P"), s.ca_pem).argv[3:])),),
                automatic=False,
                why="Firefox keeps its own NSS database per profile, in ~/.mozilla/firefox/.",
            )
        )
    result.append(
        Step(
            "The system store, for every program on this machine (needs root; not done by --apply)",
            (
                Note(f"sudo cp {shlex.quote(str(s.ca_pem))} /usr/local/share/ca-certificates/veil-mitmproxy.crt && sudo update-ca-certificates    # Debian, Ubuntu"),
                Note(f"sudo trust anchor --store {shlex.quote(str(s.ca_pem))}    # Fedora, Arch (p11-kit)"),
            ),
            automatic=False,
            undo=("sudo rm /usr/local/share/ca-certificates/veil-mitmproxy.crt && sudo update-ca-certificates --fresh",),
        )
    )
    return result


def _macos(s: Situation) -> list[Step]:
    keychain = s.home / "Library" / "Keychains" / "login.keychain-db"
    add = Run(("security", "add-trusted-cert", "-r", "trustRoot", "-p", "ssl", "-k", str(keychain), str(s.ca_pem)))
    return [
        Step(
            "Your login keychain (Safari, Chrome, Edge and, since version 120, Firefox)",
            (add,),
            automatic=True,
            undo=(
                shlex.join(["security", "remove-trusted-cert", str(s.ca_pem)]),
                shlex.join(["security", "delete-certificate", "-c", CA_COMMON_NAME, str(keychain)]),
            ),
            why="macOS asks for your password to change trust settings.",
        ),
        Step(
            "The System keychain, for every user (needs an administrator; not done by --apply)",
            (Note(f"sudo security add-trusted-cert -d -r trustRoot -p ssl -k /Library/Keychains/System.keychain {shlex.quote(str(s.ca_pem))}"),),
            automatic=False,
        ),
    ]


def _windows(s: Situation) -> list[Step]:
    cer = str(s.ca_cer)
    return [
        Step(
            "Your certificate store, Trusted Root Certification Authorities (Edge, Chrome, Firefox since 120)",
            (Run(("certutil", "-user", "-addstore", "Root", cer)),),
            automatic=True,
            undo=(subprocess.list2cmdline(["certutil", "-user", "-delstore", "Root", CA_COMMON_NAME]),),
            why="Windows shows a security warning asking you to confirm the new root.",
        ),
        Step(
            "The machine's store, for every user (needs an administrator prompt; not done by --apply)",
            (Note(subprocess.list2cmdline(["certutil", "-addstore", "Root", cer])),),
            automatic=False,
        ),
    ]


def _environment(s: Situation) -> list[Step]:
    parts = (s.system_bundle, s.ca_pem) if s.system_bundle is not None else (s.ca_pem,)
    roots = "the system's roots plus Veil's CA" if s.system_bundle is not None else "Veil's CA (no system roots were found to add)"
    return [
        Step(
            f"A CA bundle for runtimes that read one file: {roots}, in {s.bundle.parent}",
            (Concatenate(s.bundle, parts),),
            automatic=True,
            why="Only Veil's folder is written. `veil run` and `veil trust --env` rewrite it when the CA or the system's roots change.",
        ),
        Step(
            "Python SDKs (openai, anthropic, google-genai), requests, curl, Node: set these in your shell profile",
            tuple(Note(line) for line in environment_lines(s.system, s.ca_pem)),
            automatic=False,
            why="httpx-based SDKs read SSL_CERT_FILE, not the OS store. `eval \"$(veil trust --env)\"` sets them in this shell."
            if s.system != "windows"
            else "setx keeps them for new windows of your user.",
        ),
    ]


def ca_environment(ca_pem: Path) -> list[tuple[str, Path]]:
    """The one answer to "which file goes in which variable": the variables that replace a
    runtime's roots get the bundle (system roots + Veil's CA) beside the CA, so hosts Veil
    does not intercept still verify; NODE_EXTRA_CA_CERTS adds to Node's roots, so the CA alone."""
    bundle = bundle_path(ca_pem)
    return [(name, bundle) for name in REPLACING_VARIABLES] + [(name, ca_pem) for name in ADDING_VARIABLES]


def bundle_path(ca_pem: Path) -> Path:
    return ca_pem.with_name(BUNDLE_NAME)


def environment_lines(system: str, ca_pem: Path) -> list[str]:
    pairs = ca_environment(ca_pem)
    if system == "windows":
        return [subprocess.list2cmdline(["setx", name, str(path)]) for name, path in pairs]
    return [f"export {name}={shlex.quote(str(path))}" for name, path in pairs]


def concatenated(parts: Sequence[Path]) -> bytes:
    """A bundle's bytes: each PEM file in turn, each ending in a newline."""
    return b"".join(_ending_in_newline(part.read_bytes()) for part in parts)


# --------------------------------------------------------------------------------------------
# Showing and performing
# --------------------------------------------------------------------------------------------


def render(step_list: Sequence[Step], system: str, only_automatic: bool = False) -> str:
    lines = []
    for number, step in enumerate((s for s in step_list if s.automatic or not only_automatic), 1):
        lines.append(f"{number}. {step.title}")
        lines += [f"     {line}" for line in step.show(system)]
        if step.why:
            lines.append(f"   ({step.why})")
        if step.undo and not only_automatic:
            lines.append("   to undo: " + "  ;  ".join(step.undo))
    return "\n".join(lines)


class StepFailed(Exception):
    pass


def perform(step: Step, run: Callable[[Sequence[str]], subprocess.CompletedProcess] | None = None) -> None:
    """Carry out an automatic step; raises `StepFailed` with the command's own message."""
    if not step.automatic:
        raise ValueError(f"not an automatic step: {step.title}")
    run = run or _run
    for action in step.actions:
        if isinstance(action, MakeDirectory):
            action.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif isinstance(action, Concatenate):
            try:
                action.output.write_bytes(concatenated(action.parts))
            except OSError as error:
                raise StepFailed(f"cannot write {action.output}: {error.strerror}") from None
        elif isinstance(action, Run):
            try:
                done = run(action.argv)
            except FileNotFoundError:
                raise StepFailed(f"{action.argv[0]} is not installed{_install_hint(action.argv[0])}") from None
            if done.returncode != 0:
                output = (done.stderr or done.stdout or "").strip()
                raise StepFailed(f"{action.show(current_system())} failed ({done.returncode}): {output}")


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=300)


def _ending_in_newline(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


def _install_hint(program: str) -> str:
    return " (Debian/Ubuntu: apt-get install libnss3-tools; Fedora: dnf install nss-tools)" if program == "certutil" else ""
