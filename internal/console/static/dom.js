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

// sparkline draws values (oldest first) as a line scaled to its maximum.
export function sparkline(values, label) {
  const w = 120;
  const hgt = 24;
  const svg = document.createElementNS(svgNS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const max = Math.max(...values, 1e-9);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`);
  const line = document.createElementNS(svgNS, 'polyline');
  line.setAttribute('points', pts.join(' '));
  svg.append(line);
  return svg;
}
