"""Writing the files `veil` produces."""

import os
import stat
import tempfile
from pathlib import Path

_NOT_A_FILE = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def output_refusal(path: Path) -> str | None:
    """Why `path` must not be written, or None: only a new name or a regular file is.

    write_atomically renames a new file over `path`, so a FIFO, device or socket would be
    replaced, not written to (as root, `veil scrub x.jpg /dev/null` would replace /dev/null).
    A symbolic link is refused rather than followed or replaced: either could surprise."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot write {path}: {error.strerror}"
    if stat.S_ISLNK(mode):
        return f"{path} is a symbolic link; Veil does not follow it: give the file it points to ({os.path.realpath(path)}) or a new name"
    if stat.S_ISREG(mode):
        return None
    kind = _NOT_A_FILE.get(stat.S_IFMT(mode), "not a regular file")
    return f"{path} is {kind}; Veil writes only a new file or over a regular file"


def write_atomically(path: Path, data: bytes) -> None:
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
