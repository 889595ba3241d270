-- The notebook's notes (sections 5.3-5.12), answered by experiment.
--
-- Run from the repository root after the quick start (build/cnn.so exists):
--   sh sql/notes.sh [mnist.db]
-- Every experiment trains small models on a documented subset of MNIST with
-- fixed seeds (cnn_create(name, spec, 1) and the training option "seed": 1), so
-- two runs give the same weights and curves; only the seconds differ. Each
-- writes its chart into the directory notes_config.out (docs/notes) and its
-- numbers into the table notes_results(note, model, metric, value).
--
-- Sizes come from the TEMP table notes_config (key, value), filled by
-- notes.sh from NOTES_* environment variables; keys missing there take the
-- defaults below (the figures in the README):
--   rows 10000       training images (mnist_train ids 0..rows-1) for 5.3-5.9
--   test_rows 2000   validation images (mnist_test ids 0..test_rows-1)
--   epochs 5         epochs of 5.3-5.9
--   xor_rows 2000    images of the XOR problem (5.4), as many again to validate
--   xor_epochs 10
--   overfit_rows 1000   training images of 5.11/5.12
--   overfit_epochs 40
--   out docs/notes   where the charts go (notes.sh creates it)
--   data data        MNIST's directory, read when mnist_test is empty
-- The last section trains with the option "layer_stats" and draws its
-- charts with cnn_layer_stats_svg.
.bail on
.load build/cnn
.read sql/schema.sql

CREATE TEMP TABLE IF NOT EXISTS notes_config(key TEXT PRIMARY KEY, value);
INSERT OR IGNORE INTO notes_config VALUES
  ('rows', 10000), ('test_rows', 2000), ('epochs', 5),
  ('xor_rows', 2000), ('xor_epochs', 10),
  ('overfit_rows', 1000), ('overfit_epochs', 40),
  ('out', 'docs/notes'), ('data', 'data');
CREATE TEMP VIEW notes_cfg AS
  SELECT (SELECT value FROM notes_config WHERE key = 'rows') AS rows,
         (SELECT value FROM notes_config WHERE key = 'test_rows') AS test_rows,
         (SELECT value FROM notes_config WHERE key = 'epochs') AS epochs,
         (SELECT value FROM notes_config WHERE key = 'xor_rows') AS xor_rows,
         (SELECT value FROM notes_config WHERE key = 'xor_epochs') AS xor_epochs,
         (SELECT value FROM notes_config WHERE key = 'overfit_rows') AS overfit_rows,
         (SELECT value FROM notes_config WHERE key = 'overfit_epochs') AS overfit_epochs,
         (SELECT value FROM notes_config WHERE key = 'out') AS out,
         (SELECT value FROM notes_config WHERE key = 'data') AS data;

-- MNIST, unless an earlier run (or the quick start) imported it.
CREATE TABLE IF NOT EXISTS mnist_train (id INTEGER PRIMARY KEY, image BLOB NOT NULL, label INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mnist_test (id INTEGER PRIMARY KEY, image BLOB NOT NULL, label INTEGER NOT NULL);
SELECT cnn_import_mnist(data) AS imported FROM notes_cfg WHERE (SELECT count(*) FROM mnist_test) = 0;

-- The subsets every experiment reads: fixed ids, so fixed images.
DROP TABLE IF EXISTS temp.notes_train;
DROP TABLE IF EXISTS temp.notes_test;
DROP TABLE IF EXISTS temp.notes_small;
CREATE TEMP TABLE notes_train AS
  SELECT image, label FROM mnist_train WHERE id < (SELECT rows FROM notes_cfg) ORDER BY id;
CREATE TEMP TABLE notes_test AS
  SELECT image, label FROM mnist_test WHERE id < (SELECT test_rows FROM notes_cfg) ORDER BY id;
CREATE TEMP TABLE notes_small AS
  SELECT image, label FROM mnist_train WHERE id < (SELECT overfit_rows FROM notes_cfg) ORDER BY id;

-- Every model of every note; a new run starts from scratch.
CREATE TEMP TABLE notes_models(note TEXT, model TEXT PRIMARY KEY);
INSERT INTO notes_models VALUES
  ('5.3', 'note_relu'), ('5.3', 'note_sigmoid'), ('5.3', 'note_tanh'), ('5.3', 'note_elu'),
  ('5.3', 'note_gelu'), ('5.3', 'note_mish_expr'), ('5.3', 'note_relu_he'),
  ('5.4', 'note_mlp_linear'), ('5.4', 'note_mlp_relu'),
  ('5.4', 'note_xor_linear'), ('5.4', 'note_xor_relu'),
  ('5.5', 'note_sgd'), ('5.5', 'note_momentum'), ('5.5', 'note_nesterov'), ('5.5', 'note_adam'),
  ('5.5', 'note_adagrad'), ('5.5', 'note_adamax'), ('5.5', 'note_rmsprop'),
  ('5.9', 'note_nopool'),
  ('5.11', 'note_wide'), ('5.12', 'note_wide_dropout'),
  ('stats', 'note_deep_sigmoid'), ('stats', 'note_deep_relu');
CREATE TEMP TABLE notes_old AS SELECT name FROM cnn_models WHERE name IN (SELECT model FROM notes_models);
SELECT count(cnn_drop(name)) AS dropped FROM notes_old;

CREATE TABLE IF NOT EXISTS notes_results (
  note   TEXT NOT NULL,  -- the notebook's section: '5.3', '5.4', ...
  model  TEXT NOT NULL,
  metric TEXT NOT NULL,  -- accuracy, val_accuracy, val_loss (last epoch), seconds_per_epoch, params, ...
  value  REAL,
  PRIMARY KEY (note, model, metric)
);
DELETE FROM notes_results;

-- A model's numbers after training: the last epoch's accuracies and
-- losses, the mean seconds per epoch (the first epoch included: there is no
-- compilation to warm up) and the parameter count.
CREATE TEMP VIEW notes_summary AS
  SELECT m.name AS model, 'accuracy' AS metric, h.accuracy AS value
    FROM cnn_models m JOIN cnn_history h ON h.model = m.name AND h.epoch = m.epochs
  UNION ALL SELECT m.name, 'val_accuracy', h.val_accuracy
    FROM cnn_models m JOIN cnn_history h ON h.model = m.name AND h.epoch = m.epochs
  UNION ALL SELECT m.name, 'loss', h.loss
    FROM cnn_models m JOIN cnn_history h ON h.model = m.name AND h.epoch = m.epochs
  UNION ALL SELECT m.name, 'val_loss', h.val_loss
    FROM cnn_models m JOIN cnn_history h ON h.model = m.name AND h.epoch = m.epochs
  UNION ALL SELECT model, 'seconds_per_epoch', avg(seconds) FROM cnn_history GROUP BY model
  UNION ALL SELECT name, 'params', params FROM cnn_models;
CREATE TEMP VIEW notes_record AS
  SELECT n.note, s.model, s.metric, s.value
    FROM notes_summary s JOIN notes_models n ON n.model = s.model;

-- Training options shared by the MNIST experiments: Adam (the notebook's),
-- the same batches for every model.
CREATE TEMP VIEW notes_options AS
  SELECT json_object('epochs', epochs, 'seed', 1, 'validation', 'notes_test',
                     'progress', json('false')) AS options
    FROM notes_cfg;

-- Each note's pictures, written into notes_config.out when the note is done.
CREATE TEMP TABLE notes_charts(file TEXT, data);

.mode box
SELECT rows AS train_images, test_rows AS validation_images, epochs, overfit_rows,
       overfit_epochs, xor_rows, xor_epochs, out FROM notes_cfg;

-------------------------------------------------------------------------------
-- 5.3 Activation functions: the same small CNN (two conv + pool blocks, a
-- dense layer of 64, softmax output) with each activation, from the same
-- seed; Mish as a custom formula (clamped so exp cannot overflow). Then ReLU
-- with He initialisation against Keras' default Glorot.
CREATE TEMP TABLE notes_act(model TEXT, activation TEXT);
INSERT INTO notes_act VALUES
  ('note_relu', '"relu"'), ('note_sigmoid', '"sigmoid"'), ('note_tanh', '"tanh"'),
  ('note_elu', '"elu"'), ('note_gelu', '"gelu"'),
  ('note_mish_expr', '{"expr":"x*tanh(log(1+exp(min(x,20))))"}'),
  ('note_relu_he', '"relu","kernel_initializer":"he_uniform"');
CREATE TEMP VIEW notes_cnn AS SELECT
  '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":16,"kernel":3,"activation":ACT},' ||
  '{"type":"maxpool","size":2},{"type":"conv2d","filters":32,"kernel":3,"activation":ACT},' ||
  '{"type":"maxpool","size":2},{"type":"flatten"},{"type":"dense","units":64,"activation":ACT},' ||
  '{"type":"dense","units":10,"activation":"softmax"}]}' AS spec;
SELECT model, cnn_create(model, replace(spec, 'ACT', activation), 1) AS params
  FROM notes_act, notes_cnn;
SELECT model, json_extract(cnn_train(model, 'notes_train', options), '$.val_accuracy') AS val_accuracy
  FROM notes_act, notes_options;
INSERT INTO notes_results SELECT * FROM notes_record WHERE note = '5.3';
INSERT INTO notes_charts VALUES ('5.3-activations.svg',
  cnn_history_svg('["note_relu","note_sigmoid","note_tanh","note_elu","note_gelu","note_mish_expr"]',
                                 'val_accuracy'));
INSERT INTO notes_charts VALUES ('5.3-activations-loss.svg',
  cnn_history_svg('["note_relu","note_sigmoid","note_tanh","note_elu","note_gelu","note_mish_expr"]',
                                 'loss'));
INSERT INTO notes_charts VALUES ('5.3-init.svg',
  cnn_history_svg('["note_relu","note_relu_he"]', 'loss'));
SELECT file, writefile((SELECT out FROM notes_cfg) || '/' || file, data) AS bytes FROM notes_charts;
DELETE FROM notes_charts;

-------------------------------------------------------------------------------
-- 5.4 A net without activation: a dense net (784 -> 128 -> 64 -> 10) with
-- "linear" everywhere is one linear map, however deep; the same net with
-- ReLU is not. On MNIST (nearly linearly separable) and on XOR: images with
-- a square of ink in the top-left quadrant or not and one in the
-- bottom-right quadrant or not (sides 6..12 and places varying), labelled 1
-- when exactly one square is there. No linear function of the pixels
-- separates that: with scores g(A) for a square A and h(B) for B, labels 1
-- need c + g(A) > 0 and c + h(B) > 0, labels 0 need c < 0 and
-- c + g(A) + h(B) < 0, which contradict each other; of four images with the
-- same squares a linear model gets at most three right (75%).
CREATE TEMP VIEW notes_mlp AS SELECT
  '{"input":[28,28,1],"layers":[{"type":"flatten"},{"type":"dense","units":128,"activation":"ACT"},' ||
  '{"type":"dense","units":64,"activation":"ACT"},{"type":"dense","units":10,"activation":"softmax"}]}'
  AS spec;
DROP TABLE IF EXISTS temp.notes_xor;
CREATE TEMP TABLE notes_xor AS
WITH RECURSIVE
  ids(id) AS (SELECT 0 UNION ALL SELECT id + 1 FROM ids WHERE id + 1 < 2 * (SELECT xor_rows FROM notes_cfg)),
  -- a, b: is each square there; side s and top-left corner (r, c) of each.
  -- Four consecutive ids share their squares (q = id / 4) and take the four
  -- combinations of a and b, so nothing but the XOR tells the labels apart.
  sq AS (SELECT id, id / 4 AS q, id % 2 AS a, (id / 2) % 2 AS b,
                6 + (id / 4) % 7 AS sa, 6 + (id / 4 * 3 + 2) % 7 AS sb FROM ids),
  place AS (SELECT *, (q * 7919) % (15 - sa) AS ra, (q * 104729) % (15 - sa) AS ca,
                   14 + (q * 1299709) % (15 - sb) AS rb, 14 + (q * 15485863) % (15 - sb) AS cb
              FROM sq),
  -- One 28-byte image row at a time: zeros, then 0xff for the square's columns.
  img(id, r, px) AS (
    SELECT id, 0, x'' FROM place
    UNION ALL
    SELECT p.id, img.r + 1, img.px ||
      CASE WHEN p.a AND img.r >= p.ra AND img.r < p.ra + p.sa
             THEN zeroblob(p.ca) || substr(x'ffffffffffffffffffffffffffffffffffffffffffffffffffffffff', 1, p.sa) || zeroblob(28 - p.ca - p.sa)
           WHEN p.b AND img.r >= p.rb AND img.r < p.rb + p.sb
             THEN zeroblob(p.cb) || substr(x'ffffffffffffffffffffffffffffffffffffffffffffffffffffffff', 1, p.sb) || zeroblob(28 - p.cb - p.sb)
           ELSE zeroblob(28) END
      FROM img JOIN place p ON p.id = img.id WHERE img.r < 28)
SELECT img.id, CAST(img.px AS BLOB) AS image, (p.a + p.b) % 2 AS label
  FROM img JOIN place p ON p.id = img.id WHERE img.r = 28 ORDER BY img.id;
CREATE TEMP VIEW notes_xor_train AS
  SELECT image, label FROM notes_xor WHERE id < (SELECT xor_rows FROM notes_cfg) ORDER BY id;
CREATE TEMP VIEW notes_xor_test AS
  SELECT image, label FROM notes_xor WHERE id >= (SELECT xor_rows FROM notes_cfg) ORDER BY id;
-- The data checked against its pixels: the top half holds ink exactly when
-- the top-left square is there, the bottom half when the bottom-right one is.
CREATE TEMP VIEW notes_xor_check AS
  SELECT count(*) AS images, sum(label) AS label_1,
         sum(length(image) = 784 AND typeof(image) = 'blob') AS blobs_784,
         sum(label = ((instr(hex(substr(image, 1, 392)), 'FF') > 0) +
                      (instr(hex(substr(image, 393)), 'FF') > 0) = 1)) AS labels_match_pixels
    FROM notes_xor;
SELECT * FROM notes_xor_check;
INSERT INTO notes_results
  SELECT '5.4', 'xor data', 'images', images FROM notes_xor_check
  UNION ALL SELECT '5.4', 'xor data', 'label_1', label_1 FROM notes_xor_check
  UNION ALL SELECT '5.4', 'xor data', 'blobs_784', blobs_784 FROM notes_xor_check
  UNION ALL SELECT '5.4', 'xor data', 'labels_match_pixels', labels_match_pixels FROM notes_xor_check;
INSERT INTO notes_charts VALUES ('5.4-xor-images.png',
  cnn_grid_png('SELECT image, label FROM notes_xor ORDER BY id LIMIT 20', 10));

SELECT cnn_create('note_mlp_linear', replace(spec, 'ACT', 'linear'), 1) AS linear,
       cnn_create('note_mlp_relu', replace(spec, 'ACT', 'relu'), 1) AS relu,
       cnn_create('note_xor_linear', replace(spec, 'ACT', 'linear'), 1) AS xor_linear,
       cnn_create('note_xor_relu', replace(spec, 'ACT', 'relu'), 1) AS xor_relu
  FROM notes_mlp;
SELECT json_extract(cnn_train('note_mlp_linear', 'notes_train', options), '$.val_accuracy') AS linear,
       json_extract(cnn_train('note_mlp_relu', 'notes_train', options), '$.val_accuracy') AS relu
  FROM notes_options;
SELECT json_extract(cnn_train('note_xor_linear', 'SELECT * FROM notes_xor_train', o), '$.val_accuracy') AS xor_linear,
       json_extract(cnn_train('note_xor_relu', 'SELECT * FROM notes_xor_train', o), '$.val_accuracy') AS xor_relu
  FROM (SELECT json_object('epochs', xor_epochs, 'seed', 1, 'validation', 'SELECT * FROM notes_xor_test',
                           'progress', json('false')) AS o FROM notes_cfg);
INSERT INTO notes_results SELECT * FROM notes_record WHERE note = '5.4';
INSERT INTO notes_charts VALUES ('5.4-linear-mnist.svg',
  cnn_history_svg('["note_mlp_linear","note_mlp_relu"]', 'val_accuracy'));
INSERT INTO notes_charts VALUES ('5.4-linear-xor.svg',
  cnn_history_svg('["note_xor_linear","note_xor_relu"]', 'val_accuracy'));
SELECT file, writefile((SELECT out FROM notes_cfg) || '/' || file, data) AS bytes FROM notes_charts;
DELETE FROM notes_charts;

-------------------------------------------------------------------------------
-- 5.5/5.6 Optimizers: the 5.3 ReLU CNN from the same initial weights on the
-- same batches, each optimizer with Keras' defaults (SGD 0.01; momentum 0.9;
-- Adam, AdaMax, RMSProp 0.001; Adagrad 0.001).
CREATE TEMP TABLE notes_opt(model TEXT, optimizer TEXT);
INSERT INTO notes_opt VALUES
  ('note_sgd', '{"name":"sgd","learning_rate":0.01}'),
  ('note_momentum', '{"name":"sgd","learning_rate":0.01,"momentum":0.9}'),
  ('note_nesterov', '{"name":"sgd","learning_rate":0.01,"momentum":0.9,"nesterov":true}'),
  ('note_adam', '"adam"'), ('note_adagrad', '"adagrad"'), ('note_adamax', '"adamax"'),
  ('note_rmsprop', '"rmsprop"');
SELECT model, cnn_create(model, replace(spec, 'ACT', '"relu"'), 1) AS params FROM notes_opt, notes_cnn;
SELECT model, json_extract(cnn_train(model, 'notes_train',
                                     json_set(options, '$.optimizer', json(optimizer))),
                           '$.loss') AS loss
  FROM notes_opt, notes_options;
INSERT INTO notes_results SELECT * FROM notes_record WHERE note = '5.5';
INSERT INTO notes_charts VALUES ('5.5-optimizers.svg',
  cnn_history_svg('["note_sgd","note_momentum","note_nesterov","note_adam","note_adagrad","note_adamax","note_rmsprop"]',
                                 'loss'));
INSERT INTO notes_charts VALUES ('5.5-optimizers-val.svg',
  cnn_history_svg('["note_sgd","note_momentum","note_nesterov","note_adam","note_adagrad","note_adamax","note_rmsprop"]',
                                 'val_accuracy'));
SELECT file, writefile((SELECT out FROM notes_cfg) || '/' || file, data) AS bytes FROM notes_charts;
DELETE FROM notes_charts;

-------------------------------------------------------------------------------
-- 5.9 Pooling: the 5.3 ReLU CNN (note_relu) against the same layers without
-- its two max-pooling layers: the dense layer then sees 24x24x32 features
-- instead of 5x5x32.
SELECT cnn_create('note_nopool', replace(replace(spec, '{"type":"maxpool","size":2},', ''), 'ACT', '"relu"'), 1)
       AS params FROM notes_cnn;
SELECT json_extract(cnn_train('note_nopool', 'notes_train', options), '$.val_accuracy') AS val_accuracy
  FROM notes_options;
INSERT INTO notes_results SELECT * FROM notes_record WHERE note = '5.9';
INSERT INTO notes_results SELECT '5.9', model, metric, value FROM notes_summary WHERE model = 'note_relu';
-- Activations kept for the backward pass per image: the sum of every
-- layer's output size (cnn_summary's output_shape without the batch).
INSERT INTO notes_results
  SELECT '5.9', s.name, 'activations_per_image',
         (SELECT sum((SELECT round(exp(sum(ln(value)))) FROM json_each('[' || replace(substr(output_shape, 8), ')', ']'))))
            FROM cnn_summary(s.name) WHERE output_shape LIKE '(None, %')
    FROM (SELECT 'note_relu' AS name UNION ALL SELECT 'note_nopool') s;
INSERT INTO notes_charts VALUES ('5.9-pooling.svg',
  cnn_history_svg('["note_relu","note_nopool"]', 'val_accuracy'));
SELECT file, writefile((SELECT out FROM notes_cfg) || '/' || file, data) AS bytes FROM notes_charts;
DELETE FROM notes_charts;

-------------------------------------------------------------------------------
-- 5.11/5.12 Overfitting and dropout: a wide dense net (784 -> 1024 -> 1024
-- -> 10, 1.8 million parameters) on only overfit_rows images, without and
-- with dropout 0.5 after each hidden layer; validation on notes_test.
CREATE TEMP VIEW notes_wide AS SELECT
  '{"input":[28,28,1],"layers":[{"type":"flatten"},{"type":"dense","units":1024,"activation":"relu"},DROP' ||
  '{"type":"dense","units":1024,"activation":"relu"},DROP{"type":"dense","units":10,"activation":"softmax"}]}'
  AS spec;
SELECT cnn_create('note_wide', replace(spec, 'DROP', ''), 1) AS wide,
       cnn_create('note_wide_dropout', replace(spec, 'DROP', '{"type":"dropout","rate":0.5},'), 1) AS dropout
  FROM notes_wide;
SELECT json_extract(cnn_train('note_wide', 'notes_small', o), '$.val_accuracy') AS wide,
       json_extract(cnn_train('note_wide_dropout', 'notes_small', o), '$.val_accuracy') AS dropout
  FROM (SELECT json_object('epochs', overfit_epochs, 'seed', 1, 'validation', 'notes_test',
                           'progress', json('false')) AS o FROM notes_cfg);
INSERT INTO notes_results SELECT * FROM notes_record WHERE note IN ('5.11', '5.12');
-- Where overfitting shows: the epoch of the lowest validation loss, and the
-- gap between training and validation accuracy at the end.
INSERT INTO notes_results
  SELECT n.note, h.name, 'best_val_loss_epoch',
         (SELECT epoch FROM cnn_history(h.name) ORDER BY val_loss LIMIT 1)
    FROM notes_models n JOIN cnn_models h ON h.name = n.model WHERE n.note IN ('5.11', '5.12');
INSERT INTO notes_results
  SELECT n.note, h.name, 'accuracy_gap',
         (SELECT accuracy - val_accuracy FROM cnn_history(h.name) ORDER BY epoch DESC LIMIT 1)
    FROM notes_models n JOIN cnn_models h ON h.name = n.model WHERE n.note IN ('5.11', '5.12');
INSERT INTO notes_charts VALUES ('5.11-overfitting.svg',
  cnn_history_svg('note_wide'));
INSERT INTO notes_charts VALUES ('5.12-dropout.svg',
  cnn_history_svg('note_wide_dropout'));
INSERT INTO notes_charts VALUES ('5.12-val-loss.svg',
  cnn_history_svg('["note_wide","note_wide_dropout"]', 'val_loss'));
SELECT file, writefile((SELECT out FROM notes_cfg) || '/' || file, data) AS bytes FROM notes_charts;
DELETE FROM notes_charts;

-------------------------------------------------------------------------------
-- The numbers, one row per model.
SELECT note, model,
       round(max(value) FILTER (WHERE metric = 'accuracy'), 4) AS accuracy,
       round(max(value) FILTER (WHERE metric = 'val_accuracy'), 4) AS val_accuracy,
       round(max(value) FILTER (WHERE metric = 'val_loss'), 4) AS val_loss,
       round(max(value) FILTER (WHERE metric = 'seconds_per_epoch'), 2) AS s_per_epoch,
       CAST(max(value) FILTER (WHERE metric = 'params') AS INTEGER) AS params
  FROM notes_results GROUP BY note, model ORDER BY min(rowid);

-- layer statistics ------------------------------------------------------------
-- 5.3, where gradients vanish: a deep dense net (six hidden layers of 64)
-- with sigmoid against the same with ReLU, trained with the training option
-- "layer_stats": per epoch and layer, the mean absolute weight gradient, the
-- weight norm, the update-to-weight ratio and the share of activations that
-- are exactly zero. With sigmoid the gradient shrinks layer by layer towards
-- the input (sigmoid' <= 1/4); with ReLU it does not, and the zero fraction
-- shows how many units are switched off.
CREATE TEMP VIEW notes_deep AS SELECT
  '{"input":[28,28,1],"layers":[{"type":"flatten"},' ||
  '{"type":"dense","units":64,"activation":"ACT"},{"type":"dense","units":64,"activation":"ACT"},' ||
  '{"type":"dense","units":64,"activation":"ACT"},{"type":"dense","units":64,"activation":"ACT"},' ||
  '{"type":"dense","units":64,"activation":"ACT"},{"type":"dense","units":64,"activation":"ACT"},' ||
  '{"type":"dense","units":10,"activation":"softmax"}]}' AS spec;
SELECT cnn_create('note_deep_sigmoid', replace(spec, 'ACT', 'sigmoid'), 1) AS sigmoid,
       cnn_create('note_deep_relu', replace(spec, 'ACT', 'relu'), 1) AS relu
  FROM notes_deep;
SELECT json_extract(cnn_train('note_deep_sigmoid', 'notes_train', o), '$.val_accuracy') AS sigmoid,
       json_extract(cnn_train('note_deep_relu', 'notes_train', o), '$.val_accuracy') AS relu
  FROM (SELECT json_set(options, '$.layer_stats', json('true')) AS o FROM notes_options);
INSERT INTO notes_results SELECT * FROM notes_record WHERE note = 'stats';
INSERT INTO notes_results
  SELECT 'stats', model, 'grad_mean_abs_layer_' || layer, grad_mean_abs
    FROM cnn_layer_stats WHERE model IN ('note_deep_sigmoid', 'note_deep_relu')
     AND epoch = 1 AND grad_mean_abs IS NOT NULL;
INSERT INTO notes_results
  SELECT 'stats', model, 'zero_fraction_layer_' || layer, zero_fraction
    FROM cnn_layer_stats WHERE model IN ('note_deep_sigmoid', 'note_deep_relu')
     AND epoch = 1 AND zero_fraction IS NOT NULL;
SELECT model, layer, name, round(grad_mean_abs, 6) AS grad_mean_abs,
       round(update_ratio, 6) AS update_ratio, round(zero_fraction, 3) AS zero_fraction
  FROM cnn_layer_stats WHERE model IN ('note_deep_sigmoid', 'note_deep_relu') AND epoch = 1
 ORDER BY model, layer;
-- layer statistics: charts, a line per layer
INSERT INTO notes_charts VALUES ('5.3-gradients-sigmoid.svg',
  cnn_layer_stats_svg('note_deep_sigmoid', 'grad_mean_abs'));
INSERT INTO notes_charts VALUES ('5.3-gradients-relu.svg',
  cnn_layer_stats_svg('note_deep_relu', 'grad_mean_abs'));
SELECT file, writefile((SELECT out FROM notes_cfg) || '/' || file, data) AS bytes FROM notes_charts;
DELETE FROM notes_charts;
