"""cnn_history_svg(models, metric) from Python: three models trained with
different optimizers from the same weights and batches give a well-formed SVG
(xml.etree parses it) with one line (path) and one legend entry per model in
the order asked, every point inside the axes, and, on the loss chart's log
scale, a point higher on the chart for every higher loss. Twelve models draw;
every kind of bad argument is a clear error naming the function.

Run by ctest with /usr/bin/python3; CNN_SO and CNN_DATA come from the
environment.
"""
import json
import math
import os
import re
import sqlite3
import sys
import xml.etree.ElementTree as ET

from cnntest import DATA, connect

NS = "{http://www.w3.org/2000/svg}"
TINY = json.dumps({"input": [28, 28, 1], "layers": [
    {"type": "conv2d", "filters": 2, "kernel": 3, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 10}]})
OPTIMIZERS = ["sgd", "adam", "rmsprop"]
EPOCHS = 3


def points(path):
    """[(x, y)] of a path's M/L commands."""
    return [(float(x), float(y)) for x, y in re.findall(r"[ML]([-\d.]+),([-\d.]+)", path.get("d"))]


def check_chart(svg, names):
    root = ET.fromstring(svg)
    assert root.tag == NS + "svg", root.tag
    series = [g for g in root.iter(NS + "g") if g.get("class") == "series"]
    assert [g.get("data-name") for g in series] == names, [g.get("data-name") for g in series]
    entries = [g for g in root.iter(NS + "g") if g.get("class") == "legend-entry"]
    assert [e.find(NS + "text").text for e in entries] == names
    strokes = [g.get("stroke") for g in series]
    assert len(set(strokes)) == len(names), strokes
    frame = root.find(".//" + NS + "g[@class='axes']/" + NS + "rect")
    x0, y0 = float(frame.get("x")), float(frame.get("y"))
    x1, y1 = x0 + float(frame.get("width")), y0 + float(frame.get("height"))
    lines = {}
    for g in series:
        paths = g.findall(NS + "path")
        assert len(paths) == 1, len(paths)
        pts = points(paths[0])
        for x, y in pts:
            assert x0 - 0.01 <= x <= x1 + 0.01 and y0 - 0.01 <= y <= y1 + 0.01, (x, y)
        lines[g.get("data-name")] = pts
    return root, lines


def expect_error(conn, sql, args, start):
    try:
        conn.execute(sql, args).fetchone()
    except sqlite3.OperationalError as e:
        assert str(e).startswith(start), (str(e), start)
        return
    raise AssertionError(f"expected an error for {args}")


def main():
    conn = connect(":memory:")
    images = os.path.join(DATA, "t10k-images-idx3-ubyte.gz")
    labels = os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")
    conn.execute("CREATE TABLE tr AS SELECT image, label FROM cnn_mnist(?, ?) WHERE idx < 200",
                 (images, labels))
    conn.execute("CREATE TABLE va AS SELECT image, label FROM cnn_mnist(?, ?) "
                 "WHERE idx >= 200 AND idx < 300", (images, labels))
    for opt in OPTIMIZERS:
        conn.execute("SELECT cnn_create(?, ?, 7)", (opt, TINY))
        conn.execute("SELECT cnn_train(?, 'tr', ?)", (opt, json.dumps(
            {"epochs": EPOCHS, "optimizer": opt, "validation": "va", "seed": 1, "threads": 1})))

    names = ["rmsprop", "sgd", "adam"]
    svg = conn.execute("SELECT cnn_history_svg(?, 'loss')", (json.dumps(names),)).fetchone()[0]
    root, lines = check_chart(svg, names)
    texts = [t.text for t in root.iter(NS + "text")]
    assert "Loss (log scale)" in texts and "Epoch" in texts, texts
    # Log scale: y pixel is affine in log10(loss) (the same map for every model).
    pairs = []
    for name in names:
        losses = [r[0] for r in conn.execute(
            "SELECT loss FROM cnn_history(?) ORDER BY epoch", (name,))]
        assert len(lines[name]) == EPOCHS, lines[name]
        pairs += [(math.log10(l), y) for l, (_, y) in zip(losses, lines[name])]
    (la, ya), (lb, yb) = min(pairs), max(pairs)
    assert la < lb and ya > yb, pairs
    for l, y in pairs:
        want = ya + (l - la) / (lb - la) * (yb - ya)
        assert abs(y - want) < 0.05, (l, y, want)

    for metric in ("accuracy", "val_accuracy", "val_loss", "learning_rate", "seconds"):
        svg = conn.execute("SELECT cnn_history_svg(?, ?)",
                           (json.dumps(OPTIMIZERS), metric)).fetchone()[0]
        check_chart(svg, OPTIMIZERS)

    # Twelve models draw (copies of one history), thirteen are refused.
    many = [f"m{i}" for i in range(13)]
    for name in many:
        conn.execute("SELECT cnn_create(?, ?, 1)", (name, TINY))
        conn.execute("INSERT INTO cnn_epochs(model, epoch, loss, accuracy) "
                     "SELECT ?, epoch, loss, accuracy FROM cnn_epochs WHERE model = 'sgd'", (name,))
    svg = conn.execute("SELECT cnn_history_svg(?, 'accuracy')", (json.dumps(many[:12]),)).fetchone()[0]
    check_chart(svg, many[:12])

    q = "SELECT cnn_history_svg(?, ?)"
    p = "cnn_history_svg: "
    expect_error(conn, q, (json.dumps(many), "loss"), p + "models names 13 models; the limit is 12")
    expect_error(conn, q, ("[]", "loss"), p + "models is an empty array")
    expect_error(conn, q, ('["sgd"', "loss"), p + "models is not valid JSON")
    expect_error(conn, q, ('["sgd", 2]', "loss"), p + "models[1] must be a model name; got 2")
    expect_error(conn, q, ('["sgd", "nope"]', "loss"), p + "no model named 'nope'")
    expect_error(conn, q, ('["sgd"]', "f1"), p + "metric must be one of")
    expect_error(conn, q, ('["sgd"]', None), p + "metric must be one of")
    expect_error(conn, q, (3, "loss"), p + "models must be a JSON array of model names")
    expect_error(conn, q, (b"sgd", "loss"), p + "models must be a JSON array of model names")
    conn.execute("SELECT cnn_create('fresh', ?, 1)", (TINY,))
    expect_error(conn, q, ('["sgd", "fresh"]', "loss"), p + "model 'fresh' has no completed epochs")
    print("test_compare_svg: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
