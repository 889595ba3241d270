-- cnn_history (one row per committed epoch, both filter forms, ordered by
-- model and epoch, exactly the cnn_epochs table) and cnn_history_svg.

-- Before any model: empty, not an error.
SELECT count(*) FROM cnn_history;

SELECT cnn_import_mnist('@DATA@');
SELECT cnn_create('small', '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":8,"kernel":3,"activation":"relu"},{"type":"maxpool","size":2},{"type":"flatten"},{"type":"dense","units":10}]}', 1);
-- Created but not trained: no history yet.
SELECT count(*) FROM cnn_history('small');
SELECT json_extract(cnn_train('small', 'SELECT image, label FROM mnist_train WHERE id < 2000',
                              '{"epochs":2,"seed":1,"threads":1,
                                "validation":"SELECT image, label FROM mnist_test WHERE id < 500"}'),
                    '$.epochs');

-- Two epochs with every column filled in (values as ranges).
SELECT model, epoch, samples, loss > 0, accuracy BETWEEN 0.3 AND 1, val_loss > 0,
       val_accuracy BETWEEN 0.3 AND 1, learning_rate, seconds > 0
  FROM cnn_history WHERE model = 'small';
SELECT typeof(model), typeof(epoch), typeof(loss), typeof(accuracy), typeof(val_loss),
       typeof(val_accuracy), typeof(learning_rate), typeof(seconds), typeof(samples)
  FROM cnn_history('small') LIMIT 1;
-- Training improved on the first epoch.
SELECT (SELECT loss FROM cnn_history('small') WHERE epoch = 2) <
       (SELECT loss FROM cnn_history('small') WHERE epoch = 1);

-- Both forms, and the hidden column, give the same rows: those of cnn_epochs.
SELECT count(*) FROM (SELECT * FROM cnn_history('small') EXCEPT SELECT * FROM cnn_history WHERE model = 'small');
SELECT count(*) FROM (SELECT * FROM cnn_history WHERE name = 'small' EXCEPT SELECT * FROM cnn_history('small'));
SELECT count(*) FROM (
  SELECT model, epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, seconds, samples FROM cnn_epochs
  EXCEPT SELECT * FROM cnn_history);
SELECT name FROM cnn_history('small') LIMIT 1;

-- A second model without validation: val_* are NULL; rows are ordered by
-- model, then epoch, and the filters pick one model.
SELECT cnn_create('b', (SELECT spec FROM cnn_models WHERE name = 'small'), 2);
SELECT json_extract(cnn_train('b', 'SELECT image, label FROM mnist_train WHERE id < 300',
                              '{"epochs":1,"seed":2,"threads":1}'), '$.epochs');
SELECT model, epoch, val_loss IS NULL, val_accuracy IS NULL FROM cnn_history;
SELECT model, epoch FROM cnn_history('b');
SELECT model, epoch FROM cnn_history WHERE model = 'b';
SELECT count(*) FROM cnn_history('nope');
SELECT model, epoch FROM cnn_history ORDER BY epoch DESC, model;
SELECT m.name, count(*) FROM cnn_models AS m, cnn_history(m.name) AS h GROUP BY m.name ORDER BY m.name;

-- Continuing training adds epoch 3; its loss is the one cnn_train reported.
SELECT abs(json_extract(r, '$.loss') - (SELECT loss FROM cnn_history('small') WHERE epoch = 3)) < 1e-6
  FROM (SELECT cnn_train('small', 'SELECT image, label FROM mnist_train WHERE id < 2000',
                         '{"epochs":1,"seed":1,"threads":1,
                           "validation":"SELECT image, label FROM mnist_test WHERE id < 500"}') AS r);
SELECT group_concat(epoch) FROM cnn_history('small');
SELECT epochs FROM cnn_models WHERE name = 'small';

-- cnn_history_svg: an SVG document with both series, a point per value
-- (3 epochs x 2 series for 'small', a line each; 'b' has no val_accuracy), axes labels and
-- the model's name in the title.
SELECT substr(s, 1, 5), instr(s, '<svg') > 0, instr(s, '</svg>') > 0,
       instr(s, 'id="accuracy"') > 0, instr(s, 'id="val_accuracy"') > 0,
       instr(s, '>Epoch<') > 0, instr(s, '>Accuracy<') > 0, instr(s, 'small') > 0,
       (length(s) - length(replace(s, '<circle class="point"', ''))) / 21,
       (length(s) - length(replace(s, '<polyline', ''))) / 9
  FROM (SELECT cnn_history_svg('small') AS s);
SELECT (length(s) - length(replace(s, '<circle class="point"', ''))) / 21
  FROM (SELECT cnn_history_svg('b') AS s);
-- A gap in the epochs (a row written by hand) is a gap in the line.
INSERT INTO cnn_epochs(model, epoch, accuracy) VALUES ('b', 3, 0.75);
SELECT (length(s) - length(replace(s, '<circle class="point"', ''))) / 21,
       (length(s) - length(replace(s, '<polyline', ''))) / 9
  FROM (SELECT cnn_history_svg('b') AS s);
SELECT group_concat(epoch) FROM cnn_history('b');
-- Names are escaped in the SVG.
SELECT cnn_create('a<&>', (SELECT spec FROM cnn_models WHERE name = 'small'), 3);
INSERT INTO cnn_epochs(model, epoch, accuracy, val_accuracy) VALUES ('a<&>', 1, 0.5, 0.6);
SELECT instr(s, 'a&lt;&amp;&gt;') > 0, instr(s, 'a<&>') = 0 FROM (SELECT cnn_history_svg('a<&>') AS s);

-- cnn_history_svg(models, metric): one line (a path) and one legend entry
-- per model, the metric's axis label, losses on a log scale; 'b' has no
-- loss at epoch 3, so its loss path is one point (a single M).
SELECT instr(s, '<svg') > 0, instr(s, '</svg>') > 0,
       (length(s) - length(replace(s, '<path class="line"', ''))) / 18,
       (length(s) - length(replace(s, '<g class="legend-entry">', ''))) / 24,
       instr(s, 'data-name="small"') > 0, instr(s, 'data-name="b"') > 0,
       instr(s, '>accuracy per epoch<') > 0, instr(s, '>Accuracy<') > 0
  FROM (SELECT cnn_history_svg('["small", "b"]', 'accuracy') AS s);
SELECT (length(s) - length(replace(s, '<path class="line"', ''))) / 18,
       instr(s, '>Loss (log scale)<') > 0,
       (length(s) - length(replace(s, '<circle class="point"', ''))) / 21
  FROM (SELECT cnn_history_svg('["small","b"]', 'loss') AS s);
-- One name without brackets; every metric draws.
SELECT m, (length(s) - length(replace(s, '<path class="line"', ''))) / 18
  FROM (SELECT column1 AS m, cnn_history_svg('small', column1) AS s
          FROM (VALUES ('accuracy'), ('val_accuracy'), ('loss'), ('val_loss'), ('learning_rate'), ('seconds')));
-- Names are escaped; legend order is the array's order.
SELECT instr(s, 'data-name="a&lt;&amp;&gt;"') > 0, instr(s, 'a<&>') = 0,
       instr(s, 'data-name="a&lt;') < instr(s, 'data-name="small"')
  FROM (SELECT cnn_history_svg('["a<&>","small"]', 'val_accuracy') AS s);
-- Errors: metric, models (type, JSON, empty, too many, duplicates, items),
-- unknown models, models without epochs or without the metric's values.
SELECT cnn_history_svg('["small"]', 'precision');
SELECT cnn_history_svg('["small"]', NULL);
SELECT cnn_history_svg('["small"]', 3);
SELECT cnn_history_svg(NULL, 'loss');
SELECT cnn_history_svg(7, 'loss');
SELECT cnn_history_svg(x'00', 'loss');
SELECT cnn_history_svg('["small",', 'loss');
SELECT cnn_history_svg('[]', 'loss');
SELECT cnn_history_svg(' [ ] ', 'loss');
SELECT cnn_history_svg('["a","b","c","d","e","f","g","h","i","j","k","l","m"]', 'loss');
SELECT cnn_history_svg('["small","b","small"]', 'loss');
SELECT cnn_history_svg('["small",1]', 'loss');
SELECT cnn_history_svg('["small",""]', 'loss');
SELECT cnn_history_svg('[["small"]]', 'loss');
SELECT cnn_history_svg('["small","nope"]', 'loss');
SELECT cnn_history_svg('nope', 'loss');
SELECT cnn_history_svg('', 'loss');
SELECT cnn_create('untrained', (SELECT spec FROM cnn_models WHERE name = 'small'), 4);
SELECT cnn_history_svg('["small","untrained"]', 'accuracy');
SELECT cnn_history_svg('["small","b"]', 'val_loss');
SELECT cnn_history_svg('["a<&>"]', 'loss');
UPDATE cnn_epochs SET loss = 0 WHERE model = 'a<&>';
SELECT cnn_history_svg('["a<&>"]', 'loss');
SELECT length(cnn_history_svg('["a<&>"]', 'accuracy')) > 0;
SELECT cnn_drop('untrained');

-- Dropping a model drops its history.
SELECT cnn_drop('b');
SELECT count(*) FROM cnn_history('b');
SELECT DISTINCT model FROM cnn_history ORDER BY 1;
