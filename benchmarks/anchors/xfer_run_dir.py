"""Write another toolkit's results as an xfer run directory (standard library only: the anchor scripts run in
their toolkits' own venvs, without xfer), so `xfer compare` and `xfer plot` read them next to xfer's runs.

RUNDIR/metrics.jsonl (one JSON row per line), RUNDIR/recipe.yaml (``method``, ``seed`` and the target task)
and RUNDIR/run.json (``status: done`` and the source directory).
"""
import json
import os


def write_run(rundir, rows, method, seed, suite, task, source):
    os.makedirs(rundir, exist_ok=True)
    with open(os.path.join(rundir, "metrics.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    with open(os.path.join(rundir, "recipe.yaml"), "w") as f:
        f.write(f"method: {method}\nseed: {seed}\ntarget: {{suite: {suite}, task: {task}}}\n")
    with open(os.path.join(rundir, "run.json"), "w") as f:
        json.dump({"status": "done", "source": os.path.abspath(source)}, f)
