// The tools of one service, built once and kept across refreshes (a
// refresh replaces only the live part next to them, so what a person
// typed or opened stays): the test-request form with its explanation
// chart, and the logs of a component.
import { getJSON, postText, servicePath } from './api.js';
import { h, svg } from './dom.js';

// The example body: one iris row, which the examples' models take; a
// person edits it for another model.
const exampleRows = [[6.8, 2.8, 4.8, 1.4]];

// specProtocol reads the predictor's protocolVersion (v1 unless v2).
export function specProtocol(isvc) {
  for (const v of Object.values(isvc.spec?.predictor || {})) {
    if (v && typeof v === 'object' && typeof v.protocolVersion === 'string') {
      return v.protocolVersion.toLowerCase().includes('v2') ? 'v2' : 'v1';
    }
  }
  return 'v1';
}

// indent writes v as indented JSON with arrays of numbers kept on one
// line, so a row reads as a row.
export function indent(v) {
  return JSON.stringify(v, null, 2).replace(/\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]/g,
    (_, inner) => '[' + inner.split(/,\s*/).join(', ') + ']');
}

// exampleBody writes rows as a request of the protocol.
export function exampleBody(protocol, rows) {
  if (protocol === 'v2') {
    return indent({ inputs: [{ name: 'input-0', shape: [rows.length, rows[0]?.length ?? 0], datatype: 'FP32', data: rows }] });
  }
  return indent({ instances: rows });
}

// rowsOf reads the rows back from a V1 or V2 body (null if it cannot), so
// switching the protocol keeps the numbers a person typed.
export function rowsOf(text) {
  let b;
  try {
    b = JSON.parse(text);
  } catch (_) {
    return null;
  }
  if (Array.isArray(b?.instances) && b.instances.every(Array.isArray)) return b.instances;
  const in0 = b?.inputs?.[0];
  if (!in0 || !Array.isArray(in0.data)) return null;
  if (in0.data.every(Array.isArray)) return in0.data;
  const [n, m] = Array.isArray(in0.shape) && in0.shape.length === 2 ? in0.shape : [1, in0.data.length];
  if (n * m !== in0.data.length) return null;
  return Array.from({ length: n }, (_, i) => in0.data.slice(i * m, (i + 1) * m));
}

// attributions finds per-feature attributions in an explanation (SHAP
// values: data.shap_values[output][row][feature]) for the first row:
// {names, outputs: [[value per feature] per output], pick, expected}, or
// null for an explanation of another kind (anchors).
export function attributions(resp) {
  const d = resp?.data;
  let sv = d?.shap_values;
  if (!Array.isArray(sv) || sv.length === 0) return null;
  if (!Array.isArray(sv[0]?.[0])) sv = [sv]; // one output written as [row][feature]
  const outputs = sv.map((o) => (o[0] || []).map(Number));
  const n = outputs[0].length;
  if (n === 0) return null;
  const names = Array.isArray(d.feature_names) && d.feature_names.length === n
    ? d.feature_names.map(String) : Array.from({ length: n }, (_, i) => 'f' + i);
  let pick = 0;
  const raw = d.raw?.raw_prediction?.[0];
  if (outputs.length > 1 && Array.isArray(raw) && raw.length === outputs.length) {
    pick = raw.reduce((best, v, i) => (v > raw[best] ? i : best), 0);
  }
  const expected = Array.isArray(d.expected_value) ? d.expected_value : [d.expected_value];
  return { names, outputs, pick, expected };
}

// barChart draws one output's attributions as horizontal bars around
// zero, largest first: positive to the right, negative to the left, each
// with its feature name and value as text.
export function barChart(names, values, label) {
  const rows = names.map((n, i) => ({ n, v: values[i] })).sort((a, b) => Math.abs(b.v) - Math.abs(a.v));
  const W = 560;
  const rowH = 22;
  const labelW = 150;
  const valueW = 80;
  const barW = W - labelW - valueW;
  const H = rows.length * rowH + 6;
  const max = Math.max(...rows.map((r) => Math.abs(r.v)).filter(Number.isFinite), 1e-12);
  const x0 = labelW + barW / 2;
  const scale = (barW / 2 - 2) / max;
  const el = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'attributions', role: 'img', 'aria-label': label });
  el.append(svg('title', {}, label));
  rows.forEach((r, i) => {
    const y = 3 + i * rowH;
    const v = Number.isFinite(r.v) ? r.v : 0;
    const wBar = Math.abs(v) * scale;
    const g = svg('g', { class: 'attr', 'data-feature': r.n, 'data-value': String(v) });
    g.append(svg('text', { x: labelW - 6, y: y + 13, 'text-anchor': 'end', class: 'feature' }, r.n));
    g.append(svg('rect', { x: (v >= 0 ? x0 : x0 - wBar).toFixed(1), y, width: Math.max(wBar, 0.5).toFixed(1), height: rowH - 6, class: 'bar ' + (v >= 0 ? 'pos' : 'neg') }));
    g.append(svg('text', { x: W - 2, y: y + 13, 'text-anchor': 'end', class: 'value' }, (v >= 0 ? '+' : '') + v.toPrecision(3)));
    el.append(g);
  });
  el.append(svg('line', { x1: x0, y1: 0, x2: x0, y2: H, class: 'zero' }));
  return el;
}

function explanationView(resp) {
  const a = attributions(resp);
  if (!a) return h('p', { class: 'muted' }, 'This explanation has no per-feature attributions to chart; its JSON is below.');
  const box = h('div', { class: 'explanation' });
  const draw = (k) => {
    const label = `Feature attributions for output ${k}` + (a.outputs.length > 1 && k === a.pick ? ' (the predicted class)' : '') +
      (Number.isFinite(a.expected[k]) ? `, from the expected value ${Number(a.expected[k]).toPrecision(3)}` : '');
    box.replaceChildren(h('p', { class: 'chart-caption' }, label), barChart(a.names, a.outputs[k], label));
  };
  draw(a.pick);
  if (a.outputs.length === 1) return box;
  const sel = h('select', { class: 'output' }, a.outputs.map((_, k) =>
    h('option', { value: k, selected: k === a.pick }, `output ${k}` + (k === a.pick ? ' (predicted)' : ''))));
  sel.addEventListener('change', () => draw(Number(sel.value)));
  return h('div', {}, h('label', {}, 'Output ', sel), box);
}

function pretty(text) {
  try {
    return indent(JSON.parse(text));
  } catch (_) {
    return text;
  }
}

// tryPanel is the test-request form: protocol, model name, a JSON body
// and Send / Explain, sent through POST …/infer.
function tryPanel(id, ns, name, isvc) {
  const protocol = specProtocol(isvc);
  const proto = h('select', { id: id + '-proto', class: 'proto' },
    h('option', { value: 'v1', selected: protocol === 'v1' }, 'V1 (:predict)'),
    h('option', { value: 'v2', selected: protocol === 'v2' }, 'V2 (/infer)'));
  const model = h('input', { id: id + '-model', class: 'model', value: name, list: id + '-models', spellcheck: 'false', autocomplete: 'off' });
  const models = h('datalist', { id: id + '-models' });
  const body = h('textarea', { id: id + '-body', class: 'body', rows: 6, spellcheck: 'false' });
  body.value = exampleBody(protocol, exampleRows);
  const send = h('button', { type: 'submit', class: 'send' }, 'Send');
  const explain = h('button', { type: 'button', class: 'explain', hidden: !isvc.spec?.explainer }, 'Explain');
  const status = h('p', { class: 'result-status', role: 'status', 'aria-live': 'polite' });
  const chart = h('div', { class: 'result-chart' });
  const out = h('pre', { class: 'result-body', hidden: true });
  const form = h('form', { class: 'try-form', novalidate: true },
    h('div', { class: 'row' },
      h('label', { for: proto.id }, 'Protocol'), proto,
      h('label', { for: model.id }, 'Model'), model, models),
    h('label', { for: body.id }, 'Request body (JSON)'), body,
    h('div', { class: 'actions' }, send, explain));
  model.addEventListener('input', () => { model.dataset.touched = 'true'; });
  proto.addEventListener('change', () => {
    body.value = exampleBody(proto.value, rowsOf(body.value) || exampleRows);
  });
  const run = async (verb) => {
    try {
      JSON.parse(body.value);
    } catch (err) {
      status.textContent = 'The body is not JSON: ' + err.message;
      status.className = 'result-status bad';
      return;
    }
    const q = new URLSearchParams({ protocol: proto.value, verb, model: model.value.trim() || name });
    send.disabled = explain.disabled = true;
    status.textContent = (verb === 'explain' ? 'Explaining…' : 'Sending…');
    status.className = 'result-status muted';
    const t0 = performance.now();
    try {
      const ans = await postText(servicePath(ns, name, 'infer') + '?' + q, body.value);
      const ms = (performance.now() - t0).toFixed(0);
      const rev = ans.headers.get('Ferry-Revision');
      status.textContent = `${ans.status} in ${ms} ms` + (rev ? ` from ${rev}` : '');
      status.className = 'result-status good';
      out.textContent = pretty(ans.text);
      out.hidden = false;
      chart.replaceChildren(verb === 'explain' ? explanationView(JSON.parse(ans.text)) : '');
    } catch (err) {
      status.textContent = (err.status ? err.status + ': ' : '') + err.message;
      status.className = 'result-status bad';
      out.hidden = true;
      chart.replaceChildren();
    } finally {
      send.disabled = explain.disabled = false;
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run('predict');
  });
  explain.addEventListener('click', () => run('explain'));
  return h('details', { class: 'tool try' },
    h('summary', {}, 'Test request'), form, status, chart, out);
}

// logsPanel shows the last lines of each replica of one component; it
// loads when opened, on Refresh, and with every refresh while open.
function logsPanel(id, ns, name) {
  const comp = h('select', { id: id + '-logcomp', class: 'log-component' }, h('option', { value: 'predictor' }, 'predictor'));
  const tail = h('input', { id: id + '-tail', class: 'tail', type: 'number', min: 1, max: 10000, value: 100 });
  const reload = h('button', { type: 'button', class: 'reload' }, 'Refresh');
  const out = h('div', { class: 'log-out' });
  const det = h('details', { class: 'tool logs' },
    h('summary', {}, 'Logs'),
    h('div', { class: 'row' }, h('label', { for: comp.id }, 'Component'), comp,
      h('label', { for: tail.id }, 'Lines'), tail, reload),
    out);
  let loading = false;
  let shown = '';
  det.load = async () => {
    if (loading || !det.open) return;
    loading = true;
    try {
      const q = new URLSearchParams({ component: comp.value, tail: String(Math.max(1, Number(tail.value) || 100)) });
      const logs = await getJSON(servicePath(ns, name, 'logs') + '?' + q);
      const reps = Object.entries(logs.replicas || {}).sort(([a], [b]) => a.localeCompare(b));
      const key = JSON.stringify(reps);
      if (key === shown) return; // nothing new: keep the reader's scroll
      shown = key;
      out.replaceChildren(...(reps.length === 0 ? [h('p', { class: 'muted' }, `No ${comp.value} replica has logged yet.`)]
        : reps.map(([rep, lines]) => h('div', { class: 'replica-log', dataset: { replica: rep } },
          h('h4', {}, rep), h('pre', {}, lines.join('\n'))))));
    } catch (err) {
      shown = '';
      out.replaceChildren(h('p', { class: 'bad' }, 'Logs: ' + err.message));
    } finally {
      loading = false;
    }
  };
  det.addEventListener('toggle', () => det.load());
  reload.addEventListener('click', () => {
    shown = '';
    det.load();
  });
  comp.addEventListener('change', () => det.load());
  return det;
}

// modelsPanel shows the model repository of each ready predictor replica
// (the V2 repository index: a multi-model server's TrainedModels, their
// state and why one failed); it loads when opened and on Refresh.
function modelsPanel(ns, name) {
  const reload = h('button', { type: 'button', class: 'reload' }, 'Refresh');
  const out = h('div', { class: 'models-out' });
  const det = h('details', { class: 'tool models' }, h('summary', {}, 'Models'), h('div', { class: 'row' }, reload), out);
  let loading = false;
  det.load = async () => {
    if (loading || !det.open) return;
    loading = true;
    try {
      const idx = await getJSON(servicePath(ns, name, 'models'));
      const reps = Object.entries(idx.replicas || {}).sort(([a], [b]) => a.localeCompare(b));
      out.replaceChildren(...(reps.length === 0 ? [h('p', { class: 'muted' }, 'No ready predictor replica to ask.')]
        : reps.map(([rep, ix]) => h('div', { class: 'replica-models', dataset: { replica: rep } },
          h('h4', {}, `${rep} (${ix.revision})`),
          ix.error ? h('p', { class: 'bad' }, ix.error)
            : h('table', {},
              h('thead', {}, h('tr', {}, h('th', {}, 'Model'), h('th', {}, 'Version'), h('th', {}, 'State'), h('th', {}, 'Reason'))),
              h('tbody', {}, ...(ix.models || []).map((m) => h('tr', { dataset: { model: m.name, state: m.state } },
                h('td', {}, m.name), h('td', {}, m.version || ''), h('td', {}, m.state), h('td', {}, m.reason || '')))))))));
    } catch (err) {
      out.replaceChildren(h('p', { class: 'bad' }, 'Models: ' + err.message));
    } finally {
      loading = false;
    }
  };
  det.addEventListener('toggle', () => det.load());
  reload.addEventListener('click', () => det.load());
  return det;
}

// createTools builds the tools of a service.
export function createTools(id, isvc) {
  const ns = isvc.metadata.namespace;
  const name = isvc.metadata.name;
  const el = h('div', { class: 'tools' }, tryPanel(id, ns, name, isvc), logsPanel(id, ns, name), modelsPanel(ns, name));
  updateTools(el, isvc, []);
  return el;
}

// updateTools follows a refresh: the Explain button with the explainer,
// the component list with the status, the model names with the
// service's TrainedModels; open logs reload.
export function updateTools(el, isvc, trainedModels) {
  el.querySelector('button.explain').hidden = !isvc.spec?.explainer;
  const comps = Object.keys(isvc.status?.components || {}).sort();
  const sel = el.querySelector('select.log-component');
  const have = [...sel.options].map((o) => o.value);
  for (const c of comps) if (!have.includes(c)) sel.append(h('option', { value: c }, c));
  const list = el.querySelector('datalist');
  const names = [isvc.metadata.name, ...trainedModels.map((tm) => tm.metadata.name)];
  if ([...list.options].map((o) => o.value).join() !== names.join()) {
    list.replaceChildren(...names.map((n) => h('option', { value: n })));
  }
  // A multi-model server (no model of its own) answers for its
  // TrainedModels only: offer the first until a person picks.
  const model = el.querySelector('input.model');
  const own = Object.values(isvc.spec?.predictor || {}).some((v) => v && typeof v === 'object' && (v.storageUri || v.storage));
  if (!own && !model.dataset.touched && trainedModels.length > 0 && model.value === isvc.metadata.name) {
    model.value = trainedModels.map((tm) => tm.metadata.name).sort()[0];
  }
  el.querySelector('details.logs').load();
}
