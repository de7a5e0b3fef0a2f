// Per-revision request rate, error rate and latency from the ingress
// histogram on /metrics (ferry_revision_request_duration_seconds), computed
// between two scrapes the way PromQL's increase() would.

const family = 'ferry_revision_request_duration_seconds';

// parseLabels reads {a="x",b="y"} starting after the brace; it returns the
// labels and the index after the closing brace.
function parseLabels(line, i) {
  const labels = {};
  while (i < line.length && line[i] !== '}') {
    const eq = line.indexOf('=', i);
    if (eq < 0) break;
    const key = line.slice(i, eq).trim().replace(/^,/, '').trim();
    let j = eq + 2; // past ="
    let val = '';
    while (j < line.length && line[j] !== '"') {
      if (line[j] === '\\' && j + 1 < line.length) {
        const c = line[j + 1];
        val += c === 'n' ? '\n' : c;
        j += 2;
        continue;
      }
      val += line[j++];
    }
    labels[key] = val;
    i = j + 1;
    if (line[i] === ',') i++;
  }
  return [labels, i + 1];
}

// totals sums the histogram over response code classes: per "ns/revision"
// the request count, 5xx count, latency sum and cumulative buckets.
export function totals(text) {
  const out = new Map();
  const get = (labels) => {
    const key = labels.namespace + '/' + labels.revision;
    let t = out.get(key);
    if (!t) {
      t = { namespace: labels.namespace, revision: labels.revision, count: 0, errors: 0, sum: 0, buckets: new Map() };
      out.set(key, t);
    }
    return t;
  };
  for (const line of text.split('\n')) {
    if (!line.startsWith(family + '_')) continue;
    const brace = line.indexOf('{');
    if (brace < 0) continue;
    const suffix = line.slice(family.length + 1, brace);
    const [labels, end] = parseLabels(line, brace + 1);
    const value = Number(line.slice(end).trim().split(/\s+/)[0]);
    if (!Number.isFinite(value) && suffix !== 'bucket') continue;
    const t = get(labels);
    switch (suffix) {
      case 'count':
        t.count += value;
        if (labels.response_code_class === '5xx') t.errors += value;
        break;
      case 'sum':
        t.sum += value;
        break;
      case 'bucket': {
        const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
        t.buckets.set(le, (t.buckets.get(le) || 0) + value);
        break;
      }
    }
  }
  return out;
}

// quantile is histogram_quantile over cumulative [le, count] pairs.
function quantile(q, buckets) {
  if (buckets.length === 0) return NaN;
  const total = buckets[buckets.length - 1][1];
  if (total <= 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, c] of buckets) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(c - prevCount, 1e-12));
    }
    prevLe = le;
    prevCount = c;
  }
  return prevLe;
}

// window compares two totals of one revision taken seconds apart:
// requests per second, error fraction, mean and p95 latency in seconds.
// A counter that went down (ferry up restarted) counts from zero.
export function window(prev, cur, seconds) {
  const base = prev && cur.count >= prev.count ? prev : { count: 0, errors: 0, sum: 0, buckets: new Map() };
  const n = cur.count - base.count;
  const stats = { rps: seconds > 0 ? n / seconds : 0, requests: n, errorRate: NaN, mean: NaN, p95: NaN };
  if (n > 0) {
    stats.errorRate = (cur.errors - base.errors) / n;
    stats.mean = (cur.sum - base.sum) / n;
    const les = [...cur.buckets.keys()].sort((a, b) => a - b);
    stats.p95 = quantile(0.95, les.map((le) => [le, cur.buckets.get(le) - (base.buckets.get(le) || 0)]));
  }
  return stats;
}
