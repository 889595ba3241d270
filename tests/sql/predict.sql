-- Using a trained model: cnn_predict and cnn_predict_proba against each
-- other, cnn_predictions against the scalar calls row by row, cnn_evaluate
-- and cnn_confusion against cnn_predictions, cnn_summary, cnn_grid_png, the
-- default model and the cache after retraining. Values that depend on
-- floating point are asserted as ranges; counts and agreements exactly.

SELECT cnn_import_mnist('@DATA@');

-- A small CNN, trained deterministically (seed, one thread).
SELECT cnn_create('small', '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":8,"kernel":3,"activation":"relu"},{"type":"maxpool","size":2},{"type":"flatten"},{"type":"dense","units":10}]}', 1);
SELECT json_extract(cnn_train('small', 'SELECT image, label FROM mnist_train WHERE id < 2000',
                              '{"epochs":2,"seed":1,"threads":1}'), '$.epochs');
CREATE TEMP TABLE t AS SELECT id, image, label FROM mnist_test WHERE id < 1000;

-- cnn_predict: an integer 0..9 for every image.
SELECT count(*), min(p), max(p), count(DISTINCT typeof(p)), typeof(min(p))
  FROM (SELECT cnn_predict('small', image) AS p FROM t);

-- cnn_predict_proba: ten probabilities summing to 1, whose argmax is
-- cnn_predict's answer.
SELECT count(*) FROM t WHERE json_array_length(cnn_predict_proba('small', image)) != 10;
SELECT count(*) FROM t
 WHERE abs((SELECT sum(value) FROM json_each(cnn_predict_proba('small', t.image))) - 1) >= 1e-4;
SELECT count(*) FROM t
 WHERE cnn_predict('small', image) !=
       (SELECT key FROM json_each(cnn_predict_proba('small', t.image)) ORDER BY value DESC, key LIMIT 1);
SELECT count(*) FROM t
 WHERE (SELECT min(value) FROM json_each(cnn_predict_proba('small', t.image))) < 0;

-- The trained model is good at this (range, not digits: machines differ).
SELECT avg(cnn_predict('small', image) = label) > 0.75 FROM t;

-- cnn_predictions: one row per source row, idx 0..999 in order, labels as
-- given, the same answer as the scalar call, the probability of the predicted
-- class as cnn_predict_proba gives it.
SELECT count(*), min(idx), max(idx), count(DISTINCT idx), sum(rowid = idx)
  FROM cnn_predictions('small', 'SELECT image, label FROM t ORDER BY id');
SELECT count(*)
  FROM cnn_predictions('small', 'SELECT image, label FROM t ORDER BY id') AS p
  JOIN t ON t.id = p.idx
 WHERE p.predicted != cnn_predict('small', t.image) OR p.label != t.label
    OR abs(p.probability - json_extract(cnn_predict_proba('small', t.image),
                                        '$[' || p.predicted || ']')) > 1e-6;
SELECT group_concat(idx) FROM (SELECT idx FROM cnn_predictions('small', 't') LIMIT 5);
-- More than one batch of rows, and a table name as the source.
SELECT count(*), max(idx), sum(predicted = label) > 2000
  FROM cnn_predictions('small', 'SELECT image, label FROM mnist_test WHERE id < 3000');
-- Labels are optional: a one-column source, or NULL labels.
SELECT count(*), count(label), sum(predicted BETWEEN 0 AND 9)
  FROM cnn_predictions('small', 'SELECT image FROM t');
SELECT count(*), count(label)
  FROM cnn_predictions('small', 'SELECT image, NULL FROM t LIMIT 10');
-- No rows: no rows.
SELECT count(*) FROM cnn_predictions('small', 'SELECT image, label FROM t WHERE 0');
-- The hidden columns read back; the WHERE form is the call.
SELECT name, source FROM cnn_predictions('small', 'SELECT image FROM t') LIMIT 1;
SELECT count(*) FROM cnn_predictions WHERE name = 'small' AND source = 't';
-- In a join, the arguments may come from the outer table.
CREATE TEMP TABLE jobs(model TEXT, src TEXT);
INSERT INTO jobs VALUES ('small', 'SELECT image, label FROM t LIMIT 7'), ('small', 't');
SELECT j.src, count(*) FROM jobs AS j, cnn_predictions(j.model, j.src) GROUP BY j.src ORDER BY 2;

-- cnn_evaluate: count and accuracy equal those of cnn_predictions.
SELECT json_extract(e, '$.count'),
       abs(json_extract(e, '$.accuracy') -
           (SELECT avg(predicted = label) FROM cnn_predictions('small', 't'))) < 1e-6,
       json_extract(e, '$.loss') BETWEEN 0.01 AND 2.3,
       json_extract(e, '$.accuracy') > 0.75
  FROM (SELECT cnn_evaluate('small', 'SELECT image, label FROM t') AS e);
SELECT json_extract(cnn_evaluate('small', 't'), '$.count');

-- cnn_confusion: the pairs of cnn_predictions counted, ordered by label,
-- predicted; the counts sum to the rows and the diagonal is the correct ones.
SELECT sum(count), sum(count) FILTER (WHERE label = predicted) =
       (SELECT sum(predicted = label) FROM cnn_predictions('small', 't')),
       min(count) > 0
  FROM cnn_confusion('small', 't');
SELECT count(*) FROM (
  SELECT label, predicted, count FROM cnn_confusion('small', 't')
  EXCEPT SELECT label, predicted, count(*) FROM cnn_predictions('small', 't') GROUP BY 1, 2);
SELECT count(*) FROM (
  SELECT label, predicted, count(*) FROM cnn_predictions('small', 't') GROUP BY 1, 2
  EXCEPT SELECT label, predicted, count FROM cnn_confusion('small', 't'));
SELECT (SELECT group_concat(label || ':' || predicted || ':' || count, ' ')
          FROM cnn_confusion('small', 't')) =
       (SELECT group_concat(x, ' ') FROM (
          SELECT label || ':' || predicted || ':' || count(*) AS x
            FROM cnn_predictions('small', 't') GROUP BY label, predicted ORDER BY label, predicted));
SELECT label, predicted, count FROM cnn_confusion('small', 'SELECT image, label FROM t WHERE id < 3');

-- cnn_summary: Keras' model.summary() of the notebook's model.
SELECT cnn_create('nb');
SELECT * FROM cnn_summary('nb');
SELECT sum(params), count(*) FROM cnn_summary('nb');
SELECT * FROM cnn_summary WHERE name = 'small';
SELECT layer, params FROM cnn_summary('sm' || 'all') WHERE type = 'Dense';

-- cnn_grid_png: a PNG of 100 cells of 100x119 pixels, 10 per row (or as
-- asked); one-column sources draw no labels.
SELECT hex(substr(g, 1, 8)), hex(substr(g, 13, 12))
  FROM (SELECT cnn_grid_png('SELECT image, label FROM t LIMIT 100') AS g);
SELECT hex(substr(g, 17, 8))
  FROM (SELECT cnn_grid_png('SELECT image FROM t LIMIT 12', 5) AS g);
SELECT hex(substr(cnn_grid_png('SELECT image, label FROM t LIMIT 3', 100), 17, 8));
SELECT cnn_grid_png('SELECT image, label FROM t LIMIT 4') !=
       cnn_grid_png('SELECT image FROM t LIMIT 4');

-- The default model: the one trained last, or as set by cnn_default. Model
-- 'other' answers differently from 'small' on some rows.
SELECT cnn_default();
SELECT count(*) FROM t WHERE cnn_predict(image) != cnn_predict('small', image);
SELECT count(*) FROM t WHERE cnn_predict_proba(image) != cnn_predict_proba('small', image);
SELECT cnn_create('other', (SELECT spec FROM cnn_models WHERE name = 'small'), 2);
SELECT json_extract(cnn_train('other', 'SELECT image, label FROM mnist_train WHERE id < 500',
                              '{"epochs":1,"seed":2,"threads":1}'), '$.epochs');
SELECT cnn_default();
SELECT count(*) FROM t WHERE cnn_predict(image) != cnn_predict('other', image);
SELECT count(*) > 0 FROM t WHERE cnn_predict('other', image) != cnn_predict('small', image);
SELECT cnn_default('small');
SELECT count(*) FROM t WHERE cnn_predict(image) != cnn_predict('small', image);

-- The cache follows retraining: after more training of 'small' in this
-- connection the weights, the probabilities and cnn_predictions are new.
CREATE TEMP TABLE before AS
  SELECT cnn_export('small') AS blob, cnn_predict_proba('small', image) AS proba FROM t WHERE id = 0;
SELECT json_extract(cnn_train('small', 'SELECT image, label FROM mnist_train WHERE id BETWEEN 2000 AND 3999',
                              '{"epochs":1,"seed":3,"threads":1}'), '$.epochs');
SELECT blob != cnn_export('small'), proba != cnn_predict_proba('small', (SELECT image FROM t WHERE id = 0))
  FROM before;
SELECT count(*)
  FROM cnn_predictions('small', 'SELECT image, label FROM t ORDER BY id') AS p
  JOIN t ON t.id = p.idx
 WHERE p.predicted != cnn_predict('small', t.image);
SELECT epochs FROM cnn_models WHERE name = 'small';

-- Encoded images work like raw ones (a PNG of a test digit).
SELECT count(*) FROM t
 WHERE id < 20 AND cnn_predict('small', cnn_image_png(image)) BETWEEN 0 AND 9;
