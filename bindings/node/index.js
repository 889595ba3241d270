// sqlite-cnn for Node: the SQLite extension cnn.so, which trains, stores and
// runs a handwritten-digit CNN in SQL, for better-sqlite3 (or any database
// object with loadExtension(path), such as node:sqlite's with
// allowExtension). scripts/install.js put cnn.so in lib/ at install time.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** The path of the package's cnn.so. */
function getLoadablePath() {
  const so = path.join(__dirname, 'lib', 'cnn.so');
  if (!fs.existsSync(so)) {
    throw new Error(
      `sqlite-cnn: ${so} is missing: the package's install script did not run or failed ` +
        '(npm --ignore-scripts, or install scripts not allowed for sqlite-cnn: ' +
        '"allowScripts": {"sqlite-cnn": true} in package.json). Run: npm rebuild sqlite-cnn',
    );
  }
  return so;
}

/** Loads cnn.so into db, a better-sqlite3 Database. */
function load(db) {
  if (db === null || typeof db !== 'object' || typeof db.loadExtension !== 'function') {
    throw new TypeError('sqlite-cnn: load(db) takes a better-sqlite3 Database (an object with loadExtension)');
  }
  db.loadExtension(getLoadablePath());
}

exports.getLoadablePath = getLoadablePath;
exports.load = load;
