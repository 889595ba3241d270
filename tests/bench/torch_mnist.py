"""PyTorch reference for the benchmark (tests/bench/run.sh): the notebook's
model, Glorot-uniform kernels and zero biases (Keras' initialisation), Adam
with Keras' epsilon 1e-7, softmax cross-entropy on logits, shuffled batches.

Prints one line of JSON: seconds per epoch, test accuracy, inference times
(batch 1 and batch 1000) and peak RSS. Run with Debian's /usr/bin/python3
(python3-torch). Usage: torch_mnist.py DATA_DIR BATCH THREADS TRAIN_ROWS
"""
import gzip
import json
import resource
import sys
import time

import numpy as np
import torch
from torch import nn


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def model():
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        # Keras flattens NHWC; the order does not matter for speed or accuracy.
        nn.Flatten(), nn.Linear(576, 5000), nn.ReLU(), nn.Linear(5000, 10))
    for layer in m:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return m


def main():
    data, batch, threads, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    xtr = torch.from_numpy(idx(f"{data}/train-images-idx3-ubyte.gz")[:rows].copy())
    ytr = torch.from_numpy(idx(f"{data}/train-labels-idx1-ubyte.gz")[:rows].astype(np.int64))
    xte = torch.from_numpy(idx(f"{data}/t10k-images-idx3-ubyte.gz").copy())
    yte = torch.from_numpy(idx(f"{data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    m = model()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()

    m.train()
    start = time.perf_counter()
    perm = torch.randperm(rows)
    for i in range(0, rows, batch):
        sel = perm[i:i + batch]
        x = xtr[sel].unsqueeze(1).float() / 255.0
        opt.zero_grad()
        loss = loss_fn(m(x), ytr[sel])
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - start

    m.eval()
    with torch.no_grad():
        xt = xte.unsqueeze(1).float() / 255.0
        start = time.perf_counter()
        pred = torch.cat([m(xt[i:i + 1000]).argmax(1) for i in range(0, len(xt), 1000)])
        batched_s = time.perf_counter() - start
        acc = (pred == yte).float().mean().item()
        n1 = 1000
        start = time.perf_counter()
        for i in range(n1):
            m(xt[i:i + 1]).argmax(1)
        single_us = (time.perf_counter() - start) / n1 * 1e6
    print(json.dumps({
        "seconds_per_epoch": train_s * 60000 / rows,
        "us_per_sample": train_s / rows * 1e6,
        "test_accuracy": acc,
        "predict_us_batch1": single_us,
        "predict_s_10000_batched": batched_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
