"""Search speed of xfer's batched NumPy MCTS (xfer.muzero.mcts.run_mcts) with a stub network.

Run with the xfer venv's python (xfer importable). Variants:

  xfer_run_mcts     run_mcts(stub, root, legal, cfg, rng, add_noise=True, num_simulations=50), 18 actions,
                    B roots per search: tree allocation, root priors + Dirichlet noise, 50 x (select,
                    stub recurrent_inference, expand, backup). cfg = EfficientZeroConfig(preset='paper')
                    with n_actions=18 and discount=0.997 (LightZero's value, to match the other script).
  xfer_old_mcts     the same call into an older copy of xfer/muzero/mcts.py loaded from the file named by
                    the XFER_OLD_MCTS environment variable (e.g. `git show 730f330:xfer/muzero/mcts.py`),
                    for a before/after ratio measured in the same run.

The stub's recurrent_inference returns pre-generated random tensors of the paper shapes (latent
[B, 64, 6, 6], LSTM state 2 x [1, B, 512], decoded value / value prefix [B], policy logits [B, 18])
from a small pool: no compute. xfer's network decodes the categorical heads inside recurrent_inference,
so there is no decoding left in the search for the stub to skip.

Standalone:   OMP_NUM_THREADS=1 python mcts_speed_xfer.py --batches 8 32 64 --repeats 5
Worker mode:  python mcts_speed_xfer.py --serve   (JSON lines on stdin/stdout; see mcts_speed_compare.py)
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')

import numpy as np  # noqa: E402
import torch  # noqa: E402

from xfer.muzero.config import EfficientZeroConfig  # noqa: E402
from xfer.muzero.mcts import run_mcts  # noqa: E402
from xfer.muzero.networks import Inference  # noqa: E402

N_ACTIONS = 18
SIMS = 50
DISCOUNT = 0.997
POOL = 8
VARIANTS = ('xfer_run_mcts', 'xfer_old_mcts')


def search_function(variant: str):
    if variant == 'xfer_run_mcts':
        return run_mcts
    spec = importlib.util.spec_from_file_location('xfer_old_mcts', os.environ['XFER_OLD_MCTS'])
    module = importlib.util.module_from_spec(spec)
    sys.modules['xfer_old_mcts'] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.run_mcts


class StubModel:
    """recurrent_inference returns pre-generated random tensors of the right shapes; ignores its inputs."""

    def __init__(self, batch: int, cfg: EfficientZeroConfig, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        side = cfg.latent_size  # 96 -> 6, the latent resolution of the representation network
        self.pool = [Inference(latent=torch.randn(batch, cfg.channels, side, side, generator=g),
                               reward_hidden=(torch.randn(1, batch, cfg.lstm_hidden, generator=g),
                                              torch.randn(1, batch, cfg.lstm_hidden, generator=g)),
                               value_prefix=torch.randn(batch, generator=g),
                               value=torch.randn(batch, generator=g),
                               policy_logits=torch.randn(batch, N_ACTIONS, generator=g)) for _ in range(POOL)]
        self.root = Inference(latent=torch.randn(batch, cfg.channels, side, side, generator=g),
                              reward_hidden=(torch.zeros(1, batch, cfg.lstm_hidden),
                                             torch.zeros(1, batch, cfg.lstm_hidden)),
                              value_prefix=torch.zeros(batch), value=torch.randn(batch, generator=g),
                              policy_logits=torch.randn(batch, N_ACTIONS, generator=g))
        self.i = 0

    def recurrent_inference(self, latent, hidden, action):
        self.i = (self.i + 1) % POOL
        return self.pool[self.i]


class Bench:
    def __init__(self, variant: str, batch: int, seed: int = 0):
        assert variant in VARIANTS
        self.variant, self.batch = variant, batch
        self.search = search_function(variant)
        self.cfg = EfficientZeroConfig(preset='paper').model_copy(
            update={'n_actions': N_ACTIONS, 'discount': DISCOUNT, 'num_simulations': SIMS})
        self.model = StubModel(batch, self.cfg, seed)
        self.legal = np.ones((batch, N_ACTIONS), dtype=bool)
        self.rng = np.random.default_rng(seed)
        self.last_mean_depth = float('nan')
        self.last_network_fraction = float('nan')

    def one_search(self):
        with torch.no_grad():
            r = self.search(self.model, self.model.root, self.legal, self.cfg, self.rng, add_noise=True,
                         num_simulations=SIMS)
        assert int(r.visit_counts[0].sum()) == SIMS
        self.last_mean_depth = float(r.trees.depth[:, 1:].mean())
        self.last_network_fraction = r.network_seconds / r.total_seconds
        return r

    def measure(self, n_searches: int) -> float:
        tic = time.perf_counter()
        for _ in range(n_searches):
            self.one_search()
        return (time.perf_counter() - tic) / n_searches


def serve():
    torch.set_num_threads(1)
    benches = {}
    info = dict(system='xfer', torch=torch.__version__, numpy=np.__version__,
                threads=torch.get_num_threads(), omp=os.environ.get('OMP_NUM_THREADS'), pid=os.getpid())
    print(json.dumps(dict(ready=True, info=info)), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        key = (req['variant'], req['batch'])
        if key not in benches:
            benches[key] = Bench(*key)
        b = benches[key]
        cpu0 = time.process_time()
        sec = b.measure(req['n'])
        out = dict(variant=req['variant'], batch=req['batch'], n=req['n'], sec_per_search=sec,
                   cpu_per_search=(time.process_time() - cpu0) / req['n'], mean_leaf_depth=b.last_mean_depth,
                   stub_fraction=b.last_network_fraction)
        print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--serve', action='store_true')
    ap.add_argument('--batches', nargs='+', type=int, default=[8, 32, 64])
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--n', type=int, default=10, help='searches per measurement')
    args = ap.parse_args()
    if args.serve:
        return serve()
    torch.set_num_threads(1)
    for v in VARIANTS if os.environ.get('XFER_OLD_MCTS') else VARIANTS[:1]:
        for B in args.batches:
            b = Bench(v, B)
            b.measure(2)
            t = statistics.median(b.measure(args.n) for _ in range(args.repeats))
            print(f'{v:18s} B={B:3d} {1e3 * t:8.2f} ms/search {B * SIMS / t:9.0f} sims/s '
                  f'{1e6 * t / (B * SIMS):7.2f} us/sim/root')


if __name__ == '__main__':
    main()
