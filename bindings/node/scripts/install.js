// The package's install script: puts cnn.so at lib/cnn.so, where index.js
// finds it. In order:
//   SQLITE_CNN_SO=/path/cnn.so   copies a cnn.so built beforehand;
//   SQLITE_CNN_SOURCE=/checkout  builds it with that checkout's CMake;
//   otherwise it builds with the CMake of the checkout this package sits in
//   (npm install ./bindings/node), when there is one.
// The build: Release, target cnn only, CMAKE_BUILD_PARALLEL_LEVEL jobs
// (default 2), in build/ beside this package, kept for the next install.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const pkg = path.resolve(__dirname, '..');
const target = path.join(pkg, 'lib', 'cnn.so');

function fail(message) {
  console.error(`sqlite-cnn: ${message}`);
  process.exit(1);
}

function isCheckout(dir) {
  try {
    return /project\(\s*sqlite-cnn\s+VERSION/.test(fs.readFileSync(path.join(dir, 'CMakeLists.txt'), 'utf8'));
  } catch {
    return false;
  }
}

function cmake(args, env) {
  try {
    // CMake's output goes to stderr: npm shows it when the install fails.
    execFileSync('cmake', args, { env, stdio: ['ignore', process.stderr, process.stderr] });
  } catch (e) {
    if (e.code === 'ENOENT') {
      fail('building cnn.so needs cmake, a C compiler and the libraries of tools/deps.sh ' +
           '(Debian: sudo sh tools/deps.sh), or a built cnn.so named by SQLITE_CNN_SO');
    }
    fail(`cmake ${args.join(' ')} failed (${e.message.split('\n')[0]})`);
  }
}

function build() {
  const given = process.env.SQLITE_CNN_SOURCE;
  const source = path.resolve(given || path.join(pkg, '..', '..'));
  if (!isCheckout(source)) {
    fail(given ? `SQLITE_CNN_SOURCE names ${source}, which is no sqlite-cnn checkout (no project(sqlite-cnn) in its CMakeLists.txt)`
               : 'no cnn.so to install: set SQLITE_CNN_SO to a built cnn.so, or SQLITE_CNN_SOURCE to a ' +
                 'sqlite-cnn checkout to build one (installing the checkout\'s bindings/node finds it by itself)');
  }
  const dir = path.join(pkg, 'build');
  const env = { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL || '2' };
  cmake(['-S', source, '-B', dir, '-DCMAKE_BUILD_TYPE=Release'], env);
  cmake(['--build', dir, '--target', 'cnn'], env);
  return path.join(dir, 'cnn.so');
}

let so = process.env.SQLITE_CNN_SO;
if (so) {
  if (!fs.statSync(so, { throwIfNoEntry: false })?.isFile()) fail(`SQLITE_CNN_SO names ${so}, which is not a file`);
} else {
  so = build();
}
// Copied under another name and renamed: a failed copy never leaves a partial cnn.so.
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(so, `${target}.tmp`);
fs.renameSync(`${target}.tmp`, target);
console.log(`sqlite-cnn: installed ${target}`);
