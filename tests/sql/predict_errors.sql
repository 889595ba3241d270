-- Every bad input to the functions that use a model is an SQL error with an
-- exact message naming the function and the argument; the functions that run
-- a caller's SQL source cannot run from views or triggers.

-- No model at all yet: the default model, and every function by name.
SELECT cnn_predict(zeroblob(784));
SELECT cnn_predict_proba(zeroblob(784));
SELECT cnn_predict('nope', zeroblob(784));
SELECT cnn_evaluate('nope', 'SELECT zeroblob(784), 1');
SELECT count(*) FROM cnn_predictions('nope', 'SELECT zeroblob(784)');
SELECT count(*) FROM cnn_summary('nope');
SELECT cnn_history_svg('nope');
-- The history of a database without models is empty, not an error.
SELECT count(*) FROM cnn_history;
SELECT count(*) FROM cnn_history('nope');

SELECT cnn_create('small', '{"input":[28,28,1],"layers":[{"type":"flatten"},{"type":"dense","units":10}]}', 1);
CREATE TABLE t(image BLOB, label INTEGER);
INSERT INTO t VALUES (zeroblob(784), 1), (randomblob(784), 2), (zeroblob(784), 3);

-- Names: NULL, wrong type, empty, too long, unknown.
SELECT cnn_predict(NULL, zeroblob(784));
SELECT cnn_predict(7, zeroblob(784));
SELECT cnn_predict('', zeroblob(784));
SELECT cnn_predict(printf('%.201c', 'x'), zeroblob(784));
SELECT cnn_predict('nope', zeroblob(784));
SELECT cnn_predict_proba(x'00', zeroblob(784));

-- Images: NULL, wrong types, wrong sizes, corrupt or blank encoded images.
SELECT cnn_predict('small', NULL);
SELECT cnn_predict('small', 42);
SELECT cnn_predict('small', 4.5);
SELECT cnn_predict('small', 'seven');
SELECT cnn_predict('small', x'0102');
SELECT cnn_predict('small', zeroblob(783));
SELECT cnn_predict('small', zeroblob(785));
SELECT cnn_predict('small', x'89504E470D0A1A0A00000000');
SELECT cnn_predict('small', substr(cnn_image_png(randomblob(784)), 1, 60));
SELECT cnn_predict('small', cnn_image_png(zeroblob(784)));
SELECT cnn_predict_proba('small', NULL);
SELECT cnn_predict_proba('small', x'0102');
SELECT cnn_predict(NULL);
SELECT cnn_predict(x'0102');
-- The same images are fine when right.
SELECT cnn_predict('small', zeroblob(784)) BETWEEN 0 AND 9, json_array_length(cnn_predict_proba(zeroblob(784)));

-- A model whose input is not MNIST's takes raw blobs of its own size.
SELECT cnn_create('rgb', '{"input":[8,8,3],"layers":[{"type":"flatten"},{"type":"dense","units":4}]}', 1);
SELECT cnn_predict('rgb', zeroblob(192)) BETWEEN 0 AND 3, json_array_length(cnn_predict_proba('rgb', zeroblob(192)));
SELECT cnn_predict('rgb', zeroblob(784));
SELECT cnn_predict('rgb', 'x');
SELECT count(*) FROM cnn_predictions('rgb', 'SELECT zeroblob(192) UNION ALL SELECT zeroblob(191)');

-- cnn_evaluate: arguments and sources.
SELECT cnn_evaluate(NULL, 't');
SELECT cnn_evaluate('small', NULL);
SELECT cnn_evaluate('small', 3);
SELECT cnn_evaluate('small', '');
SELECT cnn_evaluate('small', 'DELETE FROM t');
SELECT cnn_evaluate('small', 'INSERT INTO t VALUES (zeroblob(784), 1) RETURNING image, label');
SELECT cnn_evaluate('small', 'SELEC image, label FROM t');
SELECT cnn_evaluate('small', 'missing_table');
SELECT cnn_evaluate('small', 'SELECT image, label FROM missing_table');
SELECT cnn_evaluate('small', 'SELECT image, label FROM t; SELECT 1');
SELECT cnn_evaluate('small', 'SELECT image FROM t');
SELECT cnn_evaluate('small', 'SELECT image, label FROM t WHERE 0');
SELECT cnn_evaluate('small', 'SELECT image, 10 FROM t');
SELECT cnn_evaluate('small', 'SELECT image, -1 FROM t');
SELECT cnn_evaluate('small', 'SELECT image, 1.5 FROM t');
SELECT cnn_evaluate('small', 'SELECT image, ''one'' FROM t');
SELECT cnn_evaluate('small', 'SELECT image, NULL FROM t');
SELECT cnn_evaluate('small', 'SELECT CASE WHEN label = 3 THEN x''01'' ELSE image END, label FROM t');
SELECT cnn_evaluate('small', 'SELECT image, label FROM t WHERE abs(-9223372036854775807 - label)');
-- Nothing was written by the refused statements.
SELECT count(*) FROM t;

-- cnn_predictions: missing arguments, bad arguments, bad rows (also beyond
-- the first batch of rows).
SELECT count(*) FROM cnn_predictions;
SELECT count(*) FROM cnn_predictions('small');
SELECT count(*) FROM cnn_predictions WHERE source = 't';
SELECT count(*) FROM cnn_predictions(NULL, 't');
SELECT count(*) FROM cnn_predictions('small', NULL);
SELECT count(*) FROM cnn_predictions('small', 'DELETE FROM t');
SELECT count(*) FROM cnn_predictions('small', 'SELEC 1');
SELECT count(*) FROM cnn_predictions('small', 'missing_table');
SELECT count(*) FROM cnn_predictions('small', 'SELECT image, 10 FROM t');
SELECT count(*) FROM cnn_predictions('small', 'SELECT image, label FROM t WHERE abs(-9223372036854775807 - label)');
SELECT count(*) FROM cnn_predictions('small',
  'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
   SELECT CASE WHEN i = 300 THEN x''0102'' ELSE zeroblob(784) END, i % 10 FROM n');
SELECT idx FROM cnn_predictions('small', 'SELECT CASE WHEN label = 3 THEN 7 ELSE image END FROM t');
SELECT count(*) FROM cnn_predictions('small', 't', 'extra');

-- cnn_confusion: labels are required.
SELECT count(*) FROM cnn_confusion;
SELECT count(*) FROM cnn_confusion('small');
SELECT count(*) FROM cnn_confusion('nope', 't');
SELECT count(*) FROM cnn_confusion('small', 'SELECT image FROM t');
SELECT count(*) FROM cnn_confusion('small', 'SELECT image, NULL FROM t');
SELECT count(*) FROM cnn_confusion('small', 'SELECT image, 10 FROM t');
SELECT count(*) FROM cnn_confusion('small', 'SELECT image, label FROM t WHERE 0');

-- cnn_summary and cnn_history.
SELECT count(*) FROM cnn_summary;
SELECT count(*) FROM cnn_summary(NULL);
SELECT count(*) FROM cnn_summary('');
SELECT count(*) FROM cnn_history(NULL);
SELECT count(*) FROM cnn_history(3);
SELECT count(*) FROM cnn_history('small');
SELECT cnn_history_svg('small');
SELECT cnn_history_svg(NULL);

-- cnn_grid_png: source and columns.
SELECT cnn_grid_png(NULL);
SELECT cnn_grid_png(42);
SELECT cnn_grid_png('t', 0);
SELECT cnn_grid_png('t', 101);
SELECT cnn_grid_png('t', 2.5);
SELECT cnn_grid_png('t', '10');
SELECT cnn_grid_png('DELETE FROM t');
SELECT cnn_grid_png('SELECT image FROM t WHERE 0');
SELECT cnn_grid_png('SELECT image, label + 8 FROM t');
SELECT cnn_grid_png('SELECT x''00'' FROM t');
SELECT cnn_grid_png('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10001)
                     SELECT zeroblob(784) FROM n');
SELECT cnn_grid_png('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
                     SELECT zeroblob(784) FROM n');
SELECT length(cnn_grid_png('t', NULL)) > 0;

-- Not from views or triggers: whatever runs a source (SQLITE_DIRECTONLY).
CREATE VIEW v_evaluate AS SELECT cnn_evaluate('small', 't') AS e;
SELECT * FROM v_evaluate;
CREATE VIEW v_predictions AS SELECT count(*) FROM cnn_predictions('small', 't');
SELECT * FROM v_predictions;
CREATE VIEW v_confusion AS SELECT count(*) FROM cnn_confusion('small', 't');
SELECT * FROM v_confusion;
CREATE VIEW v_grid AS SELECT cnn_grid_png('t') AS g;
SELECT * FROM v_grid;
CREATE TABLE log(x);
CREATE TRIGGER t_evaluate AFTER INSERT ON log BEGIN
  SELECT cnn_evaluate('small', 't');
END;
INSERT INTO log VALUES (1);
SELECT count(*) FROM log;
-- Reading a model is allowed there.
CREATE VIEW v_predict AS SELECT cnn_predict('small', image) BETWEEN 0 AND 9 AS ok FROM t;
SELECT sum(ok) FROM v_predict;
CREATE VIEW v_summary AS SELECT count(*) FROM cnn_summary('small');
SELECT * FROM v_summary;
CREATE VIEW v_history AS SELECT count(*) FROM cnn_history;
SELECT * FROM v_history;

-- Hand-edited weights are checked when the model is read: an extra tensor
-- row, a missing one, a wrong size, a NaN; putting the row back restores it.
INSERT INTO cnn_weights VALUES ('small', 2, 'extra', '[1]', x'00000000');
SELECT cnn_predict('small', zeroblob(784));
DELETE FROM cnn_weights WHERE model = 'small' AND idx = 2;
CREATE TABLE saved AS SELECT * FROM cnn_weights WHERE model = 'small' AND idx = 0;
DELETE FROM cnn_weights WHERE model = 'small' AND idx = 0;
SELECT cnn_predict('small', zeroblob(784));
INSERT INTO cnn_weights SELECT model, idx, name, shape, substr(data, 5) FROM saved;
SELECT cnn_predict('small', zeroblob(784));
UPDATE cnn_weights SET data = x'0000c07f' || data WHERE model = 'small' AND idx = 0;
SELECT cnn_predict('small', zeroblob(784));
DELETE FROM cnn_weights WHERE model = 'small' AND idx = 0;
INSERT INTO cnn_weights SELECT * FROM saved;
SELECT cnn_predict('small', zeroblob(784)) BETWEEN 0 AND 9;
