-- cnn_export_onnx: the blob's ONNX framing for a known model, and every bad
-- argument as an SQL error naming the function and the argument.

-- Unknown model, before and after any model exists.
SELECT cnn_export_onnx('nope');
SELECT cnn_create('small', '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":2,"kernel":3,"padding":"same","activation":{"expr":"max(x,0.1*x)"}},{"type":"flatten"},{"type":"dense","units":10,"activation":"softmax"}]}', 1);
SELECT cnn_export_onnx('nope');

-- Names: NULL, wrong types, empty, too long.
SELECT cnn_export_onnx(NULL);
SELECT cnn_export_onnx(7);
SELECT cnn_export_onnx(1.5);
SELECT cnn_export_onnx(x'00');
SELECT cnn_export_onnx('');
SELECT cnn_export_onnx(printf('%.201c', 'x'));

-- A model: a protobuf ModelProto whose first field is ir_version 7 (field 1,
-- varint: 08 07), naming its producer, input, outputs and weights.
SELECT hex(substr(cnn_export_onnx('small'), 1, 2));
SELECT instr(cnn_export_onnx('small'), CAST('sqlite-cnn' AS BLOB)) > 0,
       instr(cnn_export_onnx('small'), CAST('probabilities' AS BLOB)) > 0,
       instr(cnn_export_onnx('small'), CAST('logits' AS BLOB)) > 0,
       instr(cnn_export_onnx('small'), CAST('conv2d/kernel' AS BLOB)) > 0,
       instr(cnn_export_onnx('small'), CAST('dense/bias' AS BLOB)) > 0;
-- The same weights give the same bytes; training changes them.
SELECT cnn_export_onnx('small') = cnn_export_onnx('small');
CREATE TABLE t(image BLOB, label INTEGER);
INSERT INTO t VALUES (randomblob(784), 1), (randomblob(784), 2);
CREATE TEMP TABLE before AS SELECT cnn_export_onnx('small') AS b;
SELECT json_extract(cnn_train('small', 't', '{"epochs":1,"seed":1}'), '$.epochs_run');
SELECT cnn_export_onnx('small') <> b FROM before;

-- Model readers may run from views (not direct-only); a dropped model is gone.
CREATE VIEW v AS SELECT length(cnn_export_onnx('small')) > 1000 AS big;
SELECT big FROM v;
SELECT cnn_drop('small');
SELECT cnn_export_onnx('small');
