"""Run the benchmarks: ``python -m benchmarks [--smoke] [NAME ...]``.

Prints each benchmark's figures, the baseline it measured in the same run, their ratio and
whether each goal was met, then a Markdown table for the README. Exits 1 when a benchmark
failed to run (and, with ``--strict``, when a goal was missed); a missed goal is a finding,
not a crash, and smoke mode's figures are too short to judge goals by.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType

from benchmarks.common import Context, Outcome
from tests.support.servers import start_postgres, start_redis

MODULES = ("webhooks", "first_offer", "matching", "fanout", "memory", "crisis", "burst")


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{name}")


def markdown(outcomes: list[Outcome]) -> str:
    """Return the README's performance table for the outcomes."""
    rows = [
        "| Measure | Peerline | Baseline (same run) | Goal | Met |",
        "|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        for measure, figure, baseline, goal, met in outcome.table:
            rows.append(f"| {measure} | {figure} | {baseline} | {goal} | {met} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(MODULES)} (default: all)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a seconds-long run that checks they work (CI)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--keep", action="store_true", help="keep the logs folder")
    args = parser.parse_args(argv)
    names = args.names or list(MODULES)
    unknown = sorted(set(names) - set(MODULES))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(MODULES)}")

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="peerline-bench-"))
    postgres = start_postgres()
    redis = start_redis()
    outcomes: list[Outcome] = []
    failed: list[str] = []
    mode = "smoke" if args.smoke else "full"
    print(f"Peerline benchmarks ({mode} mode): {', '.join(names)}", flush=True)
    try:
        ctx = Context(args.smoke, postgres, redis, workdir)
        for name in names:
            began = time.monotonic()
            try:
                outcome = _load(name).run(ctx)
            except Exception:
                failed.append(name)
                print(f"== {name}: FAILED ==\n{traceback.format_exc()}", flush=True)
                continue
            outcomes.append(outcome)
            print(outcome.render(), flush=True)
            print(f"  ({time.monotonic() - began:.1f} s)\n", flush=True)
    finally:
        redis.close()
        postgres.close()
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"## Summary ({mode} mode, {time.monotonic() - started:.0f} s)\n")
    print(markdown(outcomes))
    missed = [g.text for o in outcomes for g in o.goals if not g.met]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        return 1
    if missed:
        print(f"\nGoals not met: {'; '.join(missed)}")
        if args.strict:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
