-- cnn_mnist() and cnn_import_mnist() on the real MNIST files: row counts,
-- label histograms, exact bytes of the first images, and the import's tables.

-- The test set streams as 10000 records of 28x28 bytes, numbered from 0.
SELECT count(*), min(idx), max(idx), min(length(image)), max(length(image)), sum(label)
  FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/t10k-labels-idx1-ubyte.gz');

-- Its label histogram.
SELECT label, count(*)
  FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/t10k-labels-idx1-ubyte.gz')
 GROUP BY label ORDER BY label;

-- The first image (a 7): row 14 of 28, and the rowid is the record number.
SELECT idx, rowid, label, typeof(image), hex(substr(image, 14 * 28 + 1, 28))
  FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/t10k-labels-idx1-ubyte.gz')
 LIMIT 1;

-- Records in file order: ORDER BY idx, LIMIT and OFFSET.
SELECT idx, label
  FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/t10k-labels-idx1-ubyte.gz')
 ORDER BY idx LIMIT 3 OFFSET 9997;

-- Without a labels file the label is NULL.
SELECT count(*), count(label), typeof(label), count(DISTINCT typeof(label))
  FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz');

-- The hidden argument columns read back; the WHERE form works like the call.
SELECT replace(images_path, '@DATA@/', ''), labels_path IS NULL
  FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz') LIMIT 1;
SELECT count(*) FROM cnn_mnist
 WHERE images_path = '@DATA@/t10k-images-idx3-ubyte.gz'
   AND labels_path = '@DATA@/t10k-labels-idx1-ubyte.gz';

-- A raw (not gzipped) file gives the same records.
.system gzip -dc @DATA@/t10k-images-idx3-ubyte.gz > t10k-images-idx3-ubyte
CREATE TEMP TABLE raw(idx INTEGER PRIMARY KEY, image BLOB);
INSERT INTO raw SELECT idx, image FROM cnn_mnist('t10k-images-idx3-ubyte');
SELECT count(*) FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz') AS g
  JOIN raw AS r ON r.idx = g.idx
 WHERE g.image = r.image;

-- Bounds on idx: a lookup and a range stop reading early.
SELECT idx, label
  FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/t10k-labels-idx1-ubyte.gz')
 WHERE idx = 1234;
SELECT count(*), min(idx), max(idx)
  FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz') WHERE idx > 2.5 AND idx <= 7;
SELECT count(*) FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz') WHERE idx = 2.5 OR idx < -1;
SELECT (SELECT image FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz') WHERE idx = 9999)
     = (SELECT image FROM raw WHERE idx = 9999);

-- Arguments from another table (a join: the path is known only per row).
CREATE TABLE files(name TEXT);
INSERT INTO files VALUES ('t10k-labels-idx1-ubyte.gz'), ('train-labels-idx1-ubyte.gz');
SELECT f.name, count(*), sum(m.label IS NULL)
  FROM files f, cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/' || 't10k-labels-idx1-ubyte.gz') m
 WHERE f.name = 't10k-labels-idx1-ubyte.gz'
 GROUP BY f.name;
SELECT f.name, count(*)
  FROM files f, cnn_mnist('@DATA@/' || replace(f.name, 'labels-idx1', 'images-idx3')) m
 GROUP BY f.name ORDER BY f.name;

-- The import: 60000 + 10000 rows in two tables.
SELECT cnn_import_mnist('@DATA@');
SELECT sql FROM sqlite_schema WHERE name LIKE 'mnist\_%' ESCAPE '\' ORDER BY name;
SELECT count(*), min(id), max(id), min(length(image)), max(length(image)) FROM mnist_train;
SELECT count(*), min(id), max(id), min(length(image)), max(length(image)) FROM mnist_test;
SELECT label, count(*) FROM mnist_train GROUP BY label ORDER BY label;
SELECT label, count(*) FROM mnist_test GROUP BY label ORDER BY label;

-- The tables hold exactly what cnn_mnist streams.
SELECT (SELECT image FROM cnn_mnist('@DATA@/train-images-idx3-ubyte.gz') LIMIT 1)
     = (SELECT image FROM mnist_train WHERE id = 0);
SELECT id, label, hex(substr(image, 14 * 28 + 1, 28)) FROM mnist_train WHERE id = 0;
SELECT count(*) FROM mnist_test t
  JOIN cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/t10k-labels-idx1-ubyte.gz') m
    ON m.idx = t.id
 WHERE m.image = t.image AND m.label = t.label;

-- A second import refills the tables (no duplicates).
SELECT cnn_import_mnist('@DATA@');
SELECT (SELECT count(*) FROM mnist_train), (SELECT count(*) FROM mnist_test);

-- Inside the caller's transaction the import joins it: a ROLLBACK undoes it.
DROP TABLE mnist_train;
DROP TABLE mnist_test;
BEGIN;
SELECT cnn_import_mnist('@DATA@');
SELECT count(*) FROM mnist_test;
ROLLBACK;
SELECT count(*) FROM sqlite_schema WHERE name LIKE 'mnist\_%' ESCAPE '\';

-- Files with and without .gz: the .gz one wins (the raw labels file here is
-- garbage that would fail).
.system mkdir mixed
.system cp @DATA@/train-images-idx3-ubyte.gz @DATA@/train-labels-idx1-ubyte.gz mixed/
.system cp t10k-images-idx3-ubyte @DATA@/t10k-labels-idx1-ubyte.gz mixed/
SELECT writefile('mixed/t10k-labels-idx1-ubyte', 'not an IDX file');
SELECT cnn_import_mnist('mixed');
SELECT count(*), sum(label) FROM mnist_test;
