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
-- a query streamed: in order without shuffling (the same weights as in memory), or
-- through a shuffle buffer (reproducible with a seed); validation read in order
SELECT cnn_create(m, '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"flatten"},{"type":"dense","units":10}]}', 4) AS created
  FROM (SELECT 'q_mem' AS m UNION ALL SELECT 'q_ord' UNION ALL SELECT 'q_buf1' UNION ALL SELECT 'q_buf2');
SELECT json_extract(cnn_train('q_mem', 'SELECT image, label FROM sub WHERE label < 8', '{"epochs":2,"seed":1,"shuffle":false,"data":"memory","validation":"SELECT image, label FROM val","augment":{"rotation":10}}'), '$.data') AS data;
SELECT json_extract(cnn_train('q_ord', 'SELECT image, label FROM sub WHERE label < 8', '{"epochs":2,"seed":1,"shuffle":false,"data":"stream","validation":"SELECT image, label FROM val","augment":{"rotation":10}}'), '$.data') AS data;
SELECT json_extract(r, '$.data') AS data, json_extract(r, '$.samples') AS samples
  FROM (SELECT cnn_train('q_buf1', 'SELECT image, label FROM sub WHERE label < 8', '{"epochs":2,"seed":1,"data":"stream","shuffle_buffer":64}') AS r);
SELECT json_extract(cnn_train('q_buf2', 'SELECT image, label FROM sub WHERE label < 8', '{"epochs":2,"seed":1,"data":"stream","shuffle_buffer":64}'), '$.data') AS data;
SELECT (SELECT group_concat(hex(data)) FROM cnn_weights WHERE model = 'q_mem') = (SELECT group_concat(hex(data)) FROM cnn_weights WHERE model = 'q_ord') AS in_order_same,
       (SELECT group_concat(val_loss) FROM cnn_epochs WHERE model = 'q_mem') = (SELECT group_concat(val_loss) FROM cnn_epochs WHERE model = 'q_ord') AS validation_same,
       (SELECT group_concat(hex(data)) FROM cnn_weights WHERE model = 'q_buf1') = (SELECT group_concat(hex(data)) FROM cnn_weights WHERE model = 'q_buf2') AS buffer_reproducible,
       (SELECT group_concat(hex(data)) FROM cnn_weights WHERE model = 'q_buf1') <> (SELECT group_concat(hex(data)) FROM cnn_weights WHERE model = 'q_ord') AS buffer_shuffles;
-- a query that gives other rows in a later epoch (it counts the saved epochs)
SELECT cnn_train('q_buf1', 'SELECT image, label FROM sub WHERE rowid <= 100 + 10 * (SELECT count(*) FROM cnn_epochs WHERE model = ''q_buf1'' AND epoch > 2)', '{"epochs":3,"data":"stream","shuffle_buffer":16}');
SELECT cnn_train('q_buf1', 'SELECT image, label FROM sub WHERE rowid <= 100 - 10 * (SELECT count(*) FROM cnn_epochs WHERE model = ''q_buf1'' AND epoch > 3)', '{"epochs":3,"data":"stream","shuffle_buffer":16}');
SELECT cnn_train('q_buf1', 'SELECT image, label FROM sub WHERE rowid <= 100 - 10 * (SELECT count(*) FROM cnn_epochs WHERE model = ''q_buf1'' AND epoch > 4)', '{"epochs":3,"data":"stream","shuffle":false}');
SELECT epochs FROM cnn_models WHERE name = 'q_buf1';
SELECT cnn_train('q_buf1', 'SELECT image, label FROM sub', '{"data":"stream"}');
SELECT cnn_train('q_buf1', 'SELECT image, label FROM sub', '{"data":"memory","shuffle_buffer":10}');
SELECT cnn_train('q_buf1', 'sub', '{"data":"stream","shuffle_buffer":10}');
SELECT cnn_train('q_buf1', 'SELECT image, label FROM sub', '{"data":"stream","shuffle_buffer":0}');
SELECT cnn_train('q_buf1', 'SELECT image, label FROM sub', '{"data":"stream","shuffle_buffer":1.5}');
SELECT cnn_train('q_buf1', 'SELECT image, label FROM sub WHERE 0', '{"data":"stream","shuffle_buffer":10}');
SELECT cnn_train('q_buf1', 'SELECT image FROM sub', '{"data":"stream","shuffle_buffer":10}');
SELECT cnn_train('q_buf1', 'SELECT image, CASE WHEN rowid = 50 THEN NULL ELSE label END FROM sub', '{"data":"stream","shuffle_buffer":10}');
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
-- a bad validation row, streamed: found when the first validation reads it,
-- with the message of the in-memory path (which finds it before training)
UPDATE bad SET image = (SELECT image FROM bad WHERE rowid = 18), label = NULL WHERE rowid = 17;
SELECT cnn_train('str', 'sub', '{"data":"memory","validation":"bad"}');
SELECT cnn_train('str', 'sub', '{"data":"stream","validation":"bad"}');
UPDATE bad SET label = 1, image = x'0102' WHERE rowid = 17;
SELECT cnn_train('str', 'sub', '{"data":"memory","validation":"bad"}');
SELECT cnn_train('str', 'sub', '{"data":"stream","validation":"bad"}');
-- nothing was saved by the failed calls
SELECT epochs FROM cnn_models WHERE name = 'str';
-- cnn_evaluate's option data: streamed and in memory give the same result
SELECT cnn_evaluate('mem', 'sub', '{"data":"stream"}') = cnn_evaluate('mem', 'sub', '{"data":"memory"}') AS same_sub,
       cnn_evaluate('mem', 'val', '{"data":"stream"}') = cnn_evaluate('mem', 'val', '{"data":"memory"}') AS same_val,
       cnn_evaluate('mem', 'aux.sub', '{"data":"stream"}') = cnn_evaluate('mem', 'sub', '{"data":"memory"}') AS same_attached,
       cnn_evaluate('mem', 'SELECT image, label FROM sub', '{"data":"stream"}') = cnn_evaluate('mem', 'sub') AS same_query,
       cnn_evaluate('mem', 'sub', NULL) = cnn_evaluate('mem', 'sub', '{"data":"auto"}') AS same_default,
       cnn_evaluate('mem', 'sub', '{}') = cnn_evaluate('mem', 'sub') AS same_empty;
SELECT json_extract(cnn_evaluate('mem', 'sub', '{"data":"stream"}'), '$.count') AS count;
SELECT cnn_evaluate('mem', 'sub', '{"data":"disk"}');
SELECT cnn_evaluate('mem', 'sub', '{"data":1}');
SELECT cnn_evaluate('mem', 'sub', '{"data":null}');
SELECT cnn_evaluate('mem', 'sub', '{"epochs":1}');
SELECT cnn_evaluate('mem', 'sub', '[]');
SELECT cnn_evaluate('mem', 'sub', '{"data":"stream"');
SELECT cnn_evaluate('mem', 'sub', x'7b7d');
SELECT cnn_evaluate('mem', 'subview', '{"data":"stream"}');
SELECT cnn_evaluate('mem', 'norowid', '{"data":"stream"}');
SELECT json_extract(cnn_evaluate('mem', 'subview', '{"data":"auto"}'), '$.count') AS view_auto;
SELECT cnn_evaluate('mem', 'no_such_table', '{"data":"stream"}');
SELECT cnn_evaluate('mem', 'empty', '{"data":"stream"}');
SELECT cnn_evaluate('mem', 'empty', '{"data":"memory"}');
SELECT cnn_evaluate('mem', 'images_only', '{"data":"stream"}');
SELECT cnn_evaluate('mem', 'bad', '{"data":"memory"}');
SELECT cnn_evaluate('mem', 'bad', '{"data":"stream"}');
UPDATE bad SET image = (SELECT image FROM bad WHERE rowid = 18), label = NULL WHERE rowid = 17;
SELECT cnn_evaluate('mem', 'bad', '{"data":"memory"}');
SELECT cnn_evaluate('mem', 'bad', '{"data":"stream"}');
