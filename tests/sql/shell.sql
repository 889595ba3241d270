-- The sqlite3 shell as the notebook's front end: `.mode box` tables of the
-- model summary and the training history, pictures written to files with the
-- shell's writefile() and read back with readfile(). Values that depend on
-- floating point (loss, accuracy, seconds) are shown as checks, not numbers.
.mode box

-- The notebook's model, Keras' model.summary().
SELECT cnn_create('nb', NULL, 1) AS params;
SELECT * FROM cnn_summary('nb');
SELECT count(*) AS layers, sum(params) AS total FROM cnn_summary('nb');

SELECT cnn_import_mnist('@DATA@') AS imported;
SELECT label, count(*) AS images FROM mnist_train GROUP BY label ORDER BY label LIMIT 3;

-- A tiny training; its history as a box.
SELECT cnn_create('tiny', '{"input":[28,28,1],"layers":[
  {"type":"conv2d","filters":8,"kernel":3,"activation":"relu"},
  {"type":"maxpool","size":2},{"type":"flatten"},{"type":"dense","units":10}]}', 1) AS params;
SELECT json_extract(r, '$.epochs_run') AS epochs_run, json_extract(r, '$.samples') AS samples,
       json_extract(r, '$.stopped') AS stopped
  FROM (SELECT cnn_train('tiny', 'SELECT image, label FROM mnist_train WHERE id < 300',
                         '{"epochs": 2, "seed": 1, "threads": 1,
                           "validation": "SELECT image, label FROM mnist_test WHERE id < 100"}') AS r);
SELECT epoch, samples, loss > 0 AS loss_ok, accuracy BETWEEN 0 AND 1 AS accuracy_ok,
       val_accuracy BETWEEN 0 AND 1 AS validated, learning_rate, seconds > 0 AS timed
  FROM cnn_history('tiny');

-- Pictures: writefile() returns the bytes written; readfile() reads them
-- back. A PNG starts with its 8-byte signature; bytes 17..24 are its width
-- and height (big-endian): 0x70 = 112 = 28 x 4; the grid is 0x3E8 = 1000 by
-- 0x4A6 = 1190 pixels (10 x 10 digits with their labels). The SVG chart is
-- text.
SELECT writefile('digit.png', cnn_image_png(image, 4)) AS written FROM mnist_test WHERE id = 0;
SELECT length(readfile('digit.png')) AS bytes, hex(substr(readfile('digit.png'), 1, 8)) AS signature,
       hex(substr(readfile('digit.png'), 17, 8)) AS width_height;
SELECT writefile('grid.png', cnn_grid_png('SELECT image, label FROM mnist_train LIMIT 100')) AS written;
SELECT length(readfile('grid.png')) AS bytes, hex(substr(readfile('grid.png'), 1, 8)) AS signature,
       hex(substr(readfile('grid.png'), 17, 8)) AS width_height;
SELECT writefile('history.svg', cnn_history_svg('tiny')) > 1000 AS written,
       CAST(readfile('history.svg') AS TEXT) LIKE '<?xml%<svg %</svg>' || char(10) AS svg;
-- A preprocessed photo, as the model sees it, scaled 8 times: 224 x 224.
SELECT writefile('8-seen.png', cnn_image_png(cnn_preprocess(readfile('@ROOT@/data/digits/8.jpg')), 8)) > 0 AS written;
SELECT hex(substr(readfile('8-seen.png'), 17, 8)) AS width_height;
