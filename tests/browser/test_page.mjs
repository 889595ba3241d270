// test_page.mjs - the digit page in a real browser. Creates a database,
// trains a small model on MNIST rows, starts tools/serve.sh on a free port,
// opens the page in headless chromium (playwright-core), draws an 8 and a 1
// with the mouse and checks what the model reads, uploads a photo, switches
// models, uploads a non-image and an oversized file and checks the errors the
// page shows with their HTTP status, checks the server's answers to bad
// requests, and that the browser's console stayed free of errors (besides
// the two refused uploads). Run by run.sh, which installs what it needs.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const here = path.dirname(new URL(import.meta.url).pathname);
const ROOT = process.env.CNN_ROOT || path.resolve(here, '..', '..');
const DATA = process.env.CNN_DATA || path.join(ROOT, 'data');
const SO = process.env.CNN_SO || path.join(ROOT, 'build', 'cnn.so');
const CHROMIUM = process.env.CNN_CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.CNN_PAGE_SCREENSHOT || path.resolve('page.png');
// The processes that load cnn.so get the sanitizer build's preload back.
const hostEnv = { ...process.env, CNN_SO: SO };
if (process.env.CNN_HOST_PRELOAD) hostEnv.LD_PRELOAD = process.env.CNN_HOST_PRELOAD;

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cnn-page-'));
const db = path.join(tmp, 'page.db');
let server = null;
let browser = null;

// A notebook-like model, small enough to train in seconds; enough MNIST rows
// to read clear strokes.
const SPEC = JSON.stringify({ input: [28, 28, 1], layers: [
  { type: 'conv2d', filters: 16, kernel: 3, activation: 'relu' },
  { type: 'maxpool', size: 2 },
  { type: 'conv2d', filters: 32, kernel: 3, activation: 'relu' },
  { type: 'maxpool', size: 2 },
  { type: 'flatten' },
  { type: 'dense', units: 64, activation: 'relu' },
  { type: 'dense', units: 10 },
] });
const TINY = JSON.stringify({ input: [28, 28, 1], layers: [
  { type: 'flatten' }, { type: 'dense', units: 10 }] });

// The sqlite3 shell on the test's database; its output.
function sqlite(script) {
  const r = spawnSync('sqlite3', ['-batch', '-bail', db], { input: script, env: hostEnv, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3 failed:\n${script}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function createDatabase() {
  const q = (s) => `'${s.replace(/'/g, "''")}'`;
  const script = `.load ${SO}
PRAGMA journal_mode = WAL;
CREATE TABLE train AS SELECT image, label FROM cnn_mnist(${q(path.join(DATA, 'train-images-idx3-ubyte.gz'))},
  ${q(path.join(DATA, 'train-labels-idx1-ubyte.gz'))}) LIMIT 6000;
CREATE TABLE test AS SELECT image, label FROM cnn_mnist(${q(path.join(DATA, 't10k-images-idx3-ubyte.gz'))},
  ${q(path.join(DATA, 't10k-labels-idx1-ubyte.gz'))}) LIMIT 1000;
SELECT cnn_create('digits', ${q(SPEC)}, 1);
SELECT cnn_train('digits', 'train', '{"epochs": 4, "seed": 1, "validation": "test"}');
SELECT cnn_create('another', ${q(TINY)}, 2);
SELECT cnn_train('another', 'SELECT image, label FROM train LIMIT 500', '{"epochs": 2, "seed": 2}');
SELECT cnn_create('fresh', ${q(TINY)}, 3);
SELECT cnn_default('digits');
`;
  const started = Date.now();
  const out = sqlite(script);
  const run = JSON.parse(out.split('\n').find((l) => l.includes('"model":"digits"')));
  console.log(`trained 'digits' in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
              `val_accuracy ${run.val_accuracy}`);
  check(run.val_accuracy >= 0.9, `the page's model reads MNIST (val_accuracy ${run.val_accuracy} >= 0.9)`);
}

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn('sh', [path.join(ROOT, 'tools', 'serve.sh'), db, '--port', '0'],
                   { env: hostEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    server.out = '';
    server.err = '';
    const timer = setTimeout(() => reject(new Error(`no URL from the server:\n${server.out}\n${server.err}`)),
                             60000);
    server.stdout.on('data', (d) => {
      server.out += d;
      const m = server.out.match(/open (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.stderr.on('data', (d) => { server.err += d; });
    server.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}):\n${server.out}\n${server.err}`));
    });
  });
}

// One raw HTTP request: node:http lets a test send what a browser would not
// (any method, a Host header, chunked bodies).
function request(url, { method = 'GET', headers = {}, body = null, path: raw } = {}) {
  if (body !== null && !headers['Transfer-Encoding']) headers = { 'Content-Length': Buffer.byteLength(body), ...headers };
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, ...(raw ? { path: raw } : {}) }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
                                    body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

async function checkHttp(base) {
  const json = (r) => JSON.parse(r.body);
  const png = Buffer.from('89504e470d0a1a0a', 'hex');
  let r = await request(`${base}nowhere`);
  check(r.status === 404 && json(r).error === 'no page at /nowhere', 'unknown path: 404 and a JSON error');
  r = await request(base, { path: '/../../etc/passwd' });
  check(r.status === 404 && json(r).error === 'no page at /../../etc/passwd', 'a path out of the page: 404');
  r = await request(base, { method: 'PUT', body: 'x' });
  check(r.status === 405 && r.headers.allow === 'GET, POST' && /only GET and POST/.test(json(r).error),
        'PUT: 405 with Allow: GET, POST');
  r = await request(base, { method: 'DELETE' });
  check(r.status === 405, 'DELETE: 405');
  r = await request(`${base}api/models`, { headers: { Host: 'attacker.example:80' } });
  check(r.status === 421, 'a request naming another host (DNS rebinding): 421');
  r = await request(`${base}api/predict`, { method: 'POST', body: 'just some text' });
  check(r.status === 415 && /not an image/.test(json(r).error), 'a text body: 415 not an image');
  r = await request(`${base}api/predict`, { method: 'POST', body: Buffer.concat([png, Buffer.alloc(3e6)]) });
  check(r.status === 413 && /limit is 2097152/.test(json(r).error), 'a 3 MB body: 413');
  r = await request(`${base}api/predict`, { method: 'POST', headers: { 'Content-Length': '0' } });
  check(r.status === 400 && /no body/.test(json(r).error), 'an empty body: 400');
  r = await request(`${base}api/predict`, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' },
                                            body: png });
  check(r.status === 411, 'a chunked body: 411 Length Required');
  r = await request(`${base}api/predict`, { method: 'POST', body: Buffer.concat([png, Buffer.from('junk')]) });
  check(r.status === 400 && /^cnn_predict_proba: image must be/.test(json(r).error),
        `a corrupt PNG: 400 with the decoder's message (${json(r).error})`);
  const eight = fs.readFileSync(path.join(DATA, 'digits', '8.jpg'));
  r = await request(`${base}api/predict?model=${encodeURIComponent("no'such")}`, { method: 'POST', body: eight });
  check(r.status === 404 && json(r).error === "no model named 'no'such'", 'an unknown model: 404');
  r = await request(`${base}api/predict?model=digits`, { method: 'POST', body: eight });
  const answer = json(r);
  const sum = answer.probabilities.reduce((a, b) => a + b, 0);
  check(r.status === 200 && answer.predicted === 8 && Math.abs(sum - 1) < 1e-4 &&
        answer.seen.startsWith('data:image/png;base64,'), 'the photo of an 8 by POST: 8');
  r = await request(`${base}api/history.svg?model=fresh`);
  check(r.status === 404 && /no completed epochs/.test(json(r).error), 'history of an untrained model: 404');
  r = await request(`${base}api/history.svg?model=digits`);
  check(r.status === 200 && r.headers['content-type'].startsWith('image/svg+xml') && r.body.includes('<svg'),
        'history of a trained model: an SVG');
  r = await request(`${base}api/models`);
  check(r.headers['content-security-policy'].includes("default-src 'none'") &&
        r.headers['x-content-type-options'] === 'nosniff', 'security headers');
}

async function main() {
  createDatabase();
  const base = await startServer();
  check(/listening on 127\.0\.0\.1 only/.test(server.out), `the server says it listens on 127.0.0.1 only (${base})`);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));

  await page.goto(base);
  await page.waitForSelector('#model option', { state: 'attached' });
  const options = await page.$$eval('#model option', (os) => os.map((o) => o.value));
  check(JSON.stringify(options) === '["another","digits","fresh"]', `the select lists the models (${options})`);
  check(await page.inputValue('#model') === 'digits', "the database's default model is chosen");
  await page.waitForFunction(() => document.querySelector('#history').complete &&
                                   document.querySelector('#history').naturalWidth > 0);
  check((await page.getAttribute('#history', 'src')).includes('model=digits'), "the default model's history chart shows");
  check(/4 epochs/.test(await page.textContent('#model-facts')), 'the model facts name its epochs');

  // Strokes: lists of points around the pad's centre; each stroke is pen
  // down, moves, pen up. The page asks the server after every pen-up: the
  // answer to the last one counts.
  async function draw(strokes) {
    const box = await page.locator('#pad').boundingBox();
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    let answer = null;
    for (const points of strokes) {
      await page.mouse.move(cx + points[0][0], cy + points[0][1]);
      await page.mouse.down();
      for (const [x, y] of points.slice(1)) await page.mouse.move(cx + x, cy + y);
      const response = page.waitForResponse((r) => r.url().includes('/api/predict'));
      await page.mouse.up();
      answer = await response;
    }
    check(answer.status() === 200, 'the drawing is accepted');
    return shown();
  }
  // The page's answer once it has read the server's: the digit shown.
  async function shown() {
    await page.waitForFunction(() => document.querySelector('main').getAttribute('aria-busy') === 'false');
    const text = await page.textContent('#predicted');
    return text === '–' ? null : Number(text);
  }
  const circle = (x0, y0, r, from) => Array.from({ length: 49 }, (_, i) => {
    const t = from + (2 * Math.PI * i) / 48;
    return [x0 + r * Math.cos(t), y0 + r * Math.sin(t)];
  });
  const line = (x0, y0, x1, y1) => Array.from({ length: 21 }, (_, i) =>
    [x0 + ((x1 - x0) * i) / 20, y0 + ((y1 - y0) * i) / 20]);

  // An 8: a smaller loop on a larger one.
  let predicted = await draw([circle(0, -52, 42, Math.PI / 2), circle(0, 48, 52, -Math.PI / 2)]);
  check(predicted === 8, `the drawn 8 reads as 8 (${predicted})`);
  check(await page.$$eval('#bars .bar', (bs) => bs.length) === 10, 'ten probability bars');
  check(await page.$eval('#bars .bar.top', (b) => b.dataset.digit) === '8', "the 8's bar is the top one");
  check(await page.$eval('#seen', (i) => i.naturalWidth === 224 && i.naturalHeight === 224),
        'the 28x28 image the model sees shows, enlarged to 224x224');
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log(`screenshot: ${SCREENSHOT}`);

  await page.click('#clear');
  check((await page.textContent('#predicted')) === '–' && await page.$eval('#seen', (i) => i.hidden),
        'Clear empties the prediction and the image');

  // A 1: one slightly slanted stroke.
  predicted = await draw([line(10, -100, -10, 100)]);
  check(predicted === 1, `the drawn 1 reads as 1 (${predicted})`);

  async function upload(file) {
    const response = page.waitForResponse((r) => r.url().includes('/api/predict'));
    await page.setInputFiles('#photo', file);
    return response;
  }
  let response = await upload(path.join(DATA, 'digits', '8.jpg'));
  check(response.status() === 200, 'the uploaded photo is accepted');
  predicted = await shown();
  check(predicted === 8, `a prediction appears for the photo: ${predicted}`);
  check(/8\.jpg/.test(await page.textContent('#source')), 'the page names the photo');

  // Another model: its chart, and the same photo read again by it.
  response = page.waitForResponse((r) => r.url().includes('/api/predict'));
  await page.selectOption('#model', 'another');
  response = await response;
  check(response.url().includes('model=another') && response.status() === 200 && (await shown()) !== null,
        'choosing a model reads the image again with it');
  await page.waitForFunction(() => document.querySelector('#history').src.includes('model=another') &&
                                   document.querySelector('#history').naturalWidth > 0);
  check(/2 epochs/.test(await page.textContent('#model-facts')), "the chosen model's chart and facts show");
  // Another connection trains it one more epoch while the page is open: the
  // next answer brings its new facts and chart.
  sqlite(`.load ${SO}\nSELECT cnn_train('another', 'SELECT image, label FROM train LIMIT 500', '{"epochs": 1}');`);
  response = await upload(path.join(DATA, 'digits', '8.jpg'));
  check(response.url().includes('model=another') && (await shown()) !== null, 'the photo read by the chosen model');
  await page.waitForFunction(() => document.querySelector('#history').src.includes('epochs=3') &&
                                   document.querySelector('#history').complete);
  check(/3 epochs/.test(await page.textContent('#model-facts')),
        'a model trained meanwhile by another connection shows its new epoch');
  response = page.waitForResponse((r) => r.url().includes('/api/predict'));
  await page.selectOption('#model', 'fresh');
  await response;
  check(await page.$eval('#history', (i) => i.hidden) && await page.isVisible('#history-empty'),
        'an untrained model: no chart, a note');
  response = page.waitForResponse((r) => r.url().includes('/api/predict'));
  await page.selectOption('#model', 'digits');
  await response;

  // Refused uploads: the page shows the server's message and status.
  response = await upload({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture\n') });
  check(response.status() === 415, 'a text file: HTTP 415');
  await page.waitForSelector('#error:not([hidden])');
  let message = await page.textContent('#error');
  check(/not an image/.test(message) && /415/.test(message), `the page shows the error (${message})`);
  check((await page.textContent('#predicted')) === '–', 'no prediction beside the error');

  const huge = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(3 * 1024 * 1024)]);
  response = await upload({ name: 'huge.png', mimeType: 'image/png', buffer: huge });
  check(response.status() === 413, 'a 3 MB file: HTTP 413');
  await page.waitForFunction(() => /413/.test(document.querySelector('#error').textContent));
  message = await page.textContent('#error');
  check(/limit is 2097152/.test(message), `the page shows the size error (${message})`);

  predicted = await draw([line(10, -100, -10, 100)]);
  check(predicted === 1 && await page.$eval('#error', (e) => e.hidden), 'a good drawing clears the error');

  // A phone: the page fits its width, and a finger draws (touch events become
  // pointer events; the pad does not scroll the page).
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2,
                                           isMobile: true, hasTouch: true });
  const mobile = await phone.newPage();
  mobile.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  mobile.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  await mobile.goto(base);
  await mobile.waitForSelector('#model option', { state: 'attached' });
  const pad = await mobile.locator('#pad').boundingBox();
  check(pad.x >= 0 && pad.x + pad.width <= 390 &&
        await mobile.evaluate(() => document.documentElement.scrollWidth <= 390),
        `on a 390-pixel-wide phone the page fits (pad at ${pad.x}..${pad.x + pad.width})`);
  const cdp = await phone.newCDPSession(mobile);
  const finger = line(10, -100, -10, 100).map(([x, y]) => ({ x: pad.x + pad.width / 2 + x,
                                                              y: pad.y + pad.height / 2 + y }));
  const touched = mobile.waitForResponse((r) => r.url().includes('/api/predict'));
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [finger[0]] });
  for (const point of finger.slice(1)) {
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [point] });
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  check((await touched).status() === 200, 'a finger stroke is sent');
  await mobile.waitForFunction(() => document.querySelector('main').getAttribute('aria-busy') === 'false');
  const fingered = await mobile.textContent('#predicted');
  check(fingered === '1' && await mobile.evaluate(() => window.scrollY === 0),
        `the 1 drawn with a finger reads as 1 (${fingered}), the page did not scroll`);
  await phone.close();

  await checkHttp(base);

  // The refused uploads are logged by the browser as failed loads; nothing else may be.
  const expected = [413, 415].map((s) => `Failed to load resource: the server responded with a status of ${s}`);
  const unexpected = consoleErrors.filter((e) => !expected.some((x) => e.startsWith(x)));
  check(unexpected.length === 0, `no console error besides the two refused uploads (${JSON.stringify(consoleErrors)})`);
  check(!/Traceback/.test(server.err), 'no stack trace in the server log');
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(e.stack || e);
  if (server) console.error(`--- server stdout:\n${server.out}\n--- server stderr:\n${server.err}`);
} finally {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    server.removeAllListeners('exit');
    server.kill();
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}
if (failed) process.exit(1);
console.log('page test passed');
