-- The layers batchnorm, globalavgpool and activation through SQL: a
-- Conv -> BN -> ReLU model is created, summarised as Keras does, trained a
-- little, exported and imported bit for bit, and predicts; the moving
-- statistics are weights with Keras' names that the optimizer never gets;
-- every bad option is refused with its exact message.
.headers on
CREATE TABLE digits AS SELECT idx AS id, image, label
  FROM cnn_mnist('@DATA@/train-images-idx3-ubyte.gz', '@DATA@/train-labels-idx1-ubyte.gz') WHERE idx < 2000;
CREATE TABLE tests AS SELECT idx AS id, image, label
  FROM cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz', '@DATA@/t10k-labels-idx1-ubyte.gz') WHERE idx < 500;
SELECT cnn_create('bn', '{"input":[28,28,1],"layers":[
  {"type":"conv2d","filters":16,"kernel":3,"use_bias":false},{"type":"batchnorm","momentum":0.5},{"type":"activation","activation":"relu"},
  {"type":"maxpool"},
  {"type":"conv2d","filters":32,"kernel":3,"use_bias":false},{"type":"batch_normalization","momentum":0.9},{"type":"activation","activation":"relu"},
  {"type":"global_average_pooling2d"},{"type":"dense","units":10}]}', 1) AS params;
SELECT * FROM cnn_summary('bn');
SELECT sum(params) AS total FROM cnn_summary('bn');
SELECT params FROM cnn_models WHERE name = 'bn';
SELECT idx, name, shape, length(data) AS bytes FROM cnn_weights WHERE model = 'bn' ORDER BY idx;
SELECT json_extract(spec, '$.layers[1]') AS canonical FROM cnn_models WHERE name = 'bn';
-- initial values: gamma 1, beta 0, moving mean 0, moving variance 1
SELECT name, hex(substr(data, 1, 4)) AS first FROM cnn_weights WHERE model = 'bn' AND name LIKE 'batch_normalization/%' ORDER BY idx;
CREATE TABLE before AS SELECT idx, data FROM cnn_weights WHERE model = 'bn';
-- (a low momentum: over 126 steps, Keras' 0.99 would leave the moving
-- statistics near their start, and inference far from training). Two short
-- epochs reach 0.50-0.55 on the test rows, the level a run ends at depending
-- on the arithmetic (baseline rounds otherwise than FMA): the bar is 0.4.
SELECT json_extract(r, '$.epochs') AS epochs, json_extract(r, '$.accuracy') > 0.5 AS learned,
       json_extract(r, '$.val_accuracy') > 0.4 AS generalises
  FROM (SELECT cnn_train('bn', 'SELECT image, label FROM digits',
                         '{"epochs":2,"seed":1,"learning_rate":0.01,"validation":"SELECT image, label FROM tests"}') AS r);
SELECT epoch, round(accuracy, 2) > 0.3 AS better_than_chance FROM cnn_history('bn');
-- training moved gamma, beta and both moving statistics
SELECT w.name, w.data <> b.data AS changed FROM cnn_weights w JOIN before b USING (idx)
  WHERE w.model = 'bn' AND w.name LIKE 'batch_normalization%' ORDER BY w.idx;
-- optimizer state for the trainable tensors only, under their tensor's idx
SELECT slot, group_concat(idx || ':' || name, ' ') AS tensors FROM
  (SELECT s.slot, s.idx, w.name FROM cnn_optimizer_state s JOIN cnn_weights w ON w.model = s.model AND w.idx = s.idx
    WHERE s.model = 'bn' ORDER BY s.slot, s.idx) GROUP BY slot;
-- export / import, bit for bit, and the same predictions
SELECT cnn_import('bn2', cnn_export('bn')) AS params;
SELECT count(*) AS same FROM cnn_weights a JOIN cnn_weights b ON a.idx = b.idx AND a.data = b.data
  WHERE a.model = 'bn' AND b.model = 'bn2';
SELECT cnn_export('bn') = cnn_export('bn2') AS identical_blobs;
SELECT count(*) AS agree FROM tests WHERE cnn_predict('bn', image) = cnn_predict('bn2', image);
SELECT json_extract(cnn_evaluate('bn', 'tests'), '$.accuracy') > 0.4 AS accurate;
SELECT count(*) AS rows, sum(predicted = label) > 200 AS mostly_right FROM cnn_predictions('bn', 'tests');
-- a second epoch continues from the stored optimizer state
SELECT json_extract(cnn_train('bn', 'SELECT image, label FROM digits', '{"epochs":1,"seed":2}'), '$.epochs') AS epochs;
SELECT epochs, step FROM cnn_models WHERE name = 'bn';
-- with linear layers and dropout in the mix
SELECT cnn_create('mlp', '{"input":[28,28,1],"layers":[{"type":"flatten"},{"type":"dense","units":64,"use_bias":false},
  {"type":"batchnorm","center":false,"epsilon":0.0001},{"type":"dropout","rate":0.2},{"type":"activation","activation":"linear"},
  {"type":"dense","units":32},{"type":"batchnorm","scale":false},{"type":"activation","activation":"tanh"},{"type":"dense","units":10}]}', 2) AS params;
SELECT layer, type, output_shape, params FROM cnn_summary('mlp');
SELECT json_extract(spec, '$.layers[6]') AS defaults, json_extract(spec, '$.layers[4]') AS linear
  FROM cnn_models WHERE name = 'mlp';
SELECT json_extract(r, '$.accuracy') > 0.6 AS learned, json_extract(r, '$.val_accuracy') > 0.6 AS generalises
  FROM (SELECT cnn_train('mlp', 'digits', '{"epochs":2,"seed":3,"validation":"tests"}') AS r);
SELECT cnn_import('mlp2', cnn_export('mlp')) AS params;
SELECT cnn_export('mlp') = cnn_export('mlp2') AS identical_blobs;
-- a negative moving variance in the table is refused, not turned into NaN
UPDATE cnn_weights SET data = x'000080bf000080bf000080bf000080bf000080bf000080bf000080bf000080bf000080bf000080bf000080bf000080bf000080bf000080bf000080bf000080bf' WHERE model = 'bn2' AND name = 'batch_normalization/moving_variance';
SELECT cnn_predict('bn2', image) FROM tests WHERE id = 0;
-- bad options
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","momentum":1},{"type":"flatten"},{"type":"dense","units":10}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","momentum":-0.1}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","momentum":"high"}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","epsilon":0}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","epsilon":1e7}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","epsilon":[0.1]}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","center":1}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","scale":null}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","axis":-1}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnorm","activation":"relu"}]}');
SELECT cnn_create('x', '{"layers":[{"type":"globalavgpool","keepdims":true}]}');
SELECT cnn_create('x', '{"layers":[{"type":"globalavgpool"}]}');
SELECT cnn_create('x', '{"layers":[{"type":"conv2d","filters":1,"kernel":3},{"type":"activation"}]}');
SELECT cnn_create('x', '{"layers":[{"type":"activation","activation":"relu6"}]}');
SELECT cnn_create('x', '{"layers":[{"type":"activation","activation":7}]}');
SELECT cnn_create('x', '{"layers":[{"type":"activation","activation":"relu","rate":0.5}]}');
SELECT cnn_create('x', '{"layers":[{"type":"batchnormalization"}]}');
SELECT name FROM cnn_models ORDER BY name;
