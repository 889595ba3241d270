-- cnn_preprocess(image) and cnn_image_png(image [, scale]): an image argument
-- is 784 raw MNIST bytes or an encoded image (PNG, JPEG, BMP, GIF, ...);
-- photos are preprocessed like MNIST's digits. Errors name the function.

-- A phone photo of an 8 (data/digits/8.jpg, rendered from MNIST test image
-- 9420): 784 bytes, white ink on black, brightest pixel 255, empty border.
SELECT length(cnn_preprocess(readfile('@ROOT@/data/digits/8.jpg')));
SELECT typeof(cnn_preprocess(readfile('@ROOT@/data/digits/8.jpg')));
SELECT instr(hex(cnn_preprocess(readfile('@ROOT@/data/digits/8.jpg'))), 'FF') > 0;
SELECT substr(cnn_preprocess(readfile('@ROOT@/data/digits/8.jpg')), 1, 28) = zeroblob(28);

-- ... and it is close to the MNIST image it was made from: mean absolute
-- difference per pixel under 8 gray levels (of 255). Same for the inverted
-- (chalk on a blackboard) photo and the PNG with an alpha channel, under 12.
CREATE TEMP TABLE hexdigit(c TEXT PRIMARY KEY, v INTEGER);
WITH RECURSIVE d(v) AS (SELECT 0 UNION ALL SELECT v + 1 FROM d WHERE v < 15)
INSERT INTO hexdigit SELECT substr('0123456789ABCDEF', v + 1, 1), v FROM d;
CREATE TEMP VIEW mad(file, idx, dist) AS
WITH RECURSIVE
  files(file, idx) AS (VALUES ('8.jpg', 9420), ('5_chalk.jpg', 9298), ('4_alpha.png', 8879)),
  pairs(file, idx, a, b) AS MATERIALIZED (
    SELECT f.file, f.idx, cnn_preprocess(readfile('@ROOT@/data/digits/' || f.file)), m.image
    FROM files AS f JOIN cnn_mnist('@DATA@/t10k-images-idx3-ubyte.gz') AS m ON m.idx = f.idx),
  i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 784),
  px(file, idx, ha, hb) AS (
    SELECT file, idx, hex(substr(a, n, 1)), hex(substr(b, n, 1)) FROM pairs, i)
SELECT file, idx,
       sum(abs((SELECT v FROM hexdigit WHERE c = substr(ha, 1, 1)) * 16 +
               (SELECT v FROM hexdigit WHERE c = substr(ha, 2, 1)) -
               (SELECT v FROM hexdigit WHERE c = substr(hb, 1, 1)) * 16 -
               (SELECT v FROM hexdigit WHERE c = substr(hb, 2, 1)))) / 784.0
FROM px GROUP BY file, idx;
SELECT file, idx, dist < (CASE file WHEN '8.jpg' THEN 8 ELSE 12 END) FROM mad ORDER BY idx;

-- 784 raw bytes are taken as they are; TEXT is read as its bytes.
SELECT cnn_preprocess(zeroblob(784)) = zeroblob(784);
WITH r(b) AS MATERIALIZED (SELECT randomblob(784)) SELECT cnn_preprocess(b) = b FROM r;
SELECT length(cnn_preprocess(CAST(readfile('@ROOT@/data/digits/8.jpg') AS TEXT)));

-- PNGs: the signature, IHDR width and height (default scale 4: 112 px).
SELECT hex(substr(cnn_image_png(readfile('@ROOT@/data/digits/8.jpg')), 1, 8));
SELECT hex(substr(cnn_image_png(zeroblob(784)), 17, 8));
SELECT hex(substr(cnn_image_png(zeroblob(784), 1), 17, 8));
SELECT hex(substr(cnn_image_png(zeroblob(784), 64), 17, 8));
-- A PNG of the preprocessed photo preprocesses to 784 bytes again.
SELECT length(cnn_preprocess(cnn_image_png(cnn_preprocess(readfile('@ROOT@/data/digits/8.jpg')), 3)));

-- Pure functions: usable in generated columns and indexes.
CREATE TABLE photos(name TEXT, data BLOB, mnist BLOB AS (cnn_preprocess(data)));
INSERT INTO photos(name, data) VALUES ('3', readfile('@ROOT@/data/digits/3.jpg'));
CREATE INDEX photos_mnist ON photos(cnn_preprocess(data));
SELECT name, length(mnist) FROM photos;
SELECT name, narg, flags & 0x800 != 0 AS deterministic, flags & 0x200000 != 0 AS innocuous
FROM pragma_function_list WHERE name IN ('cnn_preprocess', 'cnn_image_png') ORDER BY name, narg;

-- Errors.
SELECT cnn_preprocess(NULL);
SELECT cnn_preprocess(x'0102');
SELECT cnn_preprocess(42);
SELECT cnn_preprocess(4.5);
SELECT cnn_preprocess('hello');
SELECT cnn_preprocess(zeroblob(785));
SELECT cnn_preprocess(x'');
SELECT cnn_preprocess(substr(readfile('@ROOT@/data/digits/4_alpha.png'), 1, 2000));
SELECT cnn_preprocess(substr(readfile('@ROOT@/data/digits/8.jpg'), 1, 2000));
SELECT cnn_preprocess(x'89504E470D0A1A0A0000000D49484452000186A0000186A00800000000');
SELECT cnn_preprocess(cnn_image_png(zeroblob(784)));
SELECT cnn_image_png(NULL);
SELECT cnn_image_png(x'0102', 2);
SELECT cnn_image_png(zeroblob(784), 0);
SELECT cnn_image_png(zeroblob(784), 65);
SELECT cnn_image_png(zeroblob(784), 'big');
SELECT length(cnn_image_png(zeroblob(784), 2.0)) > 0 AS whole_real_scale_ok;
SELECT cnn_image_png(zeroblob(784), 2.5);
SELECT cnn_image_png(zeroblob(784), NULL);
