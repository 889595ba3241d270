// page.js - the digit page: draw on the pad or upload a photo, send the image
// to the server (tools/serve.py), show what the model sees, its prediction and
// the probability of each class; list the database's models and show the
// chosen one's accuracy history. Speaks only to the server's /api/.
'use strict';

const $ = (id) => document.getElementById(id);
const pad = $('pad');
const ctx = pad.getContext('2d');
// Pen width on the 280-pixel pad: cnn_preprocess fits the ink into 20x20, so a
// digit drawn across most of the pad keeps a stroke of about two pixels, as
// MNIST's pen.
const PEN = 24;

let models = [];
let pointer = null; // the pointer that draws, while it is down
let last = null; // its previous position
let photo = false; // the pad shows an uploaded photo
let lastImage = null; // the last image sent, sent again when the model changes
let sequence = 0; // answers to requests older than the latest are dropped

function blank() {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function position(e) {
  const scale = pad.width / pad.clientWidth;
  return { x: e.offsetX * scale, y: e.offsetY * scale };
}

function stroke(from, to) {
  ctx.strokeStyle = '#000';
  ctx.lineWidth = PEN;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

pad.addEventListener('pointerdown', (e) => {
  if (e.pointerType === 'mouse' && e.button !== 0) return;
  e.preventDefault();
  if (photo) {
    blank();
    photo = false;
  }
  pointer = e.pointerId;
  pad.setPointerCapture(e.pointerId);
  last = position(e);
  stroke(last, last);
});

pad.addEventListener('pointermove', (e) => {
  if (e.pointerId !== pointer) return;
  const events = (e.getCoalescedEvents && e.getCoalescedEvents()) || [];
  for (const each of events.length ? events : [e]) {
    const p = position(each);
    stroke(last, p);
    last = p;
  }
});

function penUp(e) {
  if (e.pointerId !== pointer) return;
  pointer = null;
  $('source').textContent = 'Your drawing.';
  pad.toBlob((blob) => send(blob), 'image/png');
}
pad.addEventListener('pointerup', penUp);
pad.addEventListener('pointercancel', penUp);

$('clear').addEventListener('click', () => {
  blank();
  photo = false;
  lastImage = null;
  sequence++; // an answer still on its way is for a picture that is gone
  busy(false);
  $('source').textContent = 'Nothing drawn yet.';
  hideError();
  showAnswer(null);
});

$('photo').addEventListener('change', async () => {
  const file = $('photo').files[0];
  $('photo').value = ''; // so that choosing the same file again is a change
  if (!file) return;
  blank();
  photo = true;
  $('source').textContent = `Photo: ${file.name} (${size(file.size)}).`;
  send(file);
  try {
    const bitmap = await createImageBitmap(file);
    const k = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const w = bitmap.width * k;
    const h = bitmap.height * k;
    ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    bitmap.close();
  } catch {
    // Not a picture the browser can show: the server's answer says why.
  }
});

function size(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function answerOf(response) {
  try {
    return await response.json();
  } catch {
    return { error: `the server answered ${response.status} ${response.statusText}` };
  }
}

async function send(image) {
  const mine = ++sequence;
  lastImage = image;
  busy(true);
  const model = $('model').value;
  let response, answer;
  try {
    response = await fetch(`api/predict?model=${encodeURIComponent(model)}`, {
      method: 'POST',
      headers: { 'Content-Type': image.type || 'application/octet-stream' },
      body: image,
    });
    answer = await answerOf(response);
  } catch (err) {
    if (mine !== sequence) return;
    showAnswer(null);
    showError(`The server cannot be reached (${err.message}). Is tools/serve.sh still running?`);
    busy(false);
    return;
  }
  if (mine !== sequence) return;
  if (response.ok) {
    hideError();
    showAnswer(answer);
    await loadModels();
    if (mine !== sequence) return;
  } else {
    showAnswer(null);
    showError(`${answer.error || 'the image was refused'} (HTTP ${response.status})`);
  }
  busy(false);
}

// aria-busy on the results while the model reads: screen readers wait for
// the answer, and so can anything that drives the page.
function busy(on) {
  document.querySelector('main').setAttribute('aria-busy', String(on));
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
}

function hideError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function bars(count) {
  const box = $('bars');
  if (box.children.length === count) return;
  box.replaceChildren();
  for (let k = 0; k < count; k++) {
    const row = document.createElement('div');
    row.className = 'bar';
    row.setAttribute('role', 'listitem');
    row.dataset.digit = k;
    const digit = document.createElement('span');
    digit.className = 'digit';
    digit.textContent = k;
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    track.append(fill);
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = '–';
    row.append(digit, track, value);
    box.append(row);
  }
}

function showAnswer(answer) {
  const seen = $('seen');
  if (!answer) {
    seen.hidden = true;
    seen.removeAttribute('src');
    $('seen-empty').hidden = false;
    $('predicted').textContent = '–';
    for (const row of $('bars').children) {
      row.classList.remove('top');
      row.querySelector('.fill').style.width = '0';
      row.querySelector('.value').textContent = '–';
    }
    return;
  }
  seen.src = answer.seen;
  seen.hidden = false;
  $('seen-empty').hidden = true;
  $('predicted').textContent = answer.predicted;
  bars(answer.probabilities.length);
  answer.probabilities.forEach((p, k) => {
    const row = $('bars').children[k];
    row.classList.toggle('top', k === answer.predicted);
    row.querySelector('.fill').style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector('.value').textContent = `${(100 * p).toFixed(1)}%`;
    row.title = `${k}: ${p}`;
  });
}

function percent(x) {
  return x == null ? null : `${(100 * x).toFixed(1)}%`;
}

function showModel() {
  const m = models.find((each) => each.name === $('model').value);
  if (!m) return;
  const facts = [`${m.params.toLocaleString('en')} parameters`,
    `${m.epochs} epoch${m.epochs === 1 ? '' : 's'}`];
  if (m.accuracy != null) facts.push(`accuracy ${percent(m.accuracy)}`);
  if (m.val_accuracy != null) facts.push(`validation accuracy ${percent(m.val_accuracy)}`);
  $('model-facts').textContent = facts.join(', ');
  const history = $('history');
  if (m.epochs > 0) {
    // The epoch count in the URL: the chart is fetched again when it grows.
    const src = `api/history.svg?model=${encodeURIComponent(m.name)}&epochs=${m.epochs}`;
    if (history.getAttribute('src') !== src) history.src = src;
    history.hidden = false;
    $('history-empty').hidden = true;
  } else {
    history.hidden = true;
    history.removeAttribute('src');
    $('history-empty').hidden = false;
  }
}

$('model').addEventListener('change', () => {
  showModel();
  if (lastImage) send(lastImage);
});

// The models of the database, read again after every answer: a model
// trained meanwhile by another connection shows its new epochs and chart.
async function loadModels() {
  let response, answer;
  try {
    response = await fetch('api/models');
    answer = await answerOf(response);
  } catch (err) {
    showError(`The server cannot be reached (${err.message}).`);
    return;
  }
  if (!response.ok) {
    showError(`${answer.error} (HTTP ${response.status})`);
    return;
  }
  models = answer.models;
  const select = $('model');
  const chosen = select.value;
  select.replaceChildren();
  for (const m of models) {
    const option = document.createElement('option');
    option.value = m.name;
    option.textContent = m.name === answer.default ? `${m.name} (default)` : m.name;
    select.append(option);
  }
  if (!models.length) {
    select.disabled = true;
    showError('This database has no model yet: train one with cnn_train (sh sql/demo.sh does).');
    return;
  }
  select.disabled = false;
  const keep = models.some((m) => m.name === chosen);
  select.value = keep ? chosen : answer.default || models[0].name;
  showModel();
}

blank();
bars(10);
busy(false);
loadModels();
