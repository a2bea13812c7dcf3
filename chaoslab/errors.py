"""chaoslab's error tree. Library code raises these; only `chaoslab.cli` turns them into exit codes.

    ChaoslabError                 anything chaoslab reports to a person (message says what to do next)
    ├── SpecError                 invalid experiment or input (exit 2); carries every problem at once
    ├── LabError                  the local lab could not be installed, started, inspected or stopped (exit 3)
    │   └── InstallError          a binary or package is missing and could not be provided
    ├── TargetError               a cluster or host could not be reached (exit 3)
    ├── InjectionError            a fault could not be injected (exit 3)
    └── RevertError               a fault could not be reverted; the cluster may still be degraded (exit 3)

Third-party errors are chained (`raise LabError(...) from exc`) so `--debug` can show the cause.
"""

from __future__ import annotations

from collections.abc import Sequence


class ChaoslabError(Exception):
    """Base of every error chaoslab reports to a person."""


class SpecError(ChaoslabError):
    """Invalid input; `problems` holds every problem found, each a full sentence with its place."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class LabError(ChaoslabError):
    """The local lab could not be installed, started, inspected or stopped."""


class InstallError(LabError):
    """A binary or package the lab needs is missing and could not be provided."""


class TargetError(ChaoslabError):
    """A cluster or host could not be reached or inspected."""


class InjectionError(ChaoslabError):
    """A fault could not be injected."""


class RevertError(ChaoslabError):
    """A fault could not be reverted: the cluster may still be degraded."""
