-- A harder copy of the MNIST test set: mnist_test_hard holds every digit of
-- mnist_test rotated (up to 15 degrees, beyond the best recipe's 10), shifted
-- (up to 10% of the side) and, one in three each, thickened or thinned by a
-- pixel, through cnn_augment with a seed per row: the same seed gives the
-- same bytes on every machine, so accuracies on it can be compared.
--
-- Run from the repository root, after building:
--   sqlite3 mnist.db < sql/hard.sql
-- It imports MNIST when mnist_test is missing and creates (or refills)
-- mnist_test_hard (id, image, label), ids and labels those of mnist_test, in
-- one transaction. Row id gets the seed id + 1000000 * :seed (.parameter set
-- :seed N before reading this file; 0 by default).
.bail on
.load build/cnn
.parameter init

SELECT cnn_import_mnist('data') AS rows_imported
 WHERE NOT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'mnist_test');

BEGIN;
DROP TABLE IF EXISTS mnist_test_hard;
CREATE TABLE mnist_test_hard (id INTEGER PRIMARY KEY, image BLOB NOT NULL, label INTEGER NOT NULL);
INSERT INTO mnist_test_hard (id, image, label)
  SELECT id, cnn_augment(image, '{"rotation": 15, "shift": 0.1, "thickness": 1}',
                         id + 1000000 * coalesce(:seed, 0)), label
    FROM mnist_test ORDER BY id;
COMMIT;

SELECT count(*) AS hard_rows FROM mnist_test_hard;
