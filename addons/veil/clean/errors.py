"""The one error family the core raises. Every failure is one of these kinds,
each with a sentence a person can read (it ends up in a 403 body or on stderr)."""


class SanitiseError(Exception):
    kind = "error"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnsupportedFormat(SanitiseError):
    kind = "unsupported"


class TooLarge(SanitiseError):
    kind = "too_large"


class MalformedImage(SanitiseError):
    kind = "malformed"


class VerificationFailed(SanitiseError):
    kind = "verification_failed"


class LengthNotPreserved(SanitiseError):
    """The policy asks for output exactly as long as the input (the service was told the
    size before the bytes) and this image cannot be brought to that length."""

    kind = "length_not_preserved"
