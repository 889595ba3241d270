-- cnn_train from the shell: a small model learns, history and counters agree,
-- and every bad argument and option is refused without touching the model.
.headers on
SELECT cnn_import_mnist('@DATA@') AS imported;
SELECT cnn_create('small', '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":8,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"flatten"},{"type":"dropout","rate":0.1},{"type":"dense","units":10}]}', 1);
SELECT json_extract(r, '$.epochs') AS epochs, json_extract(r, '$.accuracy') > 0.8 AS learned,
       json_extract(r, '$.val_accuracy') > 0.8 AS generalises, json_extract(r, '$.stopped') AS stopped
  FROM (SELECT cnn_train('small', 'SELECT image, label FROM mnist_train WHERE id < 3000',
                         '{"epochs":2,"seed":1,"validation":"SELECT image, label FROM mnist_test WHERE id < 500"}') AS r);
SELECT epoch, samples, loss > 0 AND accuracy BETWEEN 0 AND 1 AS sane, val_loss IS NOT NULL AS validated
  FROM cnn_epochs ORDER BY epoch;
SELECT epochs, step, version > 1 AS versioned, json_extract(optimizer, '$.name') AS optimizer FROM cnn_models;
-- each optimizer of the notes, by name and with settings
SELECT json_extract(cnn_train('small', 'SELECT image, label FROM mnist_train WHERE id < 300', json_object('epochs', 1, 'optimizer', json(o))), '$.optimizer.name') AS optimizer
  FROM (SELECT '"sgd"' AS o UNION ALL SELECT '"momentum"' UNION ALL SELECT '{"name":"sgd","momentum":0.9,"nesterov":true}'
        UNION ALL SELECT '"rmsprop"' UNION ALL SELECT '"adagrad"' UNION ALL SELECT '"adamax"' UNION ALL SELECT '{"name":"adam","learning_rate":0.0005}');
SELECT epochs, optimizer FROM cnn_models;
SELECT count(*) AS history_rows FROM cnn_epochs;
-- a table name as source (its image and label columns)
SELECT json_extract(cnn_train('small', 'mnist_test', '{"epochs":1,"batch_size":128}'), '$.samples') AS samples;
-- bad arguments
SELECT cnn_train('small', NULL);
SELECT cnn_train('small', 42);
SELECT cnn_train(NULL, 'mnist_test');
SELECT cnn_train('small', 'mnist_test', 42);
SELECT cnn_train('small', 'no_such_table');
SELECT cnn_train('small', 'SELECT image, label FROM mnist_test WHERE');
SELECT cnn_train('small', 'DELETE FROM mnist_test');
SELECT cnn_train('small', 'SELECT 1; SELECT 2');
SELECT cnn_train('small', 'SELECT image FROM mnist_test');
SELECT cnn_train('small', 'SELECT x''0102'', 1');
SELECT cnn_train('small', 'SELECT image, 10 FROM mnist_test');
SELECT cnn_train('small', 'SELECT image, ''seven'' FROM mnist_test');
SELECT cnn_train('small', 'SELECT image, NULL FROM mnist_test');
SELECT cnn_train('small', 'SELECT image, label FROM mnist_test WHERE 0');
-- bad options
SELECT cnn_train('small', 'mnist_test', '{"epoch":1}');
SELECT cnn_train('small', 'mnist_test', '[1]');
SELECT cnn_train('small', 'mnist_test', '{"epochs":-1}');
SELECT cnn_train('small', 'mnist_test', '{"epochs":1.5}');
SELECT cnn_train('small', 'mnist_test', '{"batch_size":0}');
SELECT cnn_train('small', 'mnist_test', '{"optimizer":"adadelta"}');
SELECT cnn_train('small', 'mnist_test', '{"optimizer":{"name":"sgd","beta_1":0.9}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":0}');
SELECT cnn_train('small', 'mnist_test', '{"shuffle":"yes"}');
SELECT cnn_train('small', 'mnist_test', '{"validation":5}');
SELECT cnn_train('small', 'mnist_test', '{"validation":"nope","epochs":1}');
SELECT cnn_train('small', 'mnist_test', '{"early_stopping":{"patience":0}}');
SELECT cnn_train('small', 'mnist_test', '{"early_stopping":{"wait":2}}');
SELECT cnn_train('small', 'mnist_test', '{"max_seconds":-1}');
SELECT cnn_train('small', 'mnist_test', '{"threads":1000}');
SELECT cnn_train('small', 'mnist_test', '{"seed":-5}');
SELECT cnn_train('small', 'mnist_test', '{"epochs":1e999}');
SELECT cnn_train('small', 'mnist_test', '{"optimizer":{"name":"sgd","learning_rate":1e30}}');
SELECT cnn_train('small', 'mnist_test', '{"label_smoothing":1}');
SELECT cnn_train('small', 'mnist_test', '{"label_smoothing":-0.1}');
SELECT cnn_train('small', 'mnist_test', '{"label_smoothing":"some"}');
SELECT cnn_train('small', 'mnist_test', '{"optimizer":{"name":"adamw","weight_decay":2}}');
SELECT cnn_train('small', 'mnist_test', '{"optimizer":{"name":"sgd","weight_decay":true}}');
SELECT cnn_train('small', 'mnist_test', '{"optimizer":{"name":"adamw","momentum":0.9}}');
-- nothing above changed the model
SELECT epochs, count(*) AS history_rows FROM cnn_models JOIN cnn_epochs ON model = name;
-- a training run that fails before its first epoch leaves no new model
SELECT cnn_train('fresh', 'SELECT image, 99 FROM mnist_test');
SELECT count(*) AS models FROM cnn_models;
-- a new name is created with the notebook's model at its first epoch
SELECT json_extract(cnn_train('nb', 'SELECT image, label FROM mnist_train WHERE id < 64', '{"epochs":1,"seed":3}'), '$.epochs') AS epochs;
SELECT name, params FROM cnn_models ORDER BY name;
-- writers cannot run from a trigger
CREATE TABLE log(x);
CREATE TRIGGER t AFTER INSERT ON log BEGIN SELECT cnn_train('small', 'mnist_test'); END;
INSERT INTO log VALUES (1);
-- a loss that overflows stops training with an error; the stored model stays as it was
SELECT cnn_create('boom', '{"input":[28,28,1],"layers":[{"type":"flatten"},{"type":"dense","units":32,"activation":"exponential"},{"type":"dense","units":10,"activation":"exponential"}]}', 1) AS params;
SELECT cnn_train('boom', 'SELECT image, label FROM mnist_train WHERE id < 500', '{"epochs":1,"optimizer":{"name":"sgd","learning_rate":10}}');
SELECT epochs, (SELECT count(*) FROM cnn_epochs WHERE model = 'boom') AS history_rows FROM cnn_models WHERE name = 'boom';
-- label smoothing and AdamW: the smoothed loss of 10 classes cannot go below
-- the entropy of the targets (0.5 for 0.1), and validation reports it too,
-- while cnn_evaluate reports the plain loss of the same rows, below it
SELECT cnn_create('smooth', '{"input":[28,28,1],"layers":[{"type":"flatten"},{"type":"dense","units":32,"activation":"relu"},{"type":"dense","units":10,"activation":"softmax"}]}', 1) AS params;
SELECT json_extract(r, '$.loss') > 0.5 AS smoothed, json_extract(r, '$.accuracy') > 0.7 AS learned,
       json_extract(r, '$.val_loss') > json_extract(cnn_evaluate('smooth', 'SELECT image, label FROM mnist_test WHERE id < 300'), '$.loss') AS plain_evaluate,
       json_extract(r, '$.optimizer') AS optimizer
  FROM (SELECT cnn_train('smooth', 'SELECT image, label FROM mnist_train WHERE id < 2000',
                         '{"epochs":2,"seed":5,"label_smoothing":0.1,"optimizer":"adamw","validation":"SELECT image, label FROM mnist_test WHERE id < 300"}') AS r);
SELECT optimizer, step FROM cnn_models WHERE name = 'smooth';
SELECT cnn_import('smooth_copy', cnn_export('smooth')) AS params;
SELECT optimizer, step FROM cnn_models WHERE name = 'smooth_copy';
-- another optimizer's weight decay is kept in the stored optimizer too
SELECT json_extract(cnn_train('smooth', 'SELECT image, label FROM mnist_train WHERE id < 300', '{"epochs":1,"optimizer":{"name":"sgd","weight_decay":0.01}}'), '$.optimizer') AS optimizer;
SELECT optimizer FROM cnn_models WHERE name = 'smooth';
-- learning-rate schedules: every bad value names the key and what came
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":"fast"}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"linear"}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"exponential_decay","initial_learning_rate":0.1,"decay_steps":10,"decay_rate":0.5,"warmup_steps":5}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"exponential_decay","initial_learning_rate":0.1,"decay_steps":10}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"exponential_decay","initial_learning_rate":0,"decay_steps":10,"decay_rate":0.5}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"exponential_decay","initial_learning_rate":0.1,"decay_steps":0,"decay_rate":0.5}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"exponential_decay","initial_learning_rate":0.1,"decay_steps":10,"decay_rate":2}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"exponential_decay","initial_learning_rate":0.1,"decay_steps":10,"decay_rate":0.5,"staircase":"yes"}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"cosine_decay","initial_learning_rate":0.1,"decay_steps":10,"alpha":1.5}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"cosine_decay","initial_learning_rate":0.1,"decay_steps":10,"decay_rate":0.5}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"cosine_decay","decay_steps":10}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"piecewise_constant","boundaries":"x","values":[0.1]}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"piecewise_constant","boundaries":[10,5],"values":[0.1,0.01,0.001]}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"piecewise_constant","boundaries":[-1],"values":[0.1,0.01]}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"piecewise_constant","boundaries":[10],"values":[0.1,0]}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"piecewise_constant","boundaries":[10],"values":[0.1]}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"piecewise_constant","boundaries":[],"values":[]}}');
SELECT cnn_train('small', 'mnist_test', '{"learning_rate":{"schedule":"piecewise_constant","boundaries":[10]}}');
-- a scheduled run: 4 steps an epoch, each epoch's rate is that of its last
-- step (steps 3, 7, 11 of boundaries [3, 7]); the stored optimizer keeps
-- Adam's own rate, and a second call passing the schedule again goes on from step 12
SELECT cnn_create('sched', '{"input":[28,28,1],"layers":[{"type":"flatten"},{"type":"dense","units":16,"activation":"relu"},{"type":"dense","units":10}]}', 1) AS params;
SELECT json_extract(cnn_train('sched', 'SELECT image, label FROM mnist_train WHERE id < 128', '{"epochs":3,"seed":1,"learning_rate":{"schedule":"piecewise_constant","boundaries":[3,7],"values":[0.004,0.002,0.0005]}}'), '$.optimizer') AS optimizer;
SELECT json_extract(cnn_train('sched', 'SELECT image, label FROM mnist_train WHERE id < 128', '{"epochs":1,"seed":1,"learning_rate":{"schedule":"piecewise_constant","boundaries":[3,7],"values":[0.004,0.002,0.0005]}}'), '$.epochs') AS epochs;
SELECT epoch, learning_rate FROM cnn_history('sched') ORDER BY epoch;
SELECT optimizer, step FROM cnn_models WHERE name = 'sched';
-- ReduceLROnPlateau: every bad value, and a run whose loss cannot improve by
-- min_delta 1: the rate halves after epochs 2 and 3 and the stored optimizer keeps it
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":5}');
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":{"monitor":"accuracy"}}');
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":{"factor":1}}');
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":{"patience":1.5}}');
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":{"min_delta":-1}}');
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":{"cooldown":-1}}');
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":{"min_lr":11}}');
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":{"mode":"min"}}');
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":{},"learning_rate":{"schedule":"piecewise_constant","boundaries":[],"values":[0.1]}}');
SELECT cnn_train('small', 'mnist_test', '{"reduce_lr_on_plateau":{"monitor":"val_loss"}}');
SELECT cnn_create('plateau', '{"input":[28,28,1],"layers":[{"type":"flatten"},{"type":"dense","units":10}]}', 1) AS params;
SELECT json_extract(cnn_train('plateau', 'SELECT image, label FROM mnist_train WHERE id < 128', '{"epochs":3,"seed":1,"optimizer":"sgd","reduce_lr_on_plateau":{"factor":0.5,"patience":1,"min_delta":1},"validation":"SELECT image, label FROM mnist_test WHERE id < 64"}'), '$.optimizer') AS optimizer;
SELECT epoch, learning_rate FROM cnn_history('plateau') ORDER BY epoch;
PRAGMA integrity_check;
