"""Interleaved search-speed comparison: LightZero EfficientZero ctree vs xfer batched MCTS, stub networks.

The two systems live in different venvs, so this driver starts one worker process per system
(mcts_speed_lightzero.py --serve under the LightZero python, mcts_speed_xfer.py --serve under the
xfer python), both with OMP_NUM_THREADS=1 and torch.set_num_threads(1). Only one worker runs at a
time (the other blocks on stdin). For each of --repeats rounds it visits every (batch, variant) cell,
in an order rotated each round, and each visit times --seconds worth of back-to-back searches
(the count is fixed per cell after a calibration search). Reported: the median over the rounds, and per
batch the ratios of the medians (xfer / LightZero) with the 1-min load average seen by each measurement.
With --xfer-old-mcts FILE (an older copy of xfer/muzero/mcts.py) the xfer worker also times that copy.

    python mcts_speed_compare.py --lz-python <lightzero venv>/bin/python \
        --xfer-python <xfer venv>/bin/python --batches 8 32 64 --repeats 7 --seconds 1.5 \
        [--xfer-old-mcts old_mcts.py] --out mcts_speed_results.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIMS = 50
LZ_VARIANTS = ['lz_search_cat', 'lz_search_scalar', 'lz_ctree_raw']
XFER_VARIANTS = ['xfer_run_mcts']


def loadavg() -> str:
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


class Worker:
    def __init__(self, python: str, script: str, extra_env: dict | None = None):
        env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1',
                   **(extra_env or {}))
        self.p = subprocess.Popen([python, str(HERE / script), '--serve'], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        while True:  # skip any import-time chatter until the ready line
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError(f'{script} worker died')
            if line.startswith('{'):
                msg = json.loads(line)
                if msg.get('ready'):
                    self.info = msg['info']
                    break

    def ask(self, variant: str, batch: int, n: int) -> dict:
        self.p.stdin.write(json.dumps(dict(variant=variant, batch=batch, n=n)) + '\n')
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError('worker died')
            if line.startswith('{'):
                return json.loads(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lz-python', required=True)
    ap.add_argument('--xfer-python', required=True)
    ap.add_argument('--batches', nargs='+', type=int, default=[8, 32, 64])
    ap.add_argument('--xfer-old-mcts', default=None, help='older copy of xfer/muzero/mcts.py to time as well')
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--seconds', type=float, default=1.0, help='target wall time of one measurement')
    ap.add_argument('--out', default='mcts_speed_results.json')
    args = ap.parse_args()

    xfer_variants = XFER_VARIANTS + (['xfer_old_mcts'] if args.xfer_old_mcts else [])
    old_env = {'XFER_OLD_MCTS': str(Path(args.xfer_old_mcts).resolve())} if args.xfer_old_mcts else {}
    workers = {'lightzero': Worker(args.lz_python, 'mcts_speed_lightzero.py'),
               'xfer': Worker(args.xfer_python, 'mcts_speed_xfer.py', old_env)}
    # per batch size: LightZero variants with the xfer cell in between, so the systems alternate
    order = []
    for B in args.batches:
        lz = [(B, 'lightzero', v) for v in LZ_VARIANTS]
        xf = [(B, 'xfer', v) for v in xfer_variants]
        order += [c for pair in itertools.zip_longest(lz, xf) for c in pair if c is not None]

    print(f'start {time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())} UTC load {loadavg()}', flush=True)
    print(json.dumps({k: w.info for k, w in workers.items()}), flush=True)
    n_per = {}
    for B, sysname, v in order:  # warm-up + calibration
        workers[sysname].ask(v, B, 2)
        t = workers[sysname].ask(v, B, 3)['sec_per_search']
        n_per[(B, v)] = max(3, math.ceil(args.seconds / t))
    records = []
    for rep in range(args.repeats):
        k = rep % len(order)
        rot = order[k:] + order[:k]
        for B, sysname, v in rot:
            r = workers[sysname].ask(v, B, n_per[(B, v)])
            r.update(system=sysname, rep=rep, load=loadavg(), utc=time.strftime('%H:%M:%S', time.gmtime()))
            records.append(r)
            print(f"rep {rep} {sysname:9s} {v:17s} B={B:3d} n={r['n']:4d} "
                  f"{1e3 * r['sec_per_search']:8.2f} ms/search "
                  f"cpu/wall={r['cpu_per_search'] / r['sec_per_search']:.2f} "
                  f"depth={r['mean_leaf_depth']:.2f} load {r['load']}", flush=True)
    for w in workers.values():
        w.close()
    print(f'end {time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())} UTC load {loadavg()}', flush=True)

    summary = []
    print("\n| system | variant | roots B | ms / search (50 sims) | sims/s (B*50/t) | us / sim / root | "
          "us / batched sim step | min ms | max ms | CPU ms / search | sims/s by CPU time | "
          "mean leaf depth |")
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for B, sysname, v in sorted(order, key=lambda c: (c[0], c[1] != 'lightzero', c[2])):
        rs = [r for r in records if r['batch'] == B and r['variant'] == v]
        ts = [r['sec_per_search'] for r in rs]
        t = statistics.median(ts)
        c = statistics.median(r['cpu_per_search'] for r in rs)
        row = dict(system=sysname, variant=v, batch=B, n_per_measurement=rs[0]['n'],
                   sec_per_search_all=ts, sec_per_search_median=t, sims_per_s=B * SIMS / t,
                   us_per_sim_per_root=1e6 * t / (B * SIMS), us_per_batched_sim=1e6 * t / SIMS,
                   cpu_sec_per_search_median=c, sims_per_cpu_s=B * SIMS / c,
                   mean_leaf_depth=statistics.mean(r['mean_leaf_depth'] for r in rs))
        if sysname == 'xfer':
            row['stub_fraction'] = statistics.median(r['stub_fraction'] for r in rs)
        summary.append(row)
        print(f"| {sysname} | {v} | {B} | {1e3 * t:.2f} | {row['sims_per_s']:.0f} | "
              f"{row['us_per_sim_per_root']:.2f} | {row['us_per_batched_sim']:.0f} | "
              f"{1e3 * min(ts):.2f} | {1e3 * max(ts):.2f} | {1e3 * c:.2f} | "
              f"{row['sims_per_cpu_s']:.0f} | "
              f"{row['mean_leaf_depth']:.2f} |")
    ratios = []
    print('\n| roots B | variant | xfer / it, ratio of medians | xfer / it, median of per-round ratios | '
          '1-min load (min-max) |')
    print('|---|---|---|---|---|')
    for B in args.batches:
        mine = {r['rep']: r['sec_per_search'] for r in records
                if r['batch'] == B and r['variant'] == 'xfer_run_mcts'}
        for v in LZ_VARIANTS + xfer_variants[1:]:
            other = {r['rep']: r['sec_per_search'] for r in records if r['batch'] == B and r['variant'] == v}
            per_round = [mine[k] / other[k] for k in sorted(mine)]
            loads = [float(r['load'].split()[0]) for r in records if r['batch'] == B]
            of_medians = statistics.median(mine.values()) / statistics.median(other.values())
            row = dict(batch=B, against=v, ratio_of_medians=of_medians,
                       median_round_ratio=statistics.median(per_round), round_ratios=per_round,
                       load_min=min(loads), load_max=max(loads))
            ratios.append(row)
            print(f"| {B} | {v} | {row['ratio_of_medians']:.3f} | {row['median_round_ratio']:.3f} | "
                  f"{row['load_min']:.2f}-{row['load_max']:.2f} |")
    run_args = vars(args) | {'lz_python': 'LZ venv', 'xfer_python': 'xfer venv'}
    Path(args.out).write_text(json.dumps(dict(args=run_args, workers={k: w.info for k, w in workers.items()},
                                              records=records, summary=summary, ratios=ratios), indent=1))


if __name__ == '__main__':
    sys.exit(main())
