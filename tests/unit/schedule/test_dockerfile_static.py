"""The Dockerfile, checked statically (no image can be built here): instructions parse, the base is
python:3.11-slim, chaoslab is installed from the source tree with pip, the entrypoint is `chaoslab`, it runs
as a non-root user, and every COPY source exists in the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_parses_and_builds_chaoslab_as_non_root() -> None:
    ins = instructions()
    assert all(word in INSTRUCTIONS for word, _ in ins), ins
    assert ins[0] == ("FROM", "python:3.11-slim")
    assert any(w == "RUN" and "pip install ." in rest for w, rest in ins)
    [entry] = [json.loads(rest) for w, rest in ins if w == "ENTRYPOINT"]
    assert entry == ["chaoslab"]
    users = [rest for w, rest in ins if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    # The CronJob runs the image as 10001 with a read-only root: the same user, and a writable HOME.
    assert users[-1].startswith("10001")
    assert any(w == "WORKDIR" and rest == "/opt/chaoslab" for w, rest in ins)


def test_every_copy_source_exists_and_is_not_ignored() -> None:
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()}
    sources = []
    for word, rest in instructions():
        if word == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources += parts[:-1]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), src
        assert src.rstrip("/") not in ignored


def test_the_image_holds_what_the_package_build_needs() -> None:
    copied = " ".join(rest for w, rest in instructions() if w == "COPY")
    for needed in ("pyproject.toml", "README.md", "chaoslab", "probes"):
        assert needed in copied
