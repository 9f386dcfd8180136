"""The second line of defence, per request: judge the bytes that will actually leave.

The envelopes find the images Veil knows how to find; this does not trust them. `egress.scan`
looks through the exact outgoing body for anything that decodes to an image, in any
encoding and inside any container it can open, and every image it finds must be one Veil
produced (or one the rule knowingly lets through, already recorded). Anything else means a
recogniser missed a form: the request is refused, naming where the image was found.

Containers the scan cannot open (an encrypted ZIP or PDF, an unknown or damaged one, one
over a limit) follow the rule's `opaque_files`: block, log (forward with a `passed`
record), or allow.
"""

from dataclasses import dataclass, field

from ..policy import OpaqueFiles
from . import egress


@dataclass(frozen=True)
class EgressJudgement:
    refusal: str | None = None  # why the request must not leave
    notes: list[str] = field(default_factory=list)  # what leaves unseen, each worth a `passed` record


def judge(
    leaving: bytes, accounted_for: list[bytes], opaque_files: OpaqueFiles, may_refuse: bool, documents_cleaned: bool = False
) -> EgressJudgement:
    """`accounted_for`: the images this request is known to carry as they will leave (the
    cleaned outputs, and images the rule passes with a record of their own). Without
    `may_refuse` (rules that allow or only monitor) a refusal becomes a note instead.
    `documents_cleaned`: the documents in the request were cleaned or passed by the rule, so
    each image in them is judged on its own (it must be in `accounted_for`)."""
    leftovers = egress.unaccounted(egress.scan(leaving), accounted_for, documents_cleaned)
    stray = [finding for finding in leftovers if finding.kind == "image"]
    if stray:
        more = f" and {len(stray) - 1} more" if len(stray) > 1 else ""
        reason = f"an image Veil did not clean would leave with this request ({_describe(stray[0])}{more})"
        return _refuse_or_note(reason, may_refuse)
    documents = [finding for finding in leftovers if finding.kind == "document"]
    if documents:
        # Every image in it was one Veil produced, yet the document around them was not cleaned.
        reason = f"a document or archive holding images would leave with this request ({_describe(documents[0])}) that Veil did not clean"
        return _refuse_or_note(reason, may_refuse)
    opaque = [finding for finding in leftovers if finding.kind == "opaque"]
    if not opaque or opaque_files == "allow":
        return EgressJudgement()
    why = f"a file Veil cannot look inside would leave with this request ({_describe(opaque[0])})"
    if opaque_files == "block":
        return _refuse_or_note(why + "; the policy blocks files Veil cannot inspect", may_refuse)
    return EgressJudgement(notes=[why + "; forwarded as the policy allows"])


def _refuse_or_note(reason: str, may_refuse: bool) -> EgressJudgement:
    return EgressJudgement(refusal=reason) if may_refuse else EgressJudgement(notes=[f"would block: {reason}"])


def _describe(finding: egress.Finding) -> str:
    return f"{finding.format} at {finding.location}" + (f": {finding.reason}" if getattr(finding, "reason", None) else "")
