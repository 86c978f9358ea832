"""A record of the search for epoch-wise double descent on MNIST-1D with a CNN (one seed, plain PyTorch).

Before phenolab's `epochwise` setting (a six-hidden-layer MLP) no MNIST-1D network we
tried showed test error falling, rising and falling again within CPU minutes
(docs/reproduce-double-descent.md, "What did not show it on MNIST-1D"). This script reruns the
CNN probes of that list: the greydanus_kobak2024 data (4000 train / 12000 test, `make_dataset` with
num_samples 16000, train_split 0.25), a share of the training labels redrawn uniformly, a
1-D CNN (conv 5 → conv 3 → conv 3, `channels` each, ReLU, padding "same", then a linear
readout of all positions), Adam, batch 100, test and train error at 60 log-spaced steps. It is
not phenolab's engine (phenolab has no CNN model): it is here so the negative result can be
checked and extended.

    python bench/epochwise_cnn_probe.py --channels 32 --epochs 1000          # ~5 min, 1 thread
    python bench/epochwise_cnn_probe.py --channels 64 --shift 4 --epochs 1500 # ~21 min
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from mnist1d.data import get_dataset_args, make_dataset
from torch import nn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of the conv layers")
    ap.add_argument("--readout-lr-scale", type=float, default=1.0,
                    help="the linear readout's lr = lr × this (Heckel & Yilmaz 2021: layers at different speeds)")
    ap.add_argument("--noise", type=float, default=0.2, help="share of training labels redrawn uniformly")
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--shift", type=int, default=0, help="augmentation: roll each sample by up to ± this")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cfg = get_dataset_args()
    cfg.num_samples, cfg.train_split = 16000, 0.25
    ds = make_dataset(cfg)
    x, y = torch.tensor(ds["x"], dtype=torch.float32)[:args.n_train], torch.tensor(ds["y"])[:args.n_train].clone()
    x_test, y_test = torch.tensor(ds["x_test"], dtype=torch.float32), torch.tensor(ds["y_test"])
    rng = np.random.default_rng(args.seed)
    flip = rng.random(len(y)) < args.noise
    y[torch.from_numpy(flip)] = torch.from_numpy(rng.integers(0, 10, int(flip.sum())))

    c = args.channels
    net = nn.Sequential(nn.Unflatten(1, (1, 40)), nn.Conv1d(1, c, 5, padding=2), nn.ReLU(),
                        nn.Conv1d(c, c, 3, padding=1), nn.ReLU(), nn.Conv1d(c, c, 3, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(c * 40, 10))
    params = list(net.parameters())
    opt = torch.optim.Adam([{"params": params[:-2], "lr": args.lr},
                            {"params": params[-2:], "lr": args.lr * args.readout_lr_scale}])
    per_epoch = args.n_train // 100
    total = args.epochs * per_epoch
    marks = set(np.unique(np.geomspace(1, total, 60).astype(int)).tolist())
    print(f"{'epoch':>9} {'train err':>9} {'test err':>9}")
    started, step = time.time(), 0
    for _ in range(args.epochs):
        order = torch.randperm(args.n_train)
        for i in range(per_epoch):
            idx = order[i * 100:(i + 1) * 100]
            xb = x[idx]
            if args.shift:
                shift = torch.randint(-args.shift, args.shift + 1, (len(idx),))
                xb = xb.gather(1, (torch.arange(40)[None, :] - shift[:, None]) % 40)
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step in marks:
                with torch.no_grad():
                    test_err = float((net(x_test).argmax(1) != y_test).float().mean())
                    train_err = float((net(x).argmax(1) != y).float().mean())
                print(f"{step / per_epoch:9.2f} {train_err:9.3f} {test_err:9.3f}", flush=True)
    print(f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
