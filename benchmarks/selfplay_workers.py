"""Whole runs with self-play in worker processes against self-play in the learner's process.

Each variant is ``xfer run RECIPE`` with the same overrides plus its own (``--variant NAME=OVERRIDE,...``),
started as a fresh process; the variants run in turn, in an order rotated every round, and each run's
wall time (process start to exit: imports, environments and the final evaluation included) is recorded
with the 1-minute load average, since any other job on the machine changes the figures. Reported: the
median per variant and, per round, each variant's time over the first variant's.

    python benchmarks/selfplay_workers.py recipes/efficientzero_cartpole.yaml --rounds 2 \
        --set efficientzero.selfplay.env_steps=1000 --set efficientzero.model.training_steps=500 \
        --variant in-process=efficientzero.selfplay.workers=0 \
        --variant worker=efficientzero.selfplay.workers=1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def loadavg() -> float:
    return os.getloadavg()[0]


def run_once(recipe: str, overrides: list[str], logdir: str) -> float:
    command = [sys.executable, "-m", "xfer.cli", "run", recipe, "--set", f"logdir={logdir}",
               "--set", "logging.live=false"]
    for item in overrides:
        command += ["--set", item]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override for every run")
    parser.add_argument("--variant", action="append", required=True,
                        help="NAME=KEY=VALUE[,KEY=VALUE...]; the first variant is the yardstick")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    variants = {}
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        variants[name] = [item for item in rest.split(",") if item]
    names = list(variants)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                before = loadavg()
                seconds = run_once(args.recipe, args.overrides + variants[name], f"{tmp}/{name}-{rnd}")
                records.append({"round": rnd, "variant": name, "seconds": seconds, "load_before": before,
                                "load_after": loadavg(), "utc": time.strftime("%H:%M:%S", time.gmtime())})
                print(f"round {rnd} {name:>12}: {seconds:7.1f} s  (load {before:.2f} -> {loadavg():.2f})",
                      flush=True)
    summary = {name: statistics.median(r["seconds"] for r in records if r["variant"] == name)
               for name in names}
    ratios = {name: [next(r["seconds"] for r in records if r["variant"] == name and r["round"] == k)
                     / next(r["seconds"] for r in records if r["variant"] == names[0] and r["round"] == k)
                     for k in range(args.rounds)] for name in names[1:]}
    print("\n| variant | median wall s | per-round time / " + names[0] + " |\n|---|---|---|")
    for name in names:
        per_round = " ".join(f"{x:.2f}" for x in ratios.get(name, []))
        print(f"| {name} | {summary[name]:.1f} | {per_round or '1'} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"recipe": args.recipe, "overrides": args.overrides,
                                         "variants": variants, "records": records, "median_s": summary,
                                         "ratios": ratios}, indent=1))


if __name__ == "__main__":
    main()
