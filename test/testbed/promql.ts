// The metric names a PromQL expression reads, so tests can hold the chart's dashboard and alert
// rules to the metrics the controller defines and really serves. A small scanner, not a parser: it
// drops what cannot be a metric name (strings, label matchers, ranges, grouping labels, Grafana
// variables, numbers and durations), then keeps every identifier that is neither a keyword nor
// followed by "(" (a function or aggregation).

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'atan2',
  'inf',
  'nan',
]);

export function metricNames(expr: string): string[] {
  const scrubbed = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ');
  const names = new Set<string>();
  for (const m of scrubbed.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    const before = scrubbed[m.index - 1] ?? ' ';
    // The unit of a duration (5m, 1h) or the exponent of a number (1e3).
    if (/[0-9.]/.test(before)) continue;
    if (KEYWORDS.has(word.toLowerCase())) continue;
    if (/^\s*\(/.test(scrubbed.slice(m.index + word.length))) continue;
    names.add(word);
  }
  return [...names].sort();
}

/** Histogram and summary series are named after their family plus one of these. */
const SERIES_SUFFIXES = ['_bucket', '_count', '_sum'];

/**
 * The metric family a series name belongs to, given the families (name → type) an exposition
 * declares; undefined when none declares it.
 */
export function familyOf(name: string, families: ReadonlyMap<string, string>): string | undefined {
  if (families.has(name)) return name;
  for (const suffix of SERIES_SUFFIXES) {
    if (!name.endsWith(suffix)) continue;
    const family = name.slice(0, -suffix.length);
    const type = families.get(family);
    if (type === 'histogram' || (type === 'summary' && suffix !== '_bucket')) return family;
  }
  return undefined;
}

/** The families of a Prometheus text exposition, from its `# TYPE name type` lines. */
export function familiesOf(exposition: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const line of exposition.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)/.exec(line);
    if (m) families.set(m[1]!, m[2]!);
  }
  return families;
}
