"""A policy that cannot be used: every problem found, each with its file, line and dotted path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyProblem:
    source: str
    line: int | None  # 1-based; None when the whole file is the problem (unreadable)
    path: str  # dotted location in the document, e.g. services.openai-api.rules[0].faces
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}, line {self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PolicyError(Exception):
    """Every problem found in a policy, one per line of str(error)."""

    def __init__(self, problems: Iterable[PolicyProblem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))
