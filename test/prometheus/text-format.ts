/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests that
 * scrape a process's /metrics: it refuses what a lenient scraper would let through, so a test
 * that parses a page knows the page is well formed, not only that some line matched.
 *
 * What it checks: `# HELP` and `# TYPE` lines (at most one of each per family, TYPE before the
 * family's first sample, a known type), metric and label names, label values with their escapes
 * (\\, \", \n) and no duplicate label in one sample, numeric values (with NaN, +Inf, -Inf) and
 * optional integer timestamps, the samples of one family on consecutive lines, no series twice,
 * the sample names a type allows (a histogram's _bucket with `le`, _sum and _count; a summary's
 * quantiles, _sum and _count), and for histograms: buckets in increasing `le` order ending at
 * +Inf, cumulative counts that never decrease, and _count equal to the +Inf bucket.
 *
 * Usage:
 * ```ts
 * const families = parsePrometheusText(await (await fetch(url)).text());
 * assert.equal(families.get('phalanx_view')?.type, 'gauge');
 * ```
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timestamp: number | null;
}

export interface MetricFamily {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string | null;
  readonly samples: readonly Sample[];
}

export class PrometheusTextError extends Error {
  override readonly name = 'PrometheusTextError';
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
/** Sample name suffixes a type allows besides the family name itself. */
const SUFFIXES: Readonly<Record<MetricType, readonly string[]>> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

interface FamilyDraft {
  name: string;
  type: MetricType | null;
  help: string | null;
  samples: Sample[];
}

/** Parses a whole exposition; throws PrometheusTextError on the first thing that is not right. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, FamilyDraft>();
  /** Families whose samples are over (another family's sample came after them). */
  const closed = new Set<string>();
  let current: FamilyDraft | null = null;
  const seriesSeen = new Set<string>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  else if (text.length > 0)
    throw new PrometheusTextError(lines.length, 'the text does not end with a newline');

  const family = (name: string, lineNumber: number): FamilyDraft => {
    let draft = families.get(name);
    if (draft === undefined) {
      draft = { name, type: null, help: null, samples: [] };
      families.set(name, draft);
    } else if (closed.has(name) || (draft.samples.length > 0 && current !== draft)) {
      throw new PrometheusTextError(
        lineNumber,
        `${name} continues after other metrics (its lines must be together)`,
      );
    }
    if (current !== null && current !== draft) closed.add(current.name);
    current = draft;
    return draft;
  };

  lines.forEach((line, index) => {
    const lineNumber = index + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const match = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (match === null) return; // a comment
      const [, keyword, name, rest] = match as unknown as [
        string,
        'HELP' | 'TYPE',
        string,
        string | undefined,
      ];
      if (!METRIC_NAME.test(name)) throw new PrometheusTextError(lineNumber, `invalid metric name ${name}`);
      const draft = family(name, lineNumber);
      if (keyword === 'HELP') {
        if (draft.help !== null) throw new PrometheusTextError(lineNumber, `second HELP for ${name}`);
        draft.help = unescapeHelp(rest ?? '', lineNumber);
      } else {
        const type = (rest ?? '').trim();
        if (!TYPES.has(type))
          throw new PrometheusTextError(lineNumber, `unknown type ${JSON.stringify(type)}`);
        if (draft.type !== null) throw new PrometheusTextError(lineNumber, `second TYPE for ${name}`);
        if (draft.samples.length > 0)
          throw new PrometheusTextError(lineNumber, `TYPE for ${name} after its first sample`);
        draft.type = type as MetricType;
      }
      return;
    }
    const sample = parseSample(line, lineNumber);
    const owner = familyOfSample(sample.name, families, current);
    const latest = current as FamilyDraft | null;
    if (
      owner === sample.name &&
      latest !== null &&
      latest.type !== null &&
      owner.startsWith(latest.name) &&
      owner !== latest.name
    )
      throw new PrometheusTextError(
        lineNumber,
        `${sample.name} is not a sample name of ${latest.type} ${latest.name}`,
      );
    const draft = family(owner, lineNumber);
    const type = draft.type ?? 'untyped';
    const suffix = sample.name.slice(owner.length);
    if (!SUFFIXES[type].includes(suffix))
      throw new PrometheusTextError(lineNumber, `${sample.name} is not a sample name of ${type} ${owner}`);
    if (type === 'histogram' && suffix === '_bucket' && sample.labels.le === undefined)
      throw new PrometheusTextError(lineNumber, `${sample.name} without an le label`);
    if (type === 'histogram' && suffix !== '_bucket' && sample.labels.le !== undefined)
      throw new PrometheusTextError(lineNumber, `${sample.name} with an le label`);
    if (type === 'summary' && suffix === '' && sample.labels.quantile === undefined)
      throw new PrometheusTextError(lineNumber, `${sample.name} without a quantile label`);
    const series = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seriesSeen.has(series)) throw new PrometheusTextError(lineNumber, `${series} appears twice`);
    seriesSeen.add(series);
    draft.samples.push(sample);
  });

  const result = new Map<string, MetricFamily>();
  for (const draft of families.values()) {
    const done: MetricFamily = {
      name: draft.name,
      type: draft.type ?? 'untyped',
      help: draft.help,
      samples: draft.samples,
    };
    if (done.type === 'histogram') checkHistogram(done);
    result.set(draft.name, done);
  }
  return result;
}

/**
 * The family a sample belongs to: the current family when its name is the family's or one of
 * its type's suffixed names, else a TYPE'd family with that stem, else a family of its own.
 */
function familyOfSample(
  name: string,
  families: Map<string, FamilyDraft>,
  current: FamilyDraft | null,
): string {
  const candidates = [current, ...families.values()];
  for (const candidate of candidates) {
    if (candidate === null) continue;
    const type = candidate.type ?? 'untyped';
    if (name.startsWith(candidate.name) && SUFFIXES[type].includes(name.slice(candidate.name.length)))
      return candidate.name;
  }
  return name;
}

function unescapeHelp(text: string, lineNumber: number): string {
  return text.replace(/\\(.?)/g, (_, next: string) => {
    if (next === '\\') return '\\';
    if (next === 'n') return '\n';
    throw new PrometheusTextError(lineNumber, `invalid escape \\${next} in HELP`);
  });
}

function parseValue(text: string, lineNumber: number, what: string): number {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text))
    throw new PrometheusTextError(lineNumber, `invalid ${what} ${JSON.stringify(text)}`);
  return Number(text);
}

function parseSample(line: string, lineNumber: number): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (nameMatch === null) throw new PrometheusTextError(lineNumber, `not a sample: ${JSON.stringify(line)}`);
  const name = nameMatch[0];
  let position = name.length;
  const labels: Record<string, string> = {};
  if (line[position] === '{') {
    position++;
    for (;;) {
      if (line[position] === '}') {
        position++;
        break;
      }
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(position));
      if (labelMatch === null) throw new PrometheusTextError(lineNumber, `invalid label name in ${line}`);
      const label = labelMatch[0];
      if (!LABEL_NAME.test(label) || label.startsWith('__'))
        throw new PrometheusTextError(lineNumber, `reserved or invalid label name ${label}`);
      position += label.length;
      if (line.slice(position, position + 2) !== '="')
        throw new PrometheusTextError(lineNumber, `label ${label} is not followed by ="`);
      position += 2;
      let value = '';
      for (;;) {
        const character = line[position];
        if (character === undefined)
          throw new PrometheusTextError(lineNumber, `unterminated value of ${label}`);
        position++;
        if (character === '"') break;
        if (character === '\\') {
          const escaped = line[position++];
          if (escaped === '\\' || escaped === '"') value += escaped;
          else if (escaped === 'n') value += '\n';
          else throw new PrometheusTextError(lineNumber, `invalid escape \\${escaped ?? ''} in ${label}`);
          continue;
        }
        value += character;
      }
      if (Object.hasOwn(labels, label)) throw new PrometheusTextError(lineNumber, `label ${label} twice`);
      labels[label] = value;
      if (line[position] === ',') position++;
      else if (line[position] !== '}')
        throw new PrometheusTextError(lineNumber, `expected , or } after the value of ${label}`);
    }
  }
  const rest = line.slice(position);
  const fields = /^[ \t]+(\S+)(?:[ \t]+(\S+))?[ \t]*$/.exec(rest);
  if (fields === null) throw new PrometheusTextError(lineNumber, `no value in ${JSON.stringify(line)}`);
  const value = parseValue(fields[1]!, lineNumber, 'value');
  let timestamp: number | null = null;
  if (fields[2] !== undefined) {
    if (!/^-?\d+$/.test(fields[2]))
      throw new PrometheusTextError(lineNumber, `invalid timestamp ${fields[2]}`);
    timestamp = Number(fields[2]);
  }
  return { name, labels, value, timestamp };
}

/** Per label set (without le): buckets in increasing le, cumulative, ending at +Inf = _count. */
function checkHistogram(family: MetricFamily): void {
  const seriesOf = (labels: Readonly<Record<string, string>>): string =>
    JSON.stringify(
      Object.entries(labels)
        .filter(([name]) => name !== 'le')
        .sort(),
    );
  const groups = new Map<
    string,
    { buckets: { le: number; count: number }[]; count?: number; sum?: number }
  >();
  const group = (key: string) => {
    let entry = groups.get(key);
    if (entry === undefined) {
      entry = { buckets: [] };
      groups.set(key, entry);
    }
    return entry;
  };
  for (const sample of family.samples) {
    const entry = group(seriesOf(sample.labels));
    if (sample.name.endsWith('_bucket'))
      entry.buckets.push({
        le: parseValue(sample.labels.le!, 0, `le of ${family.name}`),
        count: sample.value,
      });
    else if (sample.name.endsWith('_count')) entry.count = sample.value;
    else entry.sum = sample.value;
  }
  for (const [key, entry] of groups) {
    const where = `${family.name}${key}`;
    if (entry.buckets.length === 0) throw new PrometheusTextError(0, `${where} has no buckets`);
    if (entry.count === undefined || entry.sum === undefined)
      throw new PrometheusTextError(0, `${where} lacks _count or _sum`);
    for (let index = 1; index < entry.buckets.length; index++) {
      const previous = entry.buckets[index - 1]!;
      const bucket = entry.buckets[index]!;
      if (!(bucket.le > previous.le))
        throw new PrometheusTextError(0, `${where}: le ${bucket.le} after ${previous.le}`);
      if (bucket.count < previous.count)
        throw new PrometheusTextError(
          0,
          `${where}: bucket le=${bucket.le} counts less than le=${previous.le}`,
        );
    }
    const last = entry.buckets.at(-1)!;
    if (last.le !== Number.POSITIVE_INFINITY) throw new PrometheusTextError(0, `${where} has no +Inf bucket`);
    if (last.count !== entry.count)
      throw new PrometheusTextError(
        0,
        `${where}: _count ${entry.count} is not the +Inf bucket's ${last.count}`,
      );
  }
}
