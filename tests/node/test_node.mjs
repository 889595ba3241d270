// sqlite-cnn from Node through better-sqlite3: load the extension, import
// MNIST, create and train a small seeded model, stop a long run with
// max_seconds (better-sqlite3 runs a statement to its end and cannot
// interrupt it), read the live history, predict one image and a batch, and
// write the batch's predictions to a JSON file.
//
// Run by run.sh (which installs better-sqlite3 into ./node_modules) with CNN_SO
// and CNN_DATA in the environment. Two more modes serve the Python test
// tests/python/test_bindings.py, which checks that Python, the sqlite3 shell
// and Node give identical answers:
//   node test_node.mjs predict DB MODEL OUT.json  predictions of the first 200
//                                                 test rows by MODEL in DB
//   node test_node.mjs train DB JOB.json          a fresh DB: import MNIST,
//                                                 cnn_create + cnn_train as the
//                                                 job says; prints the result
//                                                 and the sha256 of cnn_export
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

const SO = process.env.CNN_SO;
const DATA = process.env.CNN_DATA;
if (!SO || !DATA) throw new Error('test_node.mjs: set CNN_SO (path to cnn.so) and CNN_DATA (MNIST dir)');

const TEST_ROWS = 200;
const SMALL = JSON.stringify({
  input: [28, 28, 1],
  layers: [
    { type: 'conv2d', filters: 8, kernel: 3, activation: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 10 },
  ],
});
const TRAIN_ROWS = 'SELECT image, label FROM mnist_train WHERE id < 2000';

function open(path) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL'); // readers see each epoch as it commits
  db.loadExtension(SO);
  return db;
}

function train(db, name, source, options) {
  const text = db.prepare('SELECT cnn_train(?, ?, ?)').pluck().get(name, source, JSON.stringify(options));
  return JSON.parse(text);
}

// The first TEST_ROWS test images: batch predictions, each checked against
// the scalar functions, with cnn_predict_proba's JSON text kept verbatim.
function predictions(db, name) {
  const source = `SELECT image, label FROM mnist_test WHERE id < ${TEST_ROWS} ORDER BY id`;
  const rows = db
    .prepare('SELECT idx, label, predicted, probability FROM cnn_predictions(?, ?)')
    .all(name, source);
  const scalar = db
    .prepare('SELECT cnn_predict(?, image) AS predicted, cnn_predict_proba(?, image) AS proba ' +
             'FROM mnist_test WHERE id < ? ORDER BY id')
    .all(name, name, TEST_ROWS);
  assert.equal(rows.length, TEST_ROWS);
  return rows.map((r, i) => {
    assert.equal(r.idx, i);
    assert.equal(scalar[i].predicted, r.predicted, `row ${i}: cnn_predict and cnn_predictions disagree`);
    const p = JSON.parse(scalar[i].proba);
    assert.equal(p.length, 10);
    assert.equal(p.indexOf(Math.max(...p)), r.predicted, `row ${i}: argmax of cnn_predict_proba`);
    assert.ok(Math.abs(Math.max(...p) - r.probability) <= 1e-6, `row ${i}: ${p} vs ${r.probability}`);
    return { ...r, proba: scalar[i].proba };
  });
}

function exportHash(db, name) {
  const blob = db.prepare('SELECT cnn_export(?)').pluck().get(name);
  assert.ok(Buffer.isBuffer(blob) && blob.length > 50000);
  return createHash('sha256').update(blob).digest('hex');
}

function fullTest() {
  const dir = mkdtempSync(join(tmpdir(), 'cnn-node-'));
  try {
    const db = open(join(dir, 'mnist.db'));
    assert.match(db.prepare('SELECT cnn_version()').pluck().get(), /^\d+\.\d+\.\d+$/);
    assert.equal(db.prepare('SELECT cnn_import_mnist(?)').pluck().get(DATA), 70000);
    assert.equal(db.prepare('SELECT count(*) FROM mnist_test').pluck().get(), 10000);

    // A small seeded model, one epoch on 2000 rows. A budget that is not
    // reached changes nothing: the run completes.
    // The seed is written into the SQL: better-sqlite3 binds every JS number
    // as a REAL, and cnn_create wants an INTEGER seed (a BigInt, 7n, binds as
    // one).
    assert.equal(db.prepare('SELECT cnn_create(?, ?, 7)').pluck().get('m', SMALL), 13610);
    const r = train(db, 'm', TRAIN_ROWS, { epochs: 1, seed: 1, threads: 1, max_seconds: 600 });
    assert.equal(r.model, 'm');
    assert.equal(r.epochs_run, 1);
    assert.equal(r.epochs, 1);
    assert.equal(r.samples, 2000);
    assert.equal(r.stopped, 'completed');
    assert.ok(r.loss > 0 && r.loss < 2.3 && r.accuracy > 0.5 && r.accuracy <= 1, JSON.stringify(r));

    // The history, one row per epoch.
    const hist = db.prepare("SELECT epoch, loss, accuracy, val_loss, samples FROM cnn_history('m')").all();
    assert.equal(hist.length, 1);
    assert.equal(hist[0].epoch, 1);
    assert.equal(hist[0].samples, 2000);
    assert.equal(hist[0].val_loss, null);
    assert.ok(Math.abs(hist[0].loss - r.loss) <= 1e-6 * r.loss, `${hist[0].loss} vs ${r.loss}`);

    // 1000 epochs would run for minutes, and better-sqlite3 cannot interrupt
    // the call: max_seconds stops it after the epoch in which 0.5 s run out,
    // with every completed epoch saved.
    assert.equal(db.prepare('SELECT cnn_create(?, ?, ?)').pluck().get('t', SMALL, 3n), 13610);
    const start = Date.now();
    const t = train(db, 't', TRAIN_ROWS, { epochs: 1000, seed: 1, threads: 1, max_seconds: 0.5 });
    const elapsed = (Date.now() - start) / 1000;
    assert.equal(t.stopped, 'max_seconds');
    assert.ok(t.epochs_run >= 1 && t.epochs_run < 1000, JSON.stringify(t));
    assert.equal(t.epochs, t.epochs_run);
    // At most the epoch in progress when the budget ran out goes past it.
    assert.ok(elapsed < 0.5 + 3 * r.seconds + 2, `${elapsed} s for ${JSON.stringify(t)}`);
    const saved = db.prepare("SELECT max(epoch) AS n, count(*) AS c FROM cnn_history WHERE model = 't'").get();
    assert.deepEqual(saved, { n: t.epochs_run, c: t.epochs_run });
    assert.equal(db.prepare("SELECT epochs FROM cnn_models WHERE name = 't'").pluck().get(), t.epochs_run);

    // The default model is the one trained last; cnn_default() changes it.
    assert.equal(db.prepare('SELECT cnn_default()').pluck().get(), 't');
    db.prepare("SELECT cnn_default('m')").get();
    const first = db.prepare('SELECT image, label FROM mnist_test WHERE id = 0').get();
    assert.ok(Buffer.isBuffer(first.image) && first.image.length === 784 && first.label === 7);
    assert.equal(db.prepare('SELECT cnn_predict(?)').pluck().get(first.image),
                 db.prepare("SELECT cnn_predict('m', ?)").pluck().get(first.image));

    // Batch predictions, written to a JSON file and read back.
    const preds = predictions(db, 'm');
    const correct = preds.filter((p) => p.label === p.predicted).length;
    assert.ok(correct > 0.5 * TEST_ROWS, `${correct}/${TEST_ROWS} correct`);
    assert.ok(new Set(preds.map((p) => p.predicted)).size >= 8, 'predictions cover the classes');
    const out = process.env.CNN_NODE_OUT || join(dir, 'predictions.json');
    writeFileSync(out, JSON.stringify({ model: 'm', rows: preds }));
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')).rows, preds);

    // Errors arrive as exceptions naming the function.
    assert.throws(() => db.prepare("SELECT cnn_predict('nope', ?)").get(first.image), /cnn_predict: /);
    assert.throws(() => train(db, 'm', TRAIN_ROWS, { epochs: 1, bogus: 1 }), /cnn_train: /);
    db.close();
    console.log(`ok: better-sqlite3 on SQLite ${sqliteVersion()}, ${correct}/${TEST_ROWS} test digits right ` +
                `after one epoch; max_seconds stopped 1000 epochs after ${t.epochs_run} (${elapsed.toFixed(2)} s)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sqliteVersion() {
  const db = new Database(':memory:');
  const v = db.prepare('SELECT sqlite_version()').pluck().get();
  db.close();
  return v;
}

const [mode, ...args] = process.argv.slice(2);
if (mode === undefined) {
  fullTest();
} else if (mode === 'predict' && args.length === 3) {
  const [path, name, out] = args;
  const db = new Database(path, { fileMustExist: true });
  db.loadExtension(SO);
  writeFileSync(out, JSON.stringify({ model: name, rows: predictions(db, name) }));
  db.close();
} else if (mode === 'train' && args.length === 2) {
  const [path, jobPath] = args;
  const job = JSON.parse(readFileSync(jobPath, 'utf8'));
  if (existsSync(path)) throw new Error(`test_node.mjs train: ${path} exists; give a new file`);
  const db = open(path);
  assert.equal(db.prepare('SELECT cnn_import_mnist(?)').pluck().get(DATA), 70000);
  db.prepare('SELECT cnn_create(?, ?, ?)').get(job.model, job.spec, BigInt(job.seed));
  const result = train(db, job.model, job.source, job.options);
  console.log(JSON.stringify({ result, export_sha256: exportHash(db, job.model) }));
  db.close();
} else {
  console.error('usage: node test_node.mjs [predict DB MODEL OUT.json | train DB JOB.json]');
  process.exit(2);
}
