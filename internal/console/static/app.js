// The console's entry point: takes the token from the fragment, polls the
// management API every 2 s, renders each service and carries out the
// rollout buttons.
import { APIError, getJSON, getText, hasToken, postJSON, servicePath, setToken, takeTokenFromFragment } from './api.js';
import { totals, window as statsWindow } from './metrics.js';
import { renderService, renderTrainedModels, serviceID } from './render.js';
import { h } from './dom.js';
import { createTools, updateTools } from './tools.js';

const pollMillis = 2000;
const historyLength = 30; // one minute of points at 2 s

const $ = (id) => document.getElementById(id);
const statusLine = $('status');
const main = $('services');

// prevTotals is the last scrape of /metrics and when it was taken;
// history keeps each revision's recent windows (rps, error rate, mean
// and p95 latency), oldest first.
let prevTotals = null;
let prevAt = 0;
const history = new Map();
let timer = 0;
let running = false;

function say(text, bad) {
  statusLine.textContent = text;
  statusLine.classList.toggle('bad', Boolean(bad));
}

function askForToken(reason) {
  $('token-reason').textContent = reason;
  $('token-form').hidden = false;
  $('token-input').focus();
}

// revisionStats turns a new /metrics scrape into per-revision numbers
// (Map "ns/revision" → {now, history}).
function revisionStats(text) {
  const now = performance.now();
  const cur = totals(text);
  const out = new Map();
  for (const [key, t] of cur) {
    const prev = prevTotals?.get(key);
    if (!prevTotals) continue; // the first scrape has nothing to compare with
    const w = statsWindow(prev, t, (now - prevAt) / 1000);
    const h = history.get(key) || [];
    h.push(w);
    if (h.length > historyLength) h.shift();
    history.set(key, h);
    out.set(key, { now: w, history: h });
  }
  if (!prevTotals || now - prevAt >= pollMillis / 2) {
    prevTotals = cur;
    prevAt = now;
  }
  return out;
}

async function loadService(isvc, stats) {
  const ns = isvc.metadata.namespace;
  const name = isvc.metadata.name;
  const hasPolicy = Boolean(isvc.metadata.annotations?.['serving.ferryserve.io/rollout-steps']);
  const [revisions, replicas, events, rollout] = await Promise.all([
    getJSON(servicePath(ns, name, 'revisions')),
    getJSON(servicePath(ns, name, 'replicas')),
    getJSON(servicePath(ns, name, 'events')),
    hasPolicy ? getJSON(servicePath(ns, name, 'rollout')) : null,
  ]);
  const byRev = new Map();
  for (const [key, s] of stats) {
    if (key.startsWith(ns + '/')) byRev.set(key.slice(ns.length + 1), s);
  }
  return { isvc, revisions: revisions.items || [], replicas, events: events.items || [], rollout, stats: byRev };
}

// replace swaps old for fresh, keeping keyboard focus on the control with
// the same data-focus-key so a refresh never steals it.
function replace(old, fresh, parent) {
  const focused = old && old.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
  if (old) old.replaceWith(fresh);
  else (parent || main).append(fresh);
  if (focused) fresh.querySelector(`[data-focus-key="${focused}"]`)?.focus();
}

// serviceSection returns the section of a service, created with its
// tools on first sight; after that only its live part is replaced.
function serviceSection(view, tms) {
  const ns = view.isvc.metadata.namespace;
  const name = view.isvc.metadata.name;
  const id = serviceID(ns, name);
  const live = renderService(view);
  let sec = document.getElementById(id);
  if (!sec) {
    sec = h('section', { class: 'svc', id, 'aria-labelledby': id + '-h', dataset: { ns, name } }, live, createTools(id, view.isvc));
    main.append(sec);
  } else {
    replace(sec.querySelector(':scope > .live'), live);
  }
  const own = tms.filter((tm) => tm.metadata.namespace === ns && tm.spec?.inferenceService === name);
  updateTools(sec.querySelector(':scope > .tools'), view.isvc, own);
  return sec;
}

function renderTMs(items) {
  const box = $('trainedmodels');
  box.hidden = items.length === 0;
  replace(box.querySelector(':scope > .live'), renderTrainedModels(items), box);
}

async function refresh() {
  const [list, tmList, metrics] = await Promise.all([
    getJSON('/api/v1/inferenceservices'),
    getJSON('/api/v1/trainedmodels'),
    getText('/api/v1/revision-metrics').catch(() => ''),
  ]);
  const tms = tmList.items || [];
  renderTMs(tms);
  const stats = revisionStats(metrics);
  const items = (list.items || []).sort((a, b) =>
    (a.metadata.namespace + '/' + a.metadata.name).localeCompare(b.metadata.namespace + '/' + b.metadata.name));
  const views = await Promise.all(items.map((isvc) => loadService(isvc, stats)));
  const keep = new Set();
  let prev = null;
  for (const v of views) {
    const fresh = serviceSection(v, tms);
    keep.add(fresh.id);
    // Keep the sections in name order.
    if (prev ? prev.nextElementSibling !== fresh : main.firstElementChild !== fresh) {
      if (prev) prev.after(fresh);
      else main.prepend(fresh);
    }
    prev = fresh;
  }
  for (const el of [...main.children]) {
    if (!keep.has(el.id)) el.remove();
  }
  if (views.length === 0 && !main.querySelector('.empty')) {
    main.append(Object.assign(document.createElement('p'), { className: 'empty muted', textContent: 'No InferenceServices. Apply one with ferry apply -f FILE.' }));
  }
  say(`${views.length} service${views.length === 1 ? '' : 's'} · updated ${new Date().toLocaleTimeString()}`);
}

// tick runs one refresh and schedules the next: never two at once.
async function tick() {
  clearTimeout(timer);
  if (running) return;
  running = true;
  try {
    await refresh();
  } catch (err) {
    if (err instanceof APIError && err.status === 401) {
      askForToken('The API refused the token: ' + err.message);
      say('Not signed in.', true);
      running = false;
      return; // resumes when a token is entered
    }
    say('Refresh failed: ' + err.message, true);
  } finally {
    running = false;
  }
  if ($('live').checked) timer = setTimeout(tick, pollMillis);
}

async function onAction(ev) {
  const btn = ev.target.closest('button[data-action]');
  if (!btn) return;
  const { action, ns, name } = btn.dataset;
  if (action === 'abort' && !window.confirm(`Roll back ${ns}/${name} now?`)) return;
  btn.disabled = true;
  try {
    await postJSON(servicePath(ns, name, 'rollout/' + action), {});
    say(`Rollout of ${ns}/${name}: ${action} requested.`);
  } catch (err) {
    say(`Rollout ${action} of ${ns}/${name} failed: ${err.message}`, true);
  }
  tick();
}

function start() {
  takeTokenFromFragment();
  main.addEventListener('click', onAction);
  $('live').addEventListener('change', () => {
    if ($('live').checked) tick();
    else clearTimeout(timer);
  });
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken($('token-input').value);
    $('token-input').value = '';
    $('token-form').hidden = true;
    tick();
  });
  if (!hasToken()) {
    askForToken('This console needs the management API token.');
    say('Not signed in.', true);
    return;
  }
  tick();
}

start();
