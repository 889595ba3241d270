-- The training option layer_stats and cnn_layer_stats: one row per layer
-- and epoch, committed with the epoch; NULL for layers without a kernel;
-- both filter forms; rows dropped with the model; bad values refused.

-- Before any model: empty, not an error.
SELECT count(*) FROM cnn_layer_stats;

SELECT cnn_import_mnist('@DATA@');
SELECT cnn_create('ls', '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":8,"kernel":3,"activation":"relu"},{"type":"maxpool","size":2},{"type":"flatten"},{"type":"dense","units":32,"activation":"sigmoid"},{"type":"dense","units":10}]}', 1);
SELECT json_extract(cnn_train('ls', 'SELECT image, label FROM mnist_train WHERE id < 1000',
                              '{"epochs":2,"seed":1,"threads":1,"layer_stats":true}'), '$.epochs');
SELECT model, epoch, layer, name, type, grad_mean_abs > 0, weight_norm > 0,
       update_ratio BETWEEN 0 AND 1, zero_fraction BETWEEN 0 AND 1
  FROM cnn_layer_stats('ls');
-- Layers without a kernel: NULL; ReLU outputs have zeros, sigmoid's none.
SELECT name, typeof(grad_mean_abs), typeof(weight_norm), typeof(update_ratio), typeof(zero_fraction)
  FROM cnn_layer_stats('ls') WHERE epoch = 1;
SELECT name, zero_fraction > 0 FROM cnn_layer_stats('ls') WHERE epoch = 1 AND layer IN (0, 3, 4);
-- Both forms and the table agree.
SELECT count(*) FROM (SELECT * FROM cnn_layer_stats('ls') EXCEPT SELECT * FROM cnn_layer_stats WHERE model = 'ls');
SELECT count(*) FROM (SELECT model, epoch, layer, name, type, grad_mean_abs, weight_norm, update_ratio,
                             zero_fraction FROM cnn_layer_epochs EXCEPT SELECT * FROM cnn_layer_stats);
SELECT model_name FROM cnn_layer_stats('ls') LIMIT 1;
-- Without the option: history grows, layer statistics do not.
SELECT json_extract(cnn_train('ls', 'SELECT image, label FROM mnist_train WHERE id < 300',
                              '{"epochs":1,"seed":2,"threads":1}'), '$.epochs');
SELECT count(*) AS epochs, (SELECT count(*) FROM cnn_layer_stats('ls')) AS layer_rows FROM cnn_history('ls');
SELECT json_extract(cnn_train('ls', 'SELECT image, label FROM mnist_train WHERE id < 300',
                              '{"epochs":1,"seed":2,"threads":1,"layer_stats":false}'), '$.epochs');
SELECT count(*) FROM cnn_layer_stats('ls');
-- The chart: a line and a legend entry per layer with the statistic.
SELECT (length(cnn_layer_stats_svg('ls', 'grad_mean_abs')) - length(replace(cnn_layer_stats_svg('ls', 'grad_mean_abs'), '<path', ''))) / 5 AS paths;
SELECT (length(cnn_layer_stats_svg('ls', 'zero_fraction')) - length(replace(cnn_layer_stats_svg('ls', 'zero_fraction'), '<path', ''))) / 5 AS paths;
SELECT cnn_layer_stats_svg('ls', 'update_ratio') LIKE '<?xml%</svg>%', cnn_layer_stats_svg('ls', 'weight_norm') LIKE '%dense_1%';
SELECT cnn_layer_stats_svg('ls', 'loss');
SELECT cnn_layer_stats_svg('ls', NULL);
SELECT cnn_layer_stats_svg('nope', 'grad_mean_abs');
SELECT cnn_layer_stats_svg(NULL, 'grad_mean_abs');
SELECT cnn_create('bare', NULL, 1) > 0;
SELECT cnn_layer_stats_svg('bare', 'zero_fraction');
-- Bad values.
SELECT cnn_train('ls', 'SELECT image, label FROM mnist_train WHERE id < 300', '{"layer_stats":1}');
SELECT cnn_train('ls', 'SELECT image, label FROM mnist_train WHERE id < 300', '{"layer_stats":"yes"}');
SELECT cnn_train('ls', 'SELECT image, label FROM mnist_train WHERE id < 300', '{"layer_stat":true}');
SELECT * FROM cnn_layer_stats(NULL);
SELECT count(*) FROM cnn_layer_stats('nope');
-- Dropping the model drops its rows.
SELECT cnn_drop('ls');
SELECT count(*) FROM cnn_layer_epochs;
