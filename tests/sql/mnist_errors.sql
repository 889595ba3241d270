-- Every bad input to cnn_mnist() and cnn_import_mnist() is an SQL error with
-- an exact message; a failed import leaves the database as it was; neither
-- can run from a view or a trigger.

-- Files to break things with (writefile prints the bytes written).
SELECT writefile('empty.idx', '');
SELECT writefile('text.txt', 'hello, world' || char(10));
SELECT writefile('trunc.gz', substr(readfile('@DATA@/t10k-images-idx3-ubyte.gz'), 1, 1000));
SELECT writefile('magic.idx', x'00010803000000010000000200000002' || x'01020304');
SELECT writefile('float.idx', x'00000d03000000010000000200000002' || x'01020304');
SELECT writefile('count0.idx', x'00000803000000000000001c0000001c');
SELECT writefile('huge.idx', x'00000803ffffffffffffffff00010000');
SELECT writefile('wide.idx', x'00000803000000050000001c00001001');
SELECT writefile('short.idx', x'00000803000000030000000200000002' || x'0102030405060708090a');
SELECT writefile('head.idx', x'000008030000');
.system gzip -k magic.idx

-- cnn_mnist: files that cannot be read.
SELECT count(*) FROM cnn_mnist('missing.gz');
SELECT count(*) FROM cnn_mnist('.');
SELECT count(*) FROM cnn_mnist('empty.idx');
SELECT count(*) FROM cnn_mnist('text.txt');
SELECT count(*) FROM cnn_mnist('trunc.gz');
SELECT count(*) FROM cnn_mnist('magic.idx');
SELECT count(*) FROM cnn_mnist('magic.idx.gz');
SELECT count(*) FROM cnn_mnist('float.idx');
SELECT count(*) FROM cnn_mnist('@DATA@/t10k-labels-idx1-ubyte.gz');
SELECT count(*) FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/t10k-images-idx3-ubyte.gz');
SELECT count(*) FROM cnn_mnist('head.idx');
SELECT count(*) FROM cnn_mnist('count0.idx');
SELECT count(*) FROM cnn_mnist('huge.idx');
SELECT count(*) FROM cnn_mnist('wide.idx');
SELECT count(*) FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', 'missing-labels.gz');
SELECT count(*) FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/train-labels-idx1-ubyte.gz');

-- The rows before the end of a short file arrive, then the error.
SELECT idx, hex(image) FROM cnn_mnist('short.idx');
-- LIMIT stops reading before the damage.
SELECT idx, hex(image) FROM cnn_mnist('short.idx') LIMIT 2;
SELECT count(*) FROM cnn_mnist('trunc.gz') WHERE idx < 2;

-- cnn_mnist: arguments.
SELECT count(*) FROM cnn_mnist(NULL);
SELECT count(*) FROM cnn_mnist(42);
SELECT count(*) FROM cnn_mnist(x'00');
SELECT count(*) FROM cnn_mnist('');
SELECT count(*) FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', NULL);
SELECT count(*) FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', 7);
SELECT count(*) FROM cnn_mnist;
SELECT count(*) FROM cnn_mnist WHERE labels_path = '@DATA@/t10k-labels-idx1-ubyte.gz';
SELECT count(*) FROM cnn_mnist('a', 'b', 'c');
CREATE VIRTUAL TABLE m USING cnn_mnist;

-- cnn_import_mnist: arguments and directories.
SELECT cnn_import_mnist(NULL);
SELECT cnn_import_mnist(1.5);
SELECT cnn_import_mnist(x'2e');
SELECT cnn_import_mnist('');
SELECT cnn_import_mnist('nodir');
SELECT cnn_import_mnist('text.txt');
.system mkdir emptydir
SELECT cnn_import_mnist('emptydir');
SELECT cnn_import_mnist();
SELECT cnn_import_mnist('a', 'b');

-- A tiny data set of 2x2 images: three training records, one test record.
.system mkdir tiny
SELECT writefile('tiny/train-images-idx3-ubyte', x'00000803000000030000000200000002' || x'0001020310111213fffefdfc');
SELECT writefile('tiny/train-labels-idx1-ubyte', x'0000080100000003' || x'000c09');
SELECT writefile('tiny/t10k-images-idx3-ubyte', x'00000803000000010000000200000002' || x'01010101');
SELECT writefile('tiny/t10k-labels-idx1-ubyte', x'0000080100000001' || x'07');

-- A previous mnist_train must survive every failed import.
CREATE TABLE mnist_train(note TEXT);
INSERT INTO mnist_train VALUES ('kept');

-- Label 12 is found while the rows go in: everything is rolled back.
SELECT cnn_import_mnist('tiny');
SELECT * FROM mnist_train;
SELECT count(*) FROM sqlite_schema WHERE name = 'mnist_test';

-- Header problems are found before the database is touched.
SELECT writefile('tiny/train-labels-idx1-ubyte', x'0000080100000004' || x'00020903');
SELECT cnn_import_mnist('tiny');
SELECT writefile('tiny/train-labels-idx1-ubyte', x'0000080100000003' || x'000209');
SELECT writefile('tiny/t10k-labels-idx1-ubyte', x'00000803000000010000000200000002' || x'07070707');
SELECT cnn_import_mnist('tiny');
SELECT writefile('tiny/t10k-images-idx3-ubyte', x'00000803000000010000000100000004' || x'01010101');
SELECT writefile('tiny/t10k-labels-idx1-ubyte', x'0000080100000001' || x'07');
SELECT cnn_import_mnist('tiny');
SELECT * FROM mnist_train;

-- Fixed, the tiny set imports (a table of 2x2 images).
SELECT writefile('tiny/t10k-images-idx3-ubyte', x'00000803000000010000000200000002' || x'01010101');
SELECT cnn_import_mnist('tiny');
SELECT id, hex(image), label FROM mnist_train ORDER BY id;
SELECT id, hex(image), label FROM mnist_test ORDER BY id;

-- Not from a statement that writes, nor while a statement reads the tables;
-- the tables stay as they were.
CREATE TABLE sink(n);
INSERT INTO sink SELECT cnn_import_mnist('tiny');
SELECT cnn_import_mnist('tiny') FROM mnist_test;
SELECT count(*) FROM sink;
SELECT (SELECT count(*) FROM mnist_train), (SELECT count(*) FROM mnist_test);

-- The real training images cut off after a few thousand records: the error
-- comes midway through the inserts, and neither table remains.
DROP TABLE mnist_train;
DROP TABLE mnist_test;
.system mkdir cut
SELECT writefile('cut/train-images-idx3-ubyte.gz', substr(readfile('@DATA@/train-images-idx3-ubyte.gz'), 1, 800000));
.system cp @DATA@/train-labels-idx1-ubyte.gz @DATA@/t10k-images-idx3-ubyte.gz @DATA@/t10k-labels-idx1-ubyte.gz cut/
SELECT cnn_import_mnist('cut');
SELECT count(*) FROM sqlite_schema WHERE name IN ('mnist_train', 'mnist_test');

-- Not from views or triggers (SQLITE_DIRECTONLY).
CREATE VIEW v_stream AS SELECT count(*) FROM cnn_mnist('@DATA@/t10k-labels-idx1-ubyte.gz');
SELECT * FROM v_stream;
CREATE VIEW v_import AS SELECT cnn_import_mnist('tiny');
SELECT * FROM v_import;
CREATE TABLE t(x);
CREATE TABLE log(n);
CREATE TRIGGER t_stream AFTER INSERT ON t BEGIN
  INSERT INTO log SELECT count(*) FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz');
END;
INSERT INTO t VALUES (1);
DROP TRIGGER t_stream;
CREATE TRIGGER t_import AFTER INSERT ON t BEGIN
  INSERT INTO log SELECT cnn_import_mnist('tiny');
END;
INSERT INTO t VALUES (2);
SELECT count(*) FROM t;
SELECT count(*) FROM log;
SELECT count(*) FROM sqlite_schema WHERE name IN ('mnist_train', 'mnist_test');
