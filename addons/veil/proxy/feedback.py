"""What the person watching Veil sees as it works: one console line per intervention, and
(opt-in, `veil_notify`) a desktop notification when an upload is blocked.

Facts only — the host, the file's name, what was removed, how many faces — never an image
or a crop, and never a query string.
"""

import logging
import platform
import shutil
import subprocess

from .pipeline import Decision, ImageOutcome

log = logging.getLogger("veil")

# What the categories of metadata_removed are called on the console.
_SAY = {"gps": "GPS", "camera": "camera", "owner": "owner", "exif": "EXIF", "xmp": "XMP", "iptc": "IPTC",
        "thumbnail": "thumbnail", "icc": "colour profile", "comment": "comment"}  # fmt: skip


def console_line(host: str, decision: Decision) -> str | None:
    """`veil: chatgpt.com IMG_2041.jpg: removed GPS, camera; masked 2 faces → sent`, one
    line for all the images of a request; None when nothing happened worth a line."""
    verdict = decision.verdict
    if verdict is None:
        return None
    parts = [_describe(outcome) for outcome in verdict.outcomes]
    parts += [f"not seen: {reference.describe()}" for reference in verdict.references]
    parts += verdict.notes
    if verdict.unparsed:
        parts.append("body not inspected (allowed by the policy)")
    if not parts:
        return None
    return f"veil: {host} " + "; ".join(parts) + " → sent"


def blocked_line(host: str, reason: str) -> str:
    return f"veil: {host} blocked: {reason}"


def _describe(outcome: ImageOutcome) -> str:
    name = outcome.slot.filename or outcome.slot.location
    report = outcome.result.report if outcome.result else None
    if outcome.event == "passed":
        return f"{name}: passed uncleaned ({outcome.reason})"
    done = []
    if report and report.metadata_removed:
        done.append("removed " + ", ".join(_SAY.get(kind, kind) for kind in report.metadata_removed))
    if report and report.faces:
        done.append(f"{'masked' if report.face_mode == 'mask' else report.face_mode} {len(report.faces)} face(s)")
    what = "; ".join(done) or "nothing to remove"
    return f"{name}: {'would have ' if outcome.event == 'monitored' else ''}{what}"


def notify_blocked(host: str, reason: str) -> None:
    """A desktop notification with the platform's own notifier, fire and forget: a missing
    notifier or a failing one never slows or stops the proxy."""
    title, text = "Veil blocked an upload", f"{host}: {reason}"[:300]
    command = _notifier(title, text)
    if command is None:
        return
    try:
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as error:
        log.debug(f"Veil: the desktop notification failed: {error}")


def _notifier(title: str, text: str) -> list[str] | None:
    system = platform.system()
    if system == "Darwin" and shutil.which("osascript"):
        script = f"display notification {_applescript(text)} with title {_applescript(title)}"
        return ["osascript", "-e", script]
    if system == "Windows" and shutil.which("powershell"):
        toast = (
            "[Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, ContentType = WindowsRuntime] > $null;"
            "$t = [Windows.UI.Notifications.ToastNotificationManager]::GetTemplateContent([Windows.UI.Notifications.ToastTemplateType]::ToastText02);"
            "$n = $t.GetElementsByTagName('text'); $n.Item(0).AppendChild($t.CreateTextNode($args[0])) > $null;"
            "$n.Item(1).AppendChild($t.CreateTextNode($args[1])) > $null;"
            "[Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier('Veil').Show([Windows.UI.Notifications.ToastNotification]::new($t))"
        )
        return ["powershell", "-NoProfile", "-Command", toast, title, text]
    if shutil.which("notify-send"):
        return ["notify-send", "--app-name=Veil", title, text]
    return None


def _applescript(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
