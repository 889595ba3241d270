"""Runs the README's examples: every ```sql block (the introduction on its
own, the notebook tour in order, the shell section), every ```python and
```js block, and the sqlite3 command lines of the ```sh blocks, each in a
scratch directory where ./build is the tested build and ./data the data.

The Installing section's examples load an installed cnn.so or a package:
the tests "install", python.test_package and node.package run them. So that the tour runs in seconds, MNIST's tables are shadowed by TEMP views
of their first rows and "epochs": 10 becomes 1; everything else runs as
written. A block passes when it runs without an error.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from cnntest import DATA, ROOT, SO

SHADOW = """
SELECT cnn_import_mnist('data') > 0;
CREATE TEMP VIEW mnist_train AS SELECT * FROM main.mnist_train WHERE id < 2000;
CREATE TEMP VIEW mnist_test AS SELECT * FROM main.mnist_test WHERE id < 1000;
"""


def blocks(text):
    """(section, language, code) of every fenced block. The section is the
    path of headings down to the block's own, from level 2 on ("## A / ### B"),
    or the title before any: a subsection names the sections it is in."""
    path, out = [], []
    for m in re.finditer(r"^(#+) ([^\n]*)$|^```(\w*)\n(.*?)^```", text, re.M | re.S):
        if m.group(1):
            level = len(m.group(1))
            path = [h for h in path if h[0] < level] + [(level, m.group(0))]
        elif m.group(3):
            heads = [h for level, h in path if level >= 2] or [h for _, h in path]
            out.append((" / ".join(heads), m.group(3), m.group(4)))
    return out


def scratch():
    d = tempfile.mkdtemp()
    os.symlink(os.path.dirname(SO), os.path.join(d, "build"))
    os.symlink(DATA, os.path.join(d, "data"))
    node_modules = os.path.join(ROOT, "tests", "node", "node_modules")
    if os.path.isdir(node_modules):
        os.symlink(node_modules, os.path.join(d, "node_modules"))
    return d


def shrink(code):
    return code.replace('"epochs": 10', '"epochs": 1')


def run(what, cmd, cwd, stdin=None):
    p = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=600)
    errors = [l for l in p.stderr.splitlines() if "rror" in l]
    if p.returncode or errors:
        sys.exit(f"README example failed ({what}):\n{stdin or ' '.join(cmd)}\n--- stderr:\n{p.stderr}")
    return p.stdout


def sql(what, code, cwd, shadow=True):
    # The shell's .load of the tested build: the README says ./build/cnn.
    script = ".bail on\n.load ./build/cnn\n" + (SHADOW if shadow else "") + shrink(code)
    run(what, ["sqlite3", "-batch", "mnist.db"], cwd, script)


def main():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    found = blocks(text)
    tour, shell, counts = scratch(), scratch(), {}
    for section, lang, code in found:
        counts[lang] = counts.get(lang, 0) + 1
        if "Installing" in section:
            continue  # installed paths: the test "install" runs these
        if lang == "sql":
            if section.startswith("# sqlite-cnn"):
                sql("introduction", code, scratch())
            elif "From the shell" in section:
                sql(section, code, shell, shadow=False)
            else:
                sql(section, code, tour)
        elif lang == "python":
            run(section, ["/usr/bin/python3", "-c", shrink(code)], shell)
        elif lang == "js":
            own = scratch()  # a database of its own: it creates 'small' too
            if shutil.which("node") and os.path.isdir(os.path.join(own, "node_modules")):
                path = os.path.join(own, "example.mjs")
                with open(path, "w") as f:
                    f.write(code)
                run(section, ["node", path], own)
            else:
                print(f"js block of {section}: node or better-sqlite3 missing; run tests/node/run.sh first")
        elif lang == "sh":
            for line in code.splitlines():
                if line.startswith("sqlite3 ") and "LD_LIBRARY_PATH" not in code:
                    run(section, ["sh", "-c", line], shell)
    # The README must keep its examples: a test that finds none proves nothing.
    assert counts.get("sql", 0) >= 10 and counts.get("python", 0) >= 2 and counts.get("js", 0) >= 1, counts
    print("ok", counts)


if __name__ == "__main__":
    main()
