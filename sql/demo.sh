#!/bin/sh
# The main job: install what is missing, build the extension, then run the
# notebook as SQL (sql/demo.sql) into a fresh mnist.db: import MNIST, train,
# evaluate, predict a photo, write grid.png, history.svg and
# 8-preprocessed.png. Usage: sh sql/demo.sh [epochs]   (default 1)
#
# sh sql/demo.sh best   trains the best recipe (sql/best.sql, 15 epochs) into
# mnist.db instead, keeping the models already there, makes the harder test
# copy (sql/hard.sql) and prints its accuracy on both test sets and its
# predictions of the photos beside the notebook's model's, if that was trained.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
if [ "${1:-}" = best ]; then
  if [ -f mnist.db ] && [ "$(sqlite3 mnist.db "SELECT count(*) FROM sqlite_schema WHERE name = 'cnn_models'")" = 1 ]; then
    sqlite3 -cmd '.load build/cnn' mnist.db "SELECT cnn_drop(name) FROM cnn_models WHERE name = 'best'" >/dev/null
  fi
  sqlite3 mnist.db < sql/best.sql
  sqlite3 mnist.db < sql/hard.sql
  sqlite3 -box -cmd '.load build/cnn' mnist.db "
    SELECT json_extract(cnn_evaluate('best', 'mnist_test'), '\$.accuracy') AS test_accuracy,
           json_extract(cnn_evaluate('best', 'mnist_test_hard'), '\$.accuracy') AS hard_accuracy;
    WITH photos(file) AS (VALUES ('0.jpg'), ('1.jpg'), ('2.jpg'), ('3.jpg'), ('4.jpg'), ('4_alpha.png'),
                                 ('5.jpg'), ('5_chalk.jpg'), ('6.jpg'), ('7.jpg'), ('8.jpg'), ('9.jpg'))
    SELECT file AS photo,
           CASE WHEN EXISTS (SELECT 1 FROM cnn_models WHERE name = 'notebook')
                THEN cnn_predict('notebook', readfile('data/digits/' || file)) END AS notebook,
           cnn_predict(readfile('data/digits/' || file)) AS best
      FROM photos;"
  echo "trained the model 'best' into mnist.db (the default model of cnn_predict)"
  exit 0
fi
rm -f mnist.db mnist.db-wal mnist.db-shm
{ echo ".parameter init"; echo ".parameter set :epochs ${1:-1}"; cat sql/demo.sql; } | sqlite3 mnist.db
echo "wrote mnist.db, grid.png, history.svg, 8-preprocessed.png"
