"""cnn_history_svg from Python: the chart of a short training run is
well-formed XML (xml.etree parses it), has one circle marker per epoch for
each of accuracy and val_accuracy, the axis labels, the legend and a title,
and every marker lies inside the axes.

Skipped (with a message, exit status 0) while cnn_history_svg is not
registered. Run by ctest with /usr/bin/python3; CNN_SO and CNN_DATA come
from the environment.
"""
import json
import os
import sqlite3
import sys
import xml.etree.ElementTree as ET

from cnntest import DATA, connect

NS = "{http://www.w3.org/2000/svg}"
SMALL = json.dumps({"input": [28, 28, 1], "layers": [
    {"type": "conv2d", "filters": 4, "kernel": 3, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 10}]})
EPOCHS = 3


def main():
    conn = connect(":memory:", keep_loading=True, check_same_thread=True, timeout=5.0)
    names = {r[0] for r in conn.execute("SELECT name FROM pragma_function_list")}
    if "cnn_history_svg" not in names:
        print("test_svg: skipped, cnn_history_svg is not registered")
        return 0

    images = os.path.join(DATA, "t10k-images-idx3-ubyte.gz")
    labels = os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")
    conn.execute("CREATE TABLE tr AS SELECT image, label FROM cnn_mnist(?, ?) WHERE idx < 300",
                 (images, labels))
    conn.execute("CREATE TABLE va AS SELECT image, label FROM cnn_mnist(?, ?) "
                 "WHERE idx >= 300 AND idx < 400", (images, labels))
    conn.execute("SELECT cnn_create('svg', ?)", (SMALL,))
    conn.execute("SELECT cnn_train('svg', 'tr', ?)",
                 (json.dumps({"epochs": EPOCHS, "validation": "va", "seed": 1}),))
    svg = conn.execute("SELECT cnn_history_svg('svg')").fetchone()[0]
    assert isinstance(svg, str), type(svg)

    root = ET.fromstring(svg)
    assert root.tag == NS + "svg", root.tag
    series = {g.get("id"): g for g in root.iter(NS + "g") if g.get("id")}
    assert set(series) >= {"accuracy", "val_accuracy"}, series.keys()
    frame = root.find(".//" + NS + "g[@class='axes']/" + NS + "rect")
    x0, y0 = float(frame.get("x")), float(frame.get("y"))
    x1, y1 = x0 + float(frame.get("width")), y0 + float(frame.get("height"))
    for name in ("accuracy", "val_accuracy"):
        points = [c for c in series[name].iter(NS + "circle") if c.get("class") == "point"]
        assert len(points) == EPOCHS, (name, len(points))
        xs = [float(c.get("cx")) for c in points]
        assert xs == sorted(xs) and len(set(xs)) == EPOCHS, xs
        for c in points:
            assert x0 <= float(c.get("cx")) <= x1 and y0 <= float(c.get("cy")) <= y1, c.attrib
    texts = [t.text for t in root.iter(NS + "text")]
    for want in ("Epoch", "Accuracy", "accuracy", "val_accuracy"):
        assert want in texts, (want, texts)
    assert root.find(".//" + NS + "text[@class='title']") is not None

    try:
        conn.execute("SELECT cnn_history_svg('no such model')").fetchone()
        raise AssertionError("expected an error for an unknown model")
    except sqlite3.OperationalError as e:
        assert str(e).startswith("cnn_history_svg: "), str(e)
    print("test_svg: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
