"""chaoslab's own mutation fuzzer for everything the spec loader reads (issue 14).

Seeds are the shipped files (experiments/, experiments/gamedays/, probes/ and the Chaos Toolkit export of
every shipped experiment); `mutate.case(seed, index)` derives one malformed input from them, deterministic
in (seed, index); `oracle.check` runs `chaoslab validate`, `chaoslab gameday run` (loading only) and
`chaoslab export --to chaostoolkit` on it in-process through `chaoslab.cli.main`; `driver` runs the oracle
in worker processes with a memory limit and a hard time limit.

    PYTHONPATH=.:tests .venv/bin/python -m fuzz --count 100000 --jobs 2      # `make fuzz`
"""
