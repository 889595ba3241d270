-- A CNN trained on MNIST reads the sample photos of data/digits/ (phone-like
-- pictures of digits on paper, in ink, with alpha, in chalk) correctly: the
-- preprocessing turns them into what the model learnt from.
.headers on
SELECT cnn_import_mnist('@DATA@') > 0 AS imported;
SELECT cnn_create('d', '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":16,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"conv2d","filters":32,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"flatten"},{"type":"dense","units":64,"activation":"relu"},{"type":"dense","units":10}]}', 1) AS params;
SELECT json_extract(cnn_train('d', 'SELECT image, label FROM mnist_train WHERE id < 12000', '{"epochs":2,"seed":1,"threads":1}'), '$.epochs') AS epochs;
SELECT json_extract(cnn_evaluate('d', 'mnist_test'), '$.accuracy') > 0.95 AS test_accuracy_over_95;
WITH photos(file) AS (VALUES ('0.jpg'), ('1.jpg'), ('2.jpg'), ('3.jpg'), ('4.jpg'), ('4_alpha.png'),
                             ('5.jpg'), ('5_chalk.jpg'), ('6.jpg'), ('7.jpg'), ('8.jpg'), ('9.jpg'))
SELECT file, cnn_predict('d', readfile('@ROOT@/data/digits/' || file)) AS predicted,
       cnn_predict('d', readfile('@ROOT@/data/digits/' || file)) = CAST(substr(file, 1, 1) AS INTEGER) AS right
  FROM photos;
