"""`chaos validate` on many files in one process: Chaos Toolkit's own CLI (its click group and `validate`
command, as the `chaos` script runs them) called once per file, so its start-up (about 1.5 s of imports) is
paid once instead of once a file.

    python validate_many.py RESULTS.json SETTINGS.yaml FILE...

RESULTS.json gets {file: [exit code, what the `chaostoolkit` logger said]}."""

from __future__ import annotations

import io
import json
import logging
import sys

from chaostoolkit.cli import cli


def validate(settings: str, path: str) -> tuple[int, str]:
    said = io.StringIO()
    handler = logging.StreamHandler(said)
    log = logging.getLogger("chaostoolkit")
    log.addHandler(handler)
    try:
        # standalone_mode=False: click returns ctx.exit's code instead of leaving the process, and the
        # command's own value (the experiment) when it ends normally.
        rv = cli.main(["--no-version-check", "--no-log-file", "--settings", settings, "validate", path],
                      prog_name="chaos", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # noqa: BLE001 - what `chaos` would die of: a failure, with its message
        code, _ = 1, said.write(f"{type(exc).__name__}: {exc}\n")
    finally:
        log.removeHandler(handler)
        for h in list(log.handlers):  # the group's configure_logger adds its console handlers each call
            if h is not handler:
                log.removeHandler(h)
    return code, said.getvalue()


def main(argv: list[str]) -> int:
    results, settings, *files = argv
    with open(results, "w") as out:
        json.dump({f: validate(settings, f) for f in files}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
