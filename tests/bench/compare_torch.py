"""Checks the engine against PyTorch step for step: the notebook's model is
created by cnn_create, its weights are copied into an equivalent PyTorch
model (Keras' NHWC layouts permuted to PyTorch's NCHW), and both train on the
same batches in the same order (no shuffling) with Adam (epsilon 1e-7). The
weights must stay close, and so must the loss and test accuracy.

Usage: /usr/bin/python3 tests/bench/compare_torch.py build/cnn.so data [steps]
"""
import gzip
import json
import sqlite3
import sys
import tempfile

import numpy as np
import torch
from torch import nn


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def tensors(conn, name):
    out = {}
    for tname, shape, data in conn.execute(
            "SELECT name, shape, data FROM cnn_weights WHERE model = ? ORDER BY idx", (name,)):
        out[tname] = np.frombuffer(data, dtype="<f4").reshape(json.loads(shape))
    return out


def to_torch(w, m):
    convs = [m[0], m[3], m[6]]
    for layer, key in zip(convs, ["conv2d", "conv2d_1", "conv2d_2"]):
        layer.weight.data = torch.from_numpy(w[key + "/kernel"].transpose(3, 2, 0, 1).copy())
        layer.bias.data = torch.from_numpy(w[key + "/bias"].copy())
    # Keras flattens (h, w, c); PyTorch (c, h, w).
    k = w["dense/kernel"].reshape(3, 3, 64, 5000).transpose(3, 2, 0, 1).reshape(5000, 576)
    m[10].weight.data = torch.from_numpy(k.copy())
    m[10].bias.data = torch.from_numpy(w["dense/bias"].copy())
    m[12].weight.data = torch.from_numpy(w["dense_1/kernel"].T.copy())
    m[12].bias.data = torch.from_numpy(w["dense_1/bias"].copy())


def from_torch(m):
    return {
        "conv2d/kernel": m[0].weight.data.numpy().transpose(2, 3, 1, 0),
        "dense/kernel": m[10].weight.data.numpy().reshape(5000, 64, 3, 3).transpose(2, 3, 1, 0).reshape(576, 5000),
        "dense_1/kernel": m[12].weight.data.numpy().T,
    }


def main():
    so, data = sys.argv[1], sys.argv[2]
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    optim = sys.argv[4] if len(sys.argv) > 4 else "adam"
    torch.set_num_threads(2)
    conn = sqlite3.connect(tempfile.mktemp(suffix=".db"), isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(so)
    conn.execute("SELECT cnn_import_mnist(?)", (data,)).fetchone()
    conn.execute("SELECT cnn_create('nb', NULL, 1)").fetchone()
    start = tensors(conn, "nb")
    rows = steps * 32
    r = json.loads(conn.execute(
        "SELECT cnn_train('nb', ?, ?)",
        (f"SELECT image, label FROM mnist_train WHERE id < {rows} ORDER BY id",
         json.dumps({"epochs": 1, "shuffle": False, "seed": 1, "optimizer": optim}))).fetchone()[0])
    ours = tensors(conn, "nb")
    acc = json.loads(conn.execute("SELECT cnn_evaluate('nb', 'mnist_test')").fetchone()[0])

    m = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Permute(0, 2, 3, 1) if hasattr(nn, "Permute") else nn.Identity(),
        nn.Flatten(), nn.Linear(576, 5000), nn.ReLU(), nn.Linear(5000, 10))
    to_torch(start, m)
    opt = (torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7) if optim == "adam"
           else torch.optim.SGD(m.parameters(), lr=0.01))
    x = torch.from_numpy(idx(f"{data}/train-images-idx3-ubyte.gz")[:rows].copy()).unsqueeze(1).float() / 255.0
    y = torch.from_numpy(idx(f"{data}/train-labels-idx1-ubyte.gz")[:rows].astype(np.int64))
    total = 0.0
    for i in range(0, rows, 32):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(x[i:i + 32]), y[i:i + 32])
        loss.backward()
        opt.step()
        total += loss.item() * 32
    xt = torch.from_numpy(idx(f"{data}/t10k-images-idx3-ubyte.gz").copy()).unsqueeze(1).float() / 255.0
    yt = torch.from_numpy(idx(f"{data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    with torch.no_grad():
        tacc = (torch.cat([m(xt[i:i + 1000]).argmax(1) for i in range(0, 10000, 1000)]) == yt).float().mean().item()
    theirs = from_torch(m)
    print(f"steps {steps}: loss ours {r['loss']:.5f} torch {total / rows:.5f}; "
          f"test accuracy ours {acc['accuracy']:.4f} torch {tacc:.4f}")
    for k, v in theirs.items():
        d = np.abs(ours[k] - v)
        moved = np.abs(start[k] - v)
        print(f"  {k}: |ours - torch| max {d.max():.2e} mean {d.mean():.2e}; "
              f"change from start max {moved.max():.2e} mean {moved.mean():.2e}")


if __name__ == "__main__":
    main()
