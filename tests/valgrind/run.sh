#!/bin/sh
# Memory check of the extension under valgrind memcheck: the sqlite3 shell
# loads an optimised cnn.so and runs a short life of a model (reading MNIST,
# creating, training with validation, predicting a photo, evaluating,
# exporting (the engine's blob and ONNX) and importing, history, pictures)
# plus a few calls that fail, so their error paths are checked too. Any
# invalid access, use of an uninitialised value or definitely lost block fails
# it, as does output that differs from the expected lines below (so a run
# that did nothing cannot pass).
#
# The cnn.so it checks is its own: the sources built in Release with no
# machine-specific flags (no -march=native, CFLAGS from the environment
# ignored) and the kernels capped at AVX2 (CNN_ISA=avx2). Debian 12's
# valgrind 3.19 cannot decode AVX-512 (EVEX) instructions, which a build for
# this machine's ISA or an AVX-512 kernel would run on such a CPU; so the
# test checks the same code on every x86-64 CPU, whatever flags the tree
# under test was configured with.
#
# Usage: tests/valgrind/run.sh BUILD_DIR   (configured and built there)
#        tests/valgrind/run.sh --so path/to/cnn.so   (an existing build)
# Data from $CNN_DATA (else data/ beside tests/), the photo from $CNN_ROOT.
# Only for builds without sanitizers: ASan and valgrind do not mix.
set -u
root=${CNN_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
data=${CNN_DATA:-$root/data}
if ! command -v valgrind >/dev/null; then
  echo "valgrind is not installed (sh tools/deps.sh valgrind): skipped"
  exit 77  # ctest's SKIP_RETURN_CODE
fi
if [ "${1:-}" = "--so" ]; then
  so=${2:?give the path to cnn.so after --so}
  echo "valgrind: checking $so as built"
else
  build=${1:?give a build directory (or --so path/to/cnn.so)}
  echo "valgrind: building a portable Release cnn.so in $build"
  env -u CFLAGS -u CPPFLAGS -u LDFLAGS cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCNN_NATIVE=OFF -DCNN_SANITIZE=OFF -DCMAKE_C_FLAGS= >/dev/null || exit 1
  cmake --build "$build" --target cnn -j "$(nproc 2>/dev/null || echo 2)" >/dev/null || exit 1
  so=$build/cnn.so
  flags=$(sed -n 's/^CMAKE_C_FLAGS:STRING=//p' "$build/CMakeCache.txt")
  echo "valgrind: build flags: -O3 ${flags:-(none beyond Release)}, CNN_NATIVE=OFF"
fi
# Valgrind 3.19 decodes AVX2 but not AVX-512: cap the run-time kernel choice.
export CNN_ISA=avx2
# Absolute paths: the run happens in a temporary directory.
so=$(cd "$(dirname "$so")" && pwd)/$(basename "$so") || exit 1
data=$(cd "$data" && pwd) || exit 1
root=$(cd "$root" && pwd) || exit 1
debug=$(sqlite3 :memory: ".load $so" "SELECT cnn_debug()" 2>&1) || { echo "$debug"; exit 1; }
echo "valgrind: CNN_ISA=$CNN_ISA; cnn_debug() of that cnn.so:"
echo "$debug" | sed 's/^/  /'
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1

# A small model that still has every kind of layer; two threads so the
# worker pool runs under the checker too.
spec='{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},{"type":"maxpool","size":2},{"type":"conv2d","filters":4,"kernel":3,"padding":"same","activation":{"expr":"x*sigmoid(x)"}},{"type":"flatten"},{"type":"dense","units":16,"activation":"relu"},{"type":"dropout","rate":0.5},{"type":"dense","units":10}]}'
cat > test.sql <<SQL
.load $so
CREATE TABLE train AS SELECT image, label FROM cnn_mnist('$data/train-images-idx3-ubyte.gz', '$data/train-labels-idx1-ubyte.gz') LIMIT 300;
CREATE TABLE test AS SELECT image, label FROM cnn_mnist('$data/t10k-images-idx3-ubyte.gz', '$data/t10k-labels-idx1-ubyte.gz') LIMIT 100;
SELECT count(*), sum(length(image)) FROM train;
SELECT cnn_create('m', '$spec', 1);
SELECT * FROM cnn_summary('m');
SELECT json_extract(r, '\$.epochs'), json_extract(r, '\$.samples') FROM (SELECT cnn_train('m', 'train', '{"epochs":1,"batch_size":32,"seed":1,"threads":2,"validation":"test"}') AS r);
SELECT cnn_predict('m', readfile('$root/data/digits/8.jpg')) BETWEEN 0 AND 9;
SELECT json_array_length(cnn_predict_proba('m', readfile('$root/data/digits/8.jpg')));
SELECT length(cnn_preprocess(readfile('$root/data/digits/8.jpg')));
SELECT json_extract(cnn_evaluate('m', 'test'), '\$.count');
SELECT count(*), min(predicted) >= 0 AND max(predicted) <= 9 FROM cnn_predictions('m', 'SELECT image, label FROM test');
SELECT sum(count) FROM cnn_confusion('m', 'test');
SELECT cnn_import('m2', cnn_export('m'));
SELECT cnn_export('m') = cnn_export('m2');
SELECT hex(substr(cnn_export_onnx('m'), 1, 2)), length(cnn_export_onnx('m')) > 40000;
SELECT epoch, samples, val_accuracy IS NOT NULL FROM cnn_history('m');
SELECT substr(cnn_image_png(image), 2, 3) FROM test LIMIT 1;
SELECT substr(cnn_grid_png('SELECT image, label FROM test LIMIT 20', 5), 2, 3);
SELECT substr(cnn_history_svg('m'), 1, 4);
SELECT cnn_drop('m2');
SELECT cnn_train('m', 'SELECT x''01'', 2', '{"epochs":1}');
SELECT cnn_train('m', 'train', '{"epochs":1,"batch_size":0}');
SELECT cnn_train('m', 'train', '{"epochs":1,"validation":"SELECT image, 12 FROM test"}');
SELECT cnn_predict('m', x'0102');
SELECT cnn_import('m3', substr(cnn_export('m'), 1, 1000));
SELECT * FROM cnn_mnist('missing.gz');
SELECT cnn_create('bad', '{"layers":[{"type":"dense","units":-1}]}');
SELECT epochs, step FROM cnn_models WHERE name = 'm';
SELECT substr(cnn_history_svg('["m"]', 'val_loss'), 1, 4), substr(cnn_history_svg('m', 'seconds'), 1, 4);
SQL

cat > expected.txt <<'OUT'
300|235200
11190
conv2d|Conv2D|(None, 26, 26, 4)|40
max_pooling2d|MaxPooling2D|(None, 13, 13, 4)|0
conv2d_1|Conv2D|(None, 13, 13, 4)|148
flatten|Flatten|(None, 676)|0
dense|Dense|(None, 16)|10832
dropout|Dropout|(None, 16)|0
dense_1|Dense|(None, 10)|170
1|300
1
10
784
100
100|1
100
11190
1
0807|1
1|300|1
PNG
PNG
<?xm
1
1|10
<?xm|<?xm
OUT
cat > expected_errors.txt <<'OUT'
Runtime error near line 22: cnn_train: source row 1: image must be 784 raw bytes or an encoded image; got a 1-byte blob
Runtime error near line 23: cnn_train: option batch_size must be an integer 1..65536; got 0
Runtime error near line 24: cnn_train: validation source row 1: label must be an integer 0..9; got 12
Runtime error near line 25: cnn_predict: image must be 784 raw bytes or an encoded image; got a 2-byte blob
Runtime error near line 26: cnn_import: model blob is corrupt or truncated (checksum mismatch)
Runtime error near line 27: cnn_mnist: missing.gz: cannot open: No such file or directory
Runtime error near line 28: cnn_create: layer 1 (dense): units must be an integer 1..65536, got -1
OUT

start=$(date +%s)
valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --track-origins=yes --keep-debuginfo=yes --log-file=valgrind.log \
  sqlite3 -batch test.db < test.sql > actual.txt 2> actual_errors.txt
rc=$?
end=$(date +%s)
grep "ERROR SUMMARY" valgrind.log | sed 's/^==[0-9]*== //'
echo "valgrind run: $((end - start)) s"
# The shell exits 1 because of the script's failing calls; valgrind exits 99
# when it found an error; anything else is a crash or a lost run.
if [ "$rc" -ne 1 ]; then
  cat valgrind.log
  if [ "$rc" -eq 99 ]; then echo "valgrind found errors"; else echo "sqlite3 exited with status $rc"; fi
  exit 1
fi
if ! diff -u expected.txt actual.txt || ! diff -u expected_errors.txt actual_errors.txt; then
  echo "the run under valgrind printed something else than expected"
  exit 1
fi
