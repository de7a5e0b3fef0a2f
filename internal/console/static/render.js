// Rendering of one InferenceService as a section of the page. Every
// function here takes plain data and returns elements; app.js owns the
// state and the polling.
import { h, miniChart } from './dom.js';

const stepsKey = 'serving.ferryserve.io/rollout-steps';

export const fmt = {
  pct: (f) => (Number.isFinite(f) ? (f * 100).toFixed(f > 0 && f < 0.01 ? 2 : 1) + ' %' : '–'),
  ms: (s) => (Number.isFinite(s) ? (s * 1000).toFixed(s < 0.01 ? 2 : 1) + ' ms' : '–'),
  rps: (r) => (Number.isFinite(r) ? r.toFixed(r < 10 ? 2 : 0) : '–'),
  time: (t) => (t ? new Date(t).toLocaleTimeString() : ''),
};

export function serviceID(ns, name) {
  return 'svc-' + ns + '-' + name;
}

function condition(isvc, type) {
  return (isvc.status?.conditions || []).find((c) => c.type === type);
}

function readyBadge(isvc) {
  const c = condition(isvc, 'Ready');
  const st = c ? c.status : 'Unknown';
  const text = st === 'True' ? 'Ready' : st === 'False' ? 'Not ready' : 'Unknown';
  return h('span', { class: 'badge ready ready-' + st.toLowerCase(), dataset: { ready: st } }, text);
}

function conditionsTable(isvc) {
  const conds = isvc.status?.conditions || [];
  if (conds.length === 0) return h('p', { class: 'muted' }, 'No conditions yet.');
  return h('table', { class: 'conditions' },
    h('caption', {}, 'Conditions'),
    h('thead', {}, h('tr', {}, ['Type', 'Status', 'Reason', 'Message', 'Since'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, conds.map((c) => h('tr', { class: 'cond-' + String(c.status).toLowerCase() },
      h('th', { scope: 'row' }, c.type), h('td', {}, c.status), h('td', {}, c.reason || ''),
      h('td', {}, c.message || ''), h('td', {}, fmt.time(c.lastTransitionTime))))));
}

// trafficBar shows a component's split as proportional segments, with
// the same numbers as text for screen readers and the test.
function trafficBar(comp, traffic) {
  const parts = traffic.filter((t) => (t.percent ?? 0) > 0);
  const label = parts.map((t) => `${t.revisionName} ${t.percent}%`).join(', ') || 'no traffic';
  return h('div', { class: 'traffic', role: 'img', 'aria-label': comp + ' traffic: ' + label, dataset: { traffic: label } },
    parts.map((t, i) => h('span', { class: 'seg seg-' + (i % 4), width: t.percent + '%', title: t.revisionName },
      `${shortRev(t.revisionName)} ${t.percent}%`)));
}

function shortRev(name) {
  const m = /-(\d{5})$/.exec(name || '');
  return m ? '#' + Number(m[1]) : name;
}

function revisionsTable(comp, cs, revisions, replicas, stats) {
  const percent = new Map();
  const tags = new Map();
  for (const t of cs.traffic || []) {
    percent.set(t.revisionName, (percent.get(t.revisionName) || 0) + (t.percent ?? 0));
    if (t.tag) tags.set(t.revisionName, t.tag);
  }
  const revs = revisions.filter((r) => r.component === comp).sort((a, b) => b.number - a.number);
  if (revs.length === 0) return h('p', { class: 'muted' }, 'No revisions yet.');
  const roles = (name) => [
    name === cs.latestCreatedRevision && 'latest',
    name === cs.latestReadyRevision && 'ready',
    name === cs.latestRolledoutRevision && 'rolled out',
    tags.get(name) && 'tag ' + tags.get(name),
  ].filter(Boolean).join(', ');
  return h('table', { class: 'revisions' },
    h('caption', {}, 'Revisions'),
    h('thead', {}, h('tr', {}, ['Revision', 'Traffic', 'Replicas', 'Requests/s', 'Errors', 'Mean', 'p95', 'Last minute']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, revs.map((r) => {
      const reps = replicas.revisions?.[r.name] || [];
      const readyN = reps.filter((x) => x.phase === 'Ready').length;
      const desired = replicas.desired?.[r.name];
      const s = stats.get(r.name);
      const w = s?.now || {};
      return h('tr', { dataset: { revision: r.name } },
        h('th', { scope: 'row' }, h('span', { class: 'rev' }, r.name), h('span', { class: 'muted roles' }, roles(r.name))),
        h('td', { class: 'num traffic-percent' }, (percent.get(r.name) || 0) + ' %'),
        h('td', { class: 'num' }, `${readyN}/${reps.length}` + (desired !== undefined ? ` (want ${desired})` : '')),
        h('td', { class: 'num rps' }, fmt.rps(w.rps)),
        h('td', { class: 'num' + (w.errorRate > 0 ? ' bad' : '') }, fmt.pct(w.errorRate)),
        h('td', { class: 'num' }, fmt.ms(w.mean)),
        h('td', { class: 'num' }, fmt.ms(w.p95)),
        h('td', { class: 'minute' }, s && s.history.length > 1 ? minuteCharts(r.name, s.history) : ''));
    })));
}

// minuteCharts draws a revision's last minute: request rate, error rate
// and latency (mean and p95), one point per refresh; a refresh without
// requests leaves a gap in the error and latency lines.
function minuteCharts(rev, hist) {
  const pick = (k) => hist.map((p) => p[k]);
  return h('div', { class: 'minicharts' },
    h('span', { class: 'mini' }, h('span', { class: 'muted' }, 'req/s'),
      miniChart('chart-rps', [{ values: pick('rps'), cls: 's-rps' }], `requests per second of ${rev}, last minute`, fmt.rps)),
    h('span', { class: 'mini' }, h('span', { class: 'muted' }, 'errors'),
      miniChart('chart-errors', [{ values: pick('errorRate'), cls: 's-err' }], `error rate (5xx) of ${rev}, last minute`, fmt.pct)),
    h('span', { class: 'mini' }, h('span', { class: 'muted' }, 'latency ', h('span', { class: 'key-mean' }, 'mean'), ' ', h('span', { class: 'key-p95' }, 'p95')),
      miniChart('chart-latency', [{ values: pick('mean'), cls: 's-mean' }, { values: pick('p95'), cls: 's-p95' }],
        `mean and p95 latency of ${rev}, last minute`, fmt.ms)));
}

function rolloutPanel(svc, ro) {
  const stepsText = ro.policy?.[stepsKey] || '';
  const steps = stepsText.split(',').map((s) => s.trim()).filter(Boolean);
  const st = ro.state;
  let state = st ? st.phase : 'Waiting for a new revision';
  if (ro.paused && (!st || st.phase === 'Progressing')) state = 'Paused';
  const percent = st ? st.percent : (ro.canaryTrafficPercent ?? 0);
  const stepText = st ? `step ${st.step + 1} of ${steps.length}` : '';
  const btn = (action, label, extra) => h('button', {
    type: 'button', class: 'action action-' + action, dataset: { action, ns: svc.ns, name: svc.name, focusKey: 'rollout-' + action },
    ...extra,
  }, label);
  return h('section', { class: 'rollout', 'aria-label': 'Rollout of ' + svc.name },
    h('h3', {}, 'Rollout'),
    h('p', {},
      h('span', { class: 'badge rollout-state state-' + state.toLowerCase().replace(/\s+/g, '-') }, state), ' ',
      st ? `canary ${st.revision} at ${percent}% (${stepText})` : '', ' ',
      h('span', { class: 'muted' }, 'steps ' + (stepsText || '–'))),
    h('label', { class: 'progress' }, 'Canary traffic ',
      h('progress', { max: 100, value: percent, class: 'rollout-progress' }, percent + '%'), ' ' + percent + '%'),
    ro.policyError ? h('p', { class: 'bad' }, 'Policy invalid: ' + ro.policyError) : '',
    st && st.reason ? h('p', { class: 'decision' }, `Last decision (${st.lastAction || '–'}, ${fmt.time(st.updated)}): ${st.reason}`) : '',
    ro.rolledBack ? h('p', { class: 'bad' }, 'Rolled back: ' + ro.rolledBack) : '',
    h('div', { class: 'actions' },
      btn('pause', 'Pause', { disabled: ro.paused || !st || st.phase !== 'Progressing' }),
      btn('resume', 'Resume', { disabled: !ro.paused }),
      btn('abort', 'Abort', { disabled: !st || st.phase !== 'Progressing' })));
}

function replicasTable(replicas) {
  const rows = [];
  for (const [rev, reps] of Object.entries(replicas.revisions || {}).sort()) {
    for (const r of reps) rows.push([rev, r]);
  }
  if (rows.length === 0) return h('p', { class: 'muted' }, 'No replicas running.');
  return h('table', { class: 'replicas' },
    h('caption', {}, 'Replicas'),
    h('thead', {}, h('tr', {}, ['Replica', 'Revision', 'Phase', 'Restarts', 'Last exit', 'Since'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map(([rev, r]) => h('tr', {},
      h('th', { scope: 'row' }, r.name), h('td', {}, rev),
      h('td', { class: 'phase phase-' + String(r.phase).toLowerCase() }, r.phase),
      h('td', { class: 'num' + (r.restarts > 0 ? ' bad' : '') }, String(r.restarts)),
      h('td', {}, r.lastExit || ''), h('td', {}, fmt.time(r.since))))));
}

function eventsList(events) {
  const recent = events.slice(-10).reverse();
  if (recent.length === 0) return h('p', { class: 'muted' }, 'No events.');
  return h('ol', { class: 'events', 'aria-label': 'Recent events, newest first' },
    recent.map((e) => h('li', { class: 'event-' + String(e.type).toLowerCase() },
      h('time', { datetime: e.time }, fmt.time(e.time)), ' ',
      h('strong', {}, e.reason), ' ', e.message)));
}

// renderService returns the live part of one service's section, which
// each refresh replaces (app.js keeps the tools next to it). view holds
// the isvc object, its revisions, replicas, events, rollout status (or
// null) and per-revision stats (Map revision → {now, history}).
export function renderService(view) {
  const { isvc } = view;
  const ns = isvc.metadata.namespace;
  const name = isvc.metadata.name;
  const id = serviceID(ns, name);
  const comps = Object.entries(isvc.status?.components || {}).sort(([a], [b]) => a.localeCompare(b));
  return h('div', { class: 'live' },
    h('header', {},
      h('h2', { id: id + '-h' }, name, ' ', h('span', { class: 'ns' }, ns)),
      readyBadge(isvc),
      isvc.status?.url ? h('code', { class: 'url' }, isvc.status.url) : '',
      h('span', { class: 'muted' }, `generation ${isvc.metadata.generation ?? '–'}`)),
    conditionsTable(isvc),
    comps.map(([comp, cs]) => h('div', { class: 'component', dataset: { component: comp } },
      h('h3', {}, comp),
      trafficBar(comp, cs.traffic || []),
      revisionsTable(comp, cs, view.revisions, view.replicas, view.stats))),
    view.rollout ? rolloutPanel({ ns, name }, view.rollout) : '',
    h('div', { class: 'cols' },
      h('div', {}, replicasTable(view.replicas)),
      h('div', {}, h('h3', {}, 'Recent events'), eventsList(view.events))));
}

// renderTrainedModels lists every TrainedModel: name, namespace, the
// InferenceService it is loaded into, its URL and Ready.
export function renderTrainedModels(items) {
  const sorted = [...items].sort((a, b) =>
    (a.metadata.namespace + '/' + a.metadata.name).localeCompare(b.metadata.namespace + '/' + b.metadata.name));
  return h('div', { class: 'live' },
    h('h2', { id: 'tms-h' }, 'TrainedModels'),
    sorted.length === 0 ? h('p', { class: 'muted' }, 'No TrainedModels.') : h('table', { class: 'trainedmodels' },
      h('caption', { class: 'visually-hidden' }, 'TrainedModels'),
      h('thead', {}, h('tr', {}, ['Name', 'Namespace', 'InferenceService', 'URL', 'Ready'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, sorted.map((tm) => {
        const ns = tm.metadata.namespace;
        return h('tr', { dataset: { trainedmodel: ns + '/' + tm.metadata.name } },
          h('th', { scope: 'row' }, tm.metadata.name),
          h('td', {}, ns),
          h('td', {}, tm.spec?.inferenceService || ''),
          h('td', {}, tm.status?.url ? h('code', { class: 'url' }, tm.status.url) : ''),
          h('td', {}, readyBadge(tm)));
      }))));
}
