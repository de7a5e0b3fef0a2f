// h builds an element: h('td', {class: 'num'}, 'text', child, ...). Text
// is always set as text, never parsed as HTML: annotations, messages and
// names are data written by others.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'width') el.style.width = v; // CSSOM: allowed by the CSP, unlike style=""
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

const svgNS = 'http://www.w3.org/2000/svg';

// svg creates an SVG element with attributes (text only through
// textContent, never markup).
export function svg(tag, attrs, text) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// pathOf draws values (oldest first, NaN for "no data") as a path scaled
// to max, leaving gaps where there is no data.
function pathOf(values, max, w, hgt, top) {
  const step = values.length > 1 ? w / (values.length - 1) : w;
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) {
      pen = false;
      return;
    }
    const x = (i * step).toFixed(1);
    const y = (hgt - 2 - (v / max) * (hgt - top - 2)).toFixed(1);
    d += (pen ? 'L' : 'M') + x + ',' + y + ' ';
    pen = true;
  });
  return d.trim();
}

// miniChart draws one or more series of the last minute in a small SVG
// with its maximum written in the corner; series are {values, cls}.
// label is the accessible name (and a tooltip); fmtMax formats the top
// of the scale.
export function miniChart(cls, series, label, fmtMax) {
  const w = 120;
  const hgt = 30;
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const max = Math.max(...all, 1e-9);
  const el = svg('svg', { viewBox: `0 0 ${w} ${hgt}`, class: 'chart ' + cls, role: 'img', 'aria-label': label });
  el.append(svg('title', {}, label));
  el.append(svg('line', { x1: 0, y1: hgt - 1, x2: w, y2: hgt - 1, class: 'axis' }));
  for (const s of series) {
    const d = pathOf(s.values, max, w, hgt, 9);
    if (d) el.append(svg('path', { d, class: 'series ' + s.cls }));
  }
  el.append(svg('text', { x: w - 1, y: 7, 'text-anchor': 'end', class: 'max' }, all.length ? fmtMax(max) : 'no data'));
  return el;
}
