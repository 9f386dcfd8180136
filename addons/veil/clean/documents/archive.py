"""ZIP and TAR archives: every member is cleaned by its own handler (the image core, or a
document container one level deeper); a member Veil cannot clean follows
`unknown_members` (block, or keep as it is). Written again deterministically: names
sorted, fixed timestamps, no comments, owners or extra fields.

Refused before anything is inflated: more members, more declared bytes or a higher
compression ratio than the limits allow (zip bombs), names that climb out of the archive
or are absolute, symlinks, hard links and devices, encrypted members.
"""

import io
import stat
import tarfile
import zipfile
from dataclasses import dataclass

from ..errors import MalformedImage, SanitiseError, TooLarge, UnsupportedFormat
from .base import Container, Embedded

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a ZIP can say


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes | None  # None for a directory


def safe_name(name: str) -> str:
    """The member name, or a refusal when extracting it would write outside the archive."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]) or "\x00" in name:
        raise UnsupportedFormat(f"the archive holds a member named {name[:80]!r}, which points outside it; refused")
    return name


def open_zip(data: bytes, limits) -> zipfile.ZipFile:
    """The ZIP, once its directory has passed the limits (checked on what it declares)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise MalformedImage(f"the ZIP cannot be read: {error}") from None
    entries = archive.infolist()
    if len(entries) > limits.max_members:
        raise TooLarge(f"the archive has {len(entries):,} members; the limit is {limits.max_members:,}")
    total = sum(entry.file_size for entry in entries)
    if total > limits.max_inflated_bytes:
        raise TooLarge(f"the archive inflates to {total:,} bytes; the limit is {limits.max_inflated_bytes:,}")
    for entry in entries:
        safe_name(entry.filename)
        if entry.flag_bits & 0x1:
            raise UnsupportedFormat(f"the archive's member {entry.filename!r} is encrypted; Veil cannot look inside it")
        if stat.S_ISLNK(entry.external_attr >> 16):
            raise UnsupportedFormat(f"the archive's member {entry.filename!r} is a symbolic link; refused")
        if entry.file_size > limits.max_ratio * max(entry.compress_size, 1) and entry.file_size > 1024 * 1024:
            raise TooLarge(f"the archive's member {entry.filename!r} inflates {entry.file_size // max(entry.compress_size, 1):,}× (a zip bomb?)")
    if len({entry.filename for entry in entries}) != len(entries):
        raise UnsupportedFormat("the archive holds two members with the same name; refused")
    return archive


def read_member(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bytes:
    """At most the declared size is inflated: a member that lies about its size is refused."""
    try:
        with archive.open(entry) as stream:
            data = stream.read(entry.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as error:
        raise MalformedImage(f"the archive's member {entry.filename!r} cannot be read: {error}") from None
    if len(data) != entry.file_size:
        raise MalformedImage(f"the archive's member {entry.filename!r} is not the size its directory declares")
    return data


def write_zip(members: list[Member], first: tuple[str, ...] = (), stored: tuple[str, ...] = ()) -> bytes:
    """Deterministic: names sorted (those in `first` first), one timestamp, no extras;
    `stored` members are not compressed (ODF's mimetype must be readable at byte 38)."""
    ordered = sorted(members, key=lambda member: (member.name not in first, member.name))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in ordered:
            info = zipfile.ZipInfo(member.name, FIXED_TIME)
            info.create_system = 3
            info.external_attr = ((0o40755 if member.data is None else 0o100644) << 16) | (0x10 if member.data is None else 0)
            info.compress_type = zipfile.ZIP_STORED if member.data is None or member.name in stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, b"" if member.data is None else member.data)
    return output.getvalue()


def clean_or_keep(data: bytes, name: str, embedded: Embedded) -> bytes:
    """A member through its handler; one Veil cannot clean is kept only when the policy says."""
    try:
        return embedded.clean(data, name)
    except UnsupportedFormat as error:
        if embedded.options.documents.unknown_members == "keep":
            embedded.reports.append({"where": name, "kept_uncleaned": error.reason})
            return data
        raise UnsupportedFormat(f"the archive's member {name!r} cannot be cleaned ({error.reason})") from None
    except SanitiseError as error:
        raise type(error)(f"the archive's member {name!r}: {error.reason}") from None


class Zip(Container):
    name = "zip"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))

    def clean(self, data: bytes, embedded: Embedded) -> tuple[bytes, list[str]]:
        archive = open_zip(data, embedded.options.documents)
        members, removed = [], []
        if archive.comment:
            removed.append("zip:comment")
        for entry in archive.infolist():
            if entry.is_dir():
                members.append(Member(entry.filename, None))
                continue
            members.append(Member(entry.filename, clean_or_keep(read_member(archive, entry), entry.filename, embedded)))
        removed.append("zip:timestamps")
        return write_zip(members), removed

    def findings(self, data: bytes) -> list[str]:
        archive = zipfile.ZipFile(io.BytesIO(data))
        left = ["a comment"] if archive.comment else []
        return left + [f"{entry.filename}'s extra fields" for entry in archive.infolist() if entry.extra]


class Tar(Container):
    name = "tar"

    @staticmethod
    def accepts(head: bytes) -> bool:
        """'ustar' at byte 257 and a header checksum that adds up: five letters alone could
        sit at that offset in an image's metadata."""
        if len(head) < 512 or head[257:262] != b"ustar":
            return False
        try:
            declared = int(head[148:156].split(b"\x00")[0].strip() or b"-1", 8)
        except ValueError:
            return False
        return declared == sum(head[:148]) + 8 * 32 + sum(head[156:512])

    def clean(self, data: bytes, embedded: Embedded) -> tuple[bytes, list[str]]:
        limits = embedded.options.documents
        try:
            archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
            entries = archive.getmembers()
        except (tarfile.TarError, EOFError, OSError) as error:
            raise MalformedImage(f"the TAR cannot be read: {error}") from None
        if len(entries) > limits.max_members:
            raise TooLarge(f"the archive has {len(entries):,} members; the limit is {limits.max_members:,}")
        members = []
        for entry in entries:
            safe_name(entry.name)
            if entry.isdir():
                members.append(Member(entry.name, None))
            elif entry.isfile():
                members.append(Member(entry.name, clean_or_keep(archive.extractfile(entry).read(), entry.name, embedded)))
            else:
                raise UnsupportedFormat(f"the archive's member {entry.name!r} is a link or a device; refused")
        return _write_tar(members), ["tar:owners", "tar:timestamps", "tar:pax_headers"]

    def findings(self, data: bytes) -> list[str]:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
        return [f"{entry.name}'s owner" for entry in archive.getmembers() if entry.uname or entry.uid or entry.mtime or entry.pax_headers]


def _write_tar(members: list[Member]) -> bytes:
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for member in sorted(members, key=lambda member: member.name):
            info = tarfile.TarInfo(member.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if member.data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.size, info.mode = len(member.data), 0o644
                archive.addfile(info, io.BytesIO(member.data))
    return output.getvalue()
