-- The training option data: a table streamed batch by batch gives the same
-- weights, optimizer state and history as the same table in memory; every
-- value of the option is checked; bad rows get the in-memory messages.
.headers on
SELECT cnn_import_mnist('@DATA@') AS imported;
CREATE TABLE sub AS SELECT image, label FROM mnist_train WHERE id <= 600;
-- rowid gaps do not matter: rows are numbered in rowid order
DELETE FROM sub WHERE rowid % 7 = 3;
CREATE TABLE val AS SELECT image, label FROM mnist_test WHERE id <= 200;
SELECT cnn_create(m, '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"flatten"},{"type":"dropout","rate":0.1},{"type":"dense","units":10}]}', 1) AS created
  FROM (SELECT 'mem' AS m UNION ALL SELECT 'str' UNION ALL SELECT 'tmp' UNION ALL SELECT 'aux');
SELECT json_extract(r, '$.data') AS data, json_extract(r, '$.samples') AS samples
  FROM (SELECT cnn_train('mem', 'sub', '{"epochs":2,"seed":5,"data":"memory","validation":"val","augment":{"rotation":10,"noise":0.05}}') AS r);
SELECT json_extract(r, '$.data') AS data, json_extract(r, '$.samples') AS samples
  FROM (SELECT cnn_train('str', 'sub', '{"epochs":2,"seed":5,"data":"stream","validation":"val","augment":{"rotation":10,"noise":0.05}}') AS r);
-- a temporary table and an attached in-memory database: read through the caller's connection
CREATE TEMP TABLE sub AS SELECT * FROM main.sub;
ATTACH ':memory:' AS aux;
CREATE TABLE aux.sub AS SELECT * FROM main.sub;
SELECT json_extract(cnn_train('tmp', 'sub', '{"epochs":2,"seed":5,"data":"stream","validation":"val","augment":{"rotation":10,"noise":0.05}}'), '$.data') AS temp_data;
SELECT json_extract(cnn_train('aux', 'aux.sub', '{"epochs":2,"seed":5,"data":"stream","validation":"val","augment":{"rotation":10,"noise":0.05}}'), '$.data') AS aux_data;
SELECT b.model, count(*) AS tensors, sum(a.data = b.data) AS identical
  FROM cnn_weights a JOIN cnn_weights b USING (idx) WHERE a.model = 'mem' AND b.model <> 'mem'
  GROUP BY b.model ORDER BY b.model;
SELECT b.model, count(*) AS slots, sum(a.data = b.data) AS identical
  FROM cnn_optimizer_state a JOIN cnn_optimizer_state b USING (idx, slot) WHERE a.model = 'mem' AND b.model <> 'mem'
  GROUP BY b.model ORDER BY b.model;
SELECT b.model, sum(a.loss = b.loss AND a.accuracy = b.accuracy AND a.val_loss = b.val_loss) AS same_epochs
  FROM cnn_epochs a JOIN cnn_epochs b USING (epoch) WHERE a.model = 'mem' AND b.model <> 'mem'
  GROUP BY b.model ORDER BY b.model;
DROP TABLE temp.sub;
-- early stopping, the restored epoch and the time budget: as in memory
SELECT cnn_create(m, '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"flatten"},{"type":"dense","units":10}]}', 2) AS created
  FROM (SELECT 'es_mem' AS m UNION ALL SELECT 'es_str');
SELECT json_remove(cnn_train('es_mem', 'sub', '{"epochs":30,"seed":3,"learning_rate":0.05,"data":"memory","validation":"val","early_stopping":{"patience":1}}'), '$.seconds', '$.data', '$.model')
     = json_remove(cnn_train('es_str', 'sub', '{"epochs":30,"seed":3,"learning_rate":0.05,"data":"stream","validation":"val","early_stopping":{"patience":1}}'), '$.seconds', '$.data', '$.model') AS same_result;
SELECT json_extract(cnn_train('es_str', 'sub', '{"epochs":30,"seed":3,"data":"stream","early_stopping":{"patience":1}}'), '$.stopped') AS stopped;
SELECT (SELECT count(*) FROM cnn_epochs WHERE model = 'es_mem') < 30 AS stopped_early,
       (SELECT group_concat(loss) FROM cnn_epochs WHERE model = 'es_mem' AND epoch <= 3) =
       (SELECT group_concat(loss) FROM cnn_epochs WHERE model = 'es_str' AND epoch <= 3) AS same_history;
SELECT json_extract(cnn_train('es_str', 'sub', '{"epochs":1000,"data":"stream","max_seconds":0.2}'), '$.stopped') AS budget;
-- automatic: a small table is read into memory
SELECT json_extract(cnn_train('str', 'sub', '{"epochs":1}'), '$.data') AS auto_small;
SELECT json_extract(cnn_train('str', 'sub', '{"epochs":1,"data":"auto"}'), '$.data') AS auto_named;
SELECT json_extract(cnn_train('str', 'SELECT image, label FROM sub', '{"epochs":1}'), '$.data') AS auto_query;
-- bad values of the option
SELECT cnn_train('str', 'sub', '{"data":"disk"}');
SELECT cnn_train('str', 'sub', '{"data":1}');
SELECT cnn_train('str', 'sub', '{"data":null}');
-- what cannot be streamed
CREATE VIEW subview AS SELECT * FROM sub;
CREATE TABLE norowid (id INTEGER PRIMARY KEY, image BLOB, label INTEGER) WITHOUT ROWID;
INSERT INTO norowid SELECT rowid, image, label FROM sub;
CREATE TABLE empty (image BLOB, label INTEGER);
CREATE TABLE images_only AS SELECT image FROM sub;
SELECT cnn_train('str', 'SELECT image, label FROM sub', '{"data":"stream"}');
SELECT cnn_train('str', 'subview', '{"data":"stream"}');
SELECT cnn_train('str', 'norowid', '{"data":"stream"}');
SELECT cnn_train('str', 'no_such_table', '{"data":"stream"}');
SELECT cnn_train('str', 'empty', '{"data":"stream"}');
SELECT cnn_train('str', 'images_only', '{"data":"memory"}');
SELECT cnn_train('str', 'images_only', '{"data":"stream"}');
SELECT cnn_train('str', 'sub', '{"data":"stream","validation":"subview"}');
SELECT cnn_train('str', 'sub', '{"data":"stream","validation":"empty"}');
-- bad rows: the messages of the in-memory path
CREATE TABLE bad AS SELECT image, label FROM sub;
UPDATE bad SET label = NULL WHERE rowid = 17;
SELECT cnn_train('str', 'bad', '{"data":"memory"}');
SELECT cnn_train('str', 'bad', '{"data":"stream"}');
UPDATE bad SET label = 12 WHERE rowid = 17;
SELECT cnn_train('str', 'bad', '{"data":"memory"}');
SELECT cnn_train('str', 'bad', '{"data":"stream"}');
UPDATE bad SET label = 1, image = x'0102' WHERE rowid = 17;
SELECT cnn_train('str', 'bad', '{"data":"memory"}');
SELECT cnn_train('str', 'bad', '{"data":"stream"}');
-- nothing was saved by the failed calls
SELECT epochs FROM cnn_models WHERE name = 'str';
