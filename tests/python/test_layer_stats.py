"""The training option layer_stats through Python: the same training on 1,
2 and 3 threads records the same layer statistics bit for bit (sums in a
fixed order on the calling thread), and they describe the layers: ReLU
outputs with zeros, gradients and update ratios positive where there is a
kernel, NULL where there is none.

Run by ctest with /usr/bin/python3; CNN_SO and CNN_DATA come from the
environment.
"""
import json
import xml.etree.ElementTree as ET

import cnntest
from cnntest import DATA, one, train

SPEC = json.dumps({"input": [28, 28, 1], "layers": [
    {"type": "conv2d", "filters": 6, "kernel": 3, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 32, "activation": "relu"},
    {"type": "dropout", "rate": 0.25},
    {"type": "dense", "units": 10}]})


def main():
    conn = cnntest.connect()
    one(conn, "SELECT cnn_import_mnist(?)", DATA)
    rows = {}
    for threads in (1, 2, 3):
        name = f"t{threads}"
        one(conn, "SELECT cnn_create(?, ?, 4)", name, SPEC)
        train(conn, name, "SELECT image, label FROM mnist_train WHERE id < 1200", epochs=2, seed=8,
              threads=threads, layer_stats=True, batch_size=16)
        rows[threads] = conn.execute(
            "SELECT epoch, layer, name, type, grad_mean_abs, weight_norm, update_ratio, zero_fraction "
            "FROM cnn_layer_stats(?)", (name,)).fetchall()
    assert len(rows[1]) == 12, rows[1]
    assert rows[1] == rows[2] == rows[3], "layer statistics differ between thread counts"
    for epoch, layer, name, kind, grad, norm, ratio, zeros in rows[1]:
        if kind in ("Conv2D", "Dense"):
            assert grad > 0 and norm > 0 and 0 < ratio < 1, (name, grad, norm, ratio)
        else:
            assert grad is None and norm is None and ratio is None, (name, grad, norm, ratio)
        assert 0 <= zeros <= 1
    by_name = {r[2]: r[7] for r in rows[1] if r[0] == 1}
    assert by_name["conv2d"] > 0.05 and by_name["dense"] > 0.05, by_name  # ReLUs off
    # Dropout zeroes a quarter of what the ReLUs left.
    want = 1 - (1 - by_name["dense"]) * 0.75
    assert abs(by_name["dropout"] - want) < 0.03, (by_name, want)
    assert by_name["dense_1"] == 0, by_name
    # The chart: an SVG with a line and a legend entry per layer that has the
    # statistic, in layer order; a log scale for gradients.
    ns = {"s": "http://www.w3.org/2000/svg"}
    for metric, names in (("grad_mean_abs", ["conv2d", "dense", "dense_1"]),
                          ("zero_fraction", [r[2] for r in rows[1] if r[0] == 1])):
        svg = ET.fromstring(one(conn, "SELECT cnn_layer_stats_svg('t1', ?)", metric))
        paths = svg.findall(".//s:path", ns)
        texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        assert len(paths) == len(names), (metric, len(paths), names)
        legend = [t for t in texts if t in names]
        assert legend[-len(names):] == names, (metric, texts)
    print("layer statistics identical on 1, 2 and 3 threads:",
          ", ".join(f"{r[2]} zeros {r[7]:.3f}" for r in rows[1] if r[0] == 2))
    print("ok")


if __name__ == "__main__":
    main()
