-- cnn_augment: an image as training's "augment" option changes it; the same
-- seed gives the same bytes; every bad option is refused with its message.
-- cnn_train's "augment": training runs, and a seed reproduces it.
.headers on
SELECT cnn_import_mnist('@DATA@') AS imported;
CREATE TABLE some AS SELECT id, image, label FROM mnist_train WHERE id < 20;
-- 784 bytes; a seed reproduces them, another seed does not; no augmentation is a copy
SELECT count(*) AS images,
       sum(length(cnn_augment(image, '{"rotation":15,"elastic":{"alpha":34,"sigma":4}}', id)) = 784) AS sized,
       sum(cnn_augment(image, '{"rotation":15,"elastic":{"alpha":34,"sigma":4}}', id)
           = cnn_augment(image, '{"rotation":15,"elastic":{"alpha":34,"sigma":4}}', id)) AS same_seed_same,
       sum(cnn_augment(image, '{"rotation":15,"elastic":{"alpha":34,"sigma":4}}', id)
           <> cnn_augment(image, '{"rotation":15,"elastic":{"alpha":34,"sigma":4}}', id + 1)) AS other_seed_differs,
       sum(cnn_augment(image, '{}', id) = image) AS empty_is_copy,
       sum(cnn_augment(image, '{"rotation":0,"shift":0,"zoom":0,"shear":0,"elastic":{"alpha":0},"thickness":0,"noise":0}') = image) AS zeros_are_copy,
       sum(length(cnn_augment(image, '{"rotation":10,"shift":0.1,"zoom":0.1,"shear":0.2,"elastic":{"alpha":34,"sigma":4},"thickness":1,"noise":0.05}')) = 784) AS unseeded_sized
  FROM some;
-- a seed as a whole REAL (bindings send numbers as REAL) is the same seed
SELECT cnn_augment(image, '{"shift":0.2,"noise":0.1}', 7) = cnn_augment(image, '{"shift":0.2,"noise":0.1}', 7.0) AS real_seed
  FROM some WHERE id = 0;
-- an encoded image is read as the other image functions read it
SELECT length(cnn_augment(readfile('@DATA@/digits/8.jpg'), '{"rotation":10}', 1)) AS from_jpeg;
-- bad arguments
SELECT cnn_augment(NULL, '{}', 1);
SELECT cnn_augment(x'0102', '{}', 1);
SELECT cnn_augment(image, NULL, 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, 42, 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"rotation":', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '[10]', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{}', NULL) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{}', 'one') FROM some WHERE id = 0;
SELECT cnn_augment(image, '{}', 1.5) FROM some WHERE id = 0;
-- bad option values and types
SELECT cnn_augment(image, '{"rotation":400}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"rotation":-1}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"rotation":"10"}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"shift":1.5}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"shift":true}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"zoom":0.95}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"zoom":null}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"shear":2}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"shear":[0.2]}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"elastic":34}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"elastic":{"alpha":-1}}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"elastic":{"alpha":2000}}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"elastic":{"sigma":0}}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"elastic":{"sigma":"4"}}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"elastic":{"alpha":34,"sigma":4,"seed":1}}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"thickness":1.5}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"thickness":9}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"thickness":-1}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"noise":2}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"noise":"0.1"}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"flip":true}', 1) FROM some WHERE id = 0;
SELECT cnn_augment(image, '{"rotation":10,"rotation":20}', 1) FROM some WHERE id = 0;
-- cnn_train's "augment": the same messages, named under augment
SELECT cnn_create('small', '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"flatten"},{"type":"dense","units":10}]}', 1) AS params;
SELECT cnn_train('small', 'some', '{"augment":10}');
SELECT cnn_train('small', 'some', '{"augment":null}');
SELECT cnn_train('small', 'some', '{"augment":{"rotation":400}}');
SELECT cnn_train('small', 'some', '{"augment":{"zoom":"0.1"}}');
SELECT cnn_train('small', 'some', '{"augment":{"elastic":true}}');
SELECT cnn_train('small', 'some', '{"augment":{"elastic":{"sigma":-4}}}');
SELECT cnn_train('small', 'some', '{"augment":{"elastic":{"beta":1}}}');
SELECT cnn_train('small', 'some', '{"augment":{"thickness":2.5}}');
SELECT cnn_train('small', 'some', '{"augment":{"noise":-0.1}}');
SELECT cnn_train('small', 'some', '{"augment":{"flip":true}}');
SELECT cnn_train('small', 'some', '{"augmentation":{}}');
-- nothing above trained the model
SELECT epochs FROM cnn_models WHERE name = 'small';
-- training with augmentation runs, learns (chance is 0.1), and a seed reproduces it for any thread count
SELECT cnn_create('again', '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"flatten"},{"type":"dense","units":10}]}', 1) AS params;
SELECT cnn_create('plain', '{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"flatten"},{"type":"dense","units":10}]}', 1) AS params;
SELECT json_extract(r, '$.epochs') AS epochs, json_extract(r, '$.accuracy') > 0.2 AS learned,
       json_extract(r, '$.stopped') AS stopped
  FROM (SELECT cnn_train('small', 'SELECT image, label FROM mnist_train WHERE id < 1000',
        '{"epochs":2,"seed":3,"threads":1,"augment":{"rotation":10,"shift":0.1,"zoom":0.1,"shear":0.2,"elastic":{"alpha":34,"sigma":4},"thickness":1,"noise":0.05}}') AS r);
SELECT json_extract(cnn_train('again', 'SELECT image, label FROM mnist_train WHERE id < 1000',
        '{"epochs":2,"seed":3,"threads":2,"augment":{"rotation":10,"shift":0.1,"zoom":0.1,"shear":0.2,"elastic":{"alpha":34,"sigma":4},"thickness":1,"noise":0.05}}'), '$.epochs') AS epochs;
SELECT json_extract(cnn_train('plain', 'SELECT image, label FROM mnist_train WHERE id < 1000',
        '{"epochs":2,"seed":3,"threads":1}'), '$.epochs') AS epochs;
SELECT cnn_export('small') = cnn_export('again') AS reproduced,
       cnn_export('small') <> cnn_export('plain') AS augmented;
-- validation is never augmented: the validation loss equals cnn_evaluate's
SELECT abs(json_extract(cnn_train('small', 'SELECT image, label FROM mnist_train WHERE id < 200',
        '{"epochs":1,"seed":4,"augment":{"noise":0.5},"validation":"SELECT image, label FROM mnist_test WHERE id < 300"}'), '$.val_loss')
       - json_extract(cnn_evaluate('small', 'SELECT image, label FROM mnist_test WHERE id < 300'), '$.loss')) < 1e-6 AS validation_plain;
