// The npm package sqlite-cnn as a project uses it, run by package.sh from a
// temporary project that installed it: its version, load() into
// better-sqlite3, a model trained on 300 MNIST rows predicting test digits,
// and the error of load() on something that is no database.
// Usage: node package.mjs VERSION MNIST_DIR PACKAGE_DIR
import assert from 'node:assert/strict';
import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import cnn, { getLoadablePath, load } from 'sqlite-cnn';

const [version, data, packageDir] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const manifest = JSON.parse(readFileSync(require.resolve('sqlite-cnn/package.json'), 'utf8'));
assert.equal(manifest.version, version, 'package.json and CMakeLists.txt state one version');
assert.equal(cnn.load, load);

const so = getLoadablePath();
assert.equal(realpathSync(so), realpathSync(`${packageDir}/lib/cnn.so`));

const db = new Database(':memory:');
load(db);
const one = (sql, ...args) => db.prepare(sql).pluck().get(...args);
assert.equal(one('SELECT cnn_version()'), version);

const SMALL = JSON.stringify({
  input: [28, 28, 1],
  layers: [
    { type: 'conv2d', filters: 8, kernel: 3, activation: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 10 },
  ],
});
assert.equal(one('SELECT cnn_import_mnist(?)', data), 70000);
assert.equal(one("SELECT cnn_create('m', ?, 7)", SMALL), 13610);
const r = JSON.parse(one("SELECT cnn_train('m', 'SELECT image, label FROM mnist_train WHERE id < 300', ?)",
                         JSON.stringify({ epochs: 5, seed: 1 })));
assert.equal(r.epochs_run, 5);
assert.equal(r.samples, 300);
const ev = JSON.parse(one("SELECT cnn_evaluate('m', 'SELECT image, label FROM mnist_test WHERE id < 200')"));
assert.ok(ev.count === 200 && ev.accuracy > 0.4, JSON.stringify(ev));
const row = db.prepare("SELECT cnn_predict('m', image) AS digit, cnn_predict_proba('m', image) AS proba " +
                       'FROM mnist_test WHERE id = 0').get();
const proba = JSON.parse(row.proba);
assert.ok(Number.isInteger(row.digit) && row.digit >= 0 && row.digit <= 9, JSON.stringify(row));
assert.equal(proba.indexOf(Math.max(...proba)), row.digit);
db.close();

assert.throws(() => load({}), /^TypeError: sqlite-cnn: load\(db\) takes a better-sqlite3 Database/);
console.log(`ok: sqlite-cnn ${version} from ${so}: accuracy ${ev.accuracy} after 300 rows, first test digit ${row.digit}`);
