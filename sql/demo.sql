-- The notebook, as SQL: load MNIST, build the CNN, train it with Adam,
-- watch accuracy per epoch, evaluate, and predict a photo of a handwritten 8.
-- Run from the repository root:  sqlite3 mnist.db < sql/demo.sql
-- (sql/demo.sh builds the extension first; set the epochs with
--  .parameter set :epochs N before reading this file; default 1).
.bail on
.load build/cnn
.parameter init
.parameter set :epochs_default 1
.mode box

SELECT cnn_version() AS version;

-- (train_images, train_labels), (test_images, test_labels) = mnist.load_data()
SELECT cnn_import_mnist('data') AS rows_imported;
SELECT (SELECT count(*) FROM mnist_train) AS train_rows, (SELECT count(*) FROM mnist_test) AS test_rows;

-- model = models.Sequential([...]); model.summary()
SELECT cnn_create('notebook', NULL, 1) AS params;
SELECT * FROM cnn_summary('notebook');

-- model.fit(train_images, train_labels, epochs=..., validation_data=(test_images, test_labels))
SELECT cnn_train('notebook', 'mnist_train',
                 json_object('epochs', coalesce(:epochs, :epochs_default), 'seed', 1,
                             'validation', 'mnist_test', 'progress', json('true'))) AS run;

-- history.history['accuracy'], ['val_accuracy']
SELECT epoch, round(loss, 4) AS loss, round(accuracy, 4) AS accuracy,
       round(val_loss, 4) AS val_loss, round(val_accuracy, 4) AS val_accuracy,
       round(seconds, 1) AS seconds
  FROM cnn_history('notebook');

-- test_loss, test_acc = model.evaluate(test_images, test_labels)
SELECT cnn_evaluate('notebook', 'mnist_test') AS evaluation;
SELECT label, sum(count) FILTER (WHERE predicted = label) AS right, sum(count) AS total
  FROM cnn_confusion('notebook', 'mnist_test') GROUP BY label;

-- a few test digits
SELECT id, label, cnn_predict('notebook', image) AS predicted,
       round(json_extract(cnn_predict_proba('notebook', image), '$[' || cnn_predict('notebook', image) || ']'), 4) AS probability
  FROM mnist_test LIMIT 8;

-- model.predict(img): a phone photo of a handwritten 8
SELECT cnn_predict('notebook', readfile('data/digits/8.jpg')) AS predicted_8;
SELECT name AS photo, cnn_predict('notebook', readfile('data/digits/' || name)) AS predicted
  FROM (SELECT '0.jpg' AS name UNION ALL SELECT '1.jpg' UNION ALL SELECT '2.jpg' UNION ALL SELECT '3.jpg'
        UNION ALL SELECT '4.jpg' UNION ALL SELECT '5.jpg' UNION ALL SELECT '6.jpg'
        UNION ALL SELECT '7.jpg' UNION ALL SELECT '8.jpg' UNION ALL SELECT '9.jpg');

-- the pictures: a 10x10 grid of training digits, the accuracy chart, the 8 as the model sees it
SELECT writefile('grid.png', cnn_grid_png('SELECT image, label FROM mnist_train LIMIT 100', 10)) AS grid_png_bytes;
SELECT writefile('history.svg', cnn_history_svg('notebook')) AS history_svg_bytes;
SELECT writefile('8-preprocessed.png', cnn_image_png(cnn_preprocess(readfile('data/digits/8.jpg')), 8)) AS eight_png_bytes;
