"""A LightZero run as an xfer run directory, so `xfer compare` and `xfer plot` read it (LightZero venv).

    python lightzero_to_run.py EXP_DIR TRAIN_LOG RUNDIR --seed S [--task CartPole-v0] [--max-env-step N]

Reads LightZero's TensorBoard file (EXP_DIR/log/serial): `evaluator_step/eval_episode_return_mean` is
logged against collector environment steps, `evaluator_iter/...` against learner updates. Writes
RUNDIR/recipe.yaml (`method: lightzero_efficientzero`, the seed and task), RUNDIR/metrics.jsonl (one row per
evaluation: `step` and `env_steps` = collector environment steps, `updates`, `minutes` since the anchor's
start line, `eval/return`) and RUNDIR/run.json (`status: done`). Evaluations after --max-env-step are left
out (LightZero collects whole episodes and overshoots its budget).
"""
import argparse
import glob
import os
import re
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from xfer_run_dir import write_run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('exp_dir')
    ap.add_argument('train_log')
    ap.add_argument('rundir')
    ap.add_argument('--seed', type=int, required=True)
    ap.add_argument('--task', default='CartPole-v0')
    ap.add_argument('--max-env-step', type=int, default=None)
    args = ap.parse_args()
    start = None
    with open(args.train_log, errors='replace') as f:
        for line in f:
            m = re.search(r'\[anchor\] start_unix=([0-9.]+)', line)
            if m:
                start = float(m.group(1))
                break
    scalars = {}
    for fn in sorted(glob.glob(os.path.join(args.exp_dir, 'log', 'serial', 'events*'))):
        ea = EventAccumulator(fn, size_guidance={'scalars': 0})
        ea.Reload()
        for tag in ea.Tags()['scalars']:
            scalars.setdefault(tag, []).extend(ea.Scalars(tag))
    by_step = scalars['evaluator_step/eval_episode_return_mean']
    by_iter = scalars['evaluator_iter/eval_episode_return_mean']
    if start is None:
        start = min(e.wall_time for e in by_step)
    rows = []
    for a, b in zip(by_step, by_iter, strict=False):
        if args.max_env_step is not None and a.step > args.max_env_step:
            break
        rows.append({'step': int(a.step), 'env_steps': int(a.step), 'updates': int(b.step),
                     'minutes': round((a.wall_time - start) / 60, 3), 'eval/return': float(a.value)})
    write_run(args.rundir, rows, 'lightzero_efficientzero', args.seed, 'gym', args.task, args.exp_dir)
    print(f'{len(rows)} evaluations -> {args.rundir}')


if __name__ == '__main__':
    main()
