-- Models: create, drop, default, export/import, and every bad argument.
.headers on
SELECT cnn_create('nb');
SELECT name, params, epochs, step, optimizer IS NULL AS untrained FROM cnn_models;
SELECT idx, name, shape, length(data) FROM cnn_weights WHERE model = 'nb' ORDER BY idx;
SELECT cnn_create('tiny', '{"input":[8,8],"layers":[{"type":"flatten"},{"type":"dense","units":3,"activation":{"expr":"x*sigmoid(x)"}},{"type":"dense","units":2}]}', 7);
SELECT json_extract(spec, '$.layers[1].activation.expr') AS expr FROM cnn_models WHERE name = 'tiny';
-- the same seed gives the same weights
SELECT cnn_create('tiny2', (SELECT spec FROM cnn_models WHERE name = 'tiny'), 7);
SELECT count(*) AS same FROM cnn_weights a JOIN cnn_weights b ON a.idx = b.idx AND a.data = b.data WHERE a.model = 'tiny' AND b.model = 'tiny2';
-- export / import round trip
SELECT cnn_import('tiny3', cnn_export('tiny'));
SELECT count(*) AS same FROM cnn_weights a JOIN cnn_weights b ON a.idx = b.idx AND a.data = b.data WHERE a.model = 'tiny' AND b.model = 'tiny3';
SELECT cnn_export('tiny') = cnn_export('tiny3') AS identical_blobs;
SELECT cnn_default('tiny');
SELECT cnn_default();
SELECT cnn_drop('tiny');
SELECT cnn_default() IS NOT 'tiny' AS default_moved;
SELECT count(*) AS left_rows FROM cnn_weights WHERE model = 'tiny';
-- errors
SELECT cnn_create('nb');
SELECT cnn_create(NULL);
SELECT cnn_create('');
SELECT cnn_create(42);
SELECT cnn_create('x', 42);
SELECT cnn_create('x', '{');
SELECT cnn_create('x', '{"layers":[{"type":"dense","units":10,"activation":"sigmoid6"}]}');
SELECT cnn_create('x', NULL, -1);
SELECT cnn_drop('nope');
SELECT cnn_default('nope');
SELECT cnn_export('nope');
SELECT cnn_import('y', x'00');
SELECT cnn_import('y', 'text');
SELECT cnn_import('y', substr(cnn_export('tiny2'), 1, 100));
SELECT cnn_import('tiny2', cnn_export('tiny2'));
SELECT count(*) AS models FROM cnn_models;
-- inference precision: fp32 unless set (bf16 depends on the CPU: test_precision.py)
SELECT cnn_precision('tiny2');
SELECT cnn_precision('tiny2', 'fp32');
SELECT cnn_precision('tiny2', 'half');
SELECT cnn_precision('tiny2', 32);
SELECT cnn_precision('nope');
SELECT cnn_precision('nope', 'fp32');
SELECT count(*) AS precision_rows FROM cnn_settings WHERE key LIKE 'precision:%';
CREATE VIEW vp AS SELECT cnn_precision('tiny2', 'fp32') AS p;
SELECT * FROM vp;
-- writers cannot run from triggers or views (SQLITE_DIRECTONLY)
CREATE TABLE log(x);
CREATE TRIGGER t AFTER INSERT ON log BEGIN SELECT cnn_drop('nb'); END;
INSERT INTO log VALUES (1);
CREATE VIEW v AS SELECT cnn_create('z') AS c;
SELECT * FROM v;
SELECT count(*) AS models FROM cnn_models;
PRAGMA integrity_check;
