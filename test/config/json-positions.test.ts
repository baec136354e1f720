import * as assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, loadClusterConfig } from '../../src/config/cluster-config.js';
import { parentPath, problemPath, scanJsonPositions } from '../../src/config/json-positions.js';
import { generateCluster } from '../../src/config/keys.js';

describe('scanJsonPositions', () => {
  const text = [
    '{',
    '  "f": 1,',
    '  "replicas": [',
    '    { "id": 0, "port": "seven" },',
    '    {"id": 1}',
    '  ],',
    '  "clients": { "bad name": {} }',
    '}',
  ].join('\n');
  const scanned = scanJsonPositions(text);

  it('places object members at their key and list elements at their value, with paths as the parser spells them', () => {
    assert.equal(scanned.syntaxError, null);
    assert.deepEqual(scanned.positionOf(''), { line: 1, column: 1 });
    assert.deepEqual(scanned.positionOf('f'), { line: 2, column: 3 });
    assert.deepEqual(scanned.positionOf('replicas[0]'), { line: 4, column: 5 });
    assert.deepEqual(scanned.positionOf('replicas[0].port'), { line: 4, column: 16 });
    assert.deepEqual(scanned.positionOf('replicas[1].id'), { line: 5, column: 6 });
    assert.deepEqual(scanned.positionOf('clients.bad name'), { line: 7, column: 16 });
  });

  it('points a missing field at the nearest enclosing value present', () => {
    assert.deepEqual(scanned.positionOf('replicas[1].signingKey'), { line: 5, column: 5 });
    assert.deepEqual(scanned.positionOf('recovery.periodMs'), { line: 1, column: 1 });
  });

  it('finds the first syntax error, after recording what came before it', () => {
    const broken = scanJsonPositions('{\n  "f": 1,\n  "k": 0\n  "replicas": []\n}');
    assert.ok(broken.syntaxError !== null);
    assert.deepEqual(broken.positionAt(broken.syntaxError.offset), { line: 4, column: 3 });
    assert.match(broken.syntaxError.reason, /expected ',' or '}'/);
    assert.deepEqual(broken.positionOf('k'), { line: 3, column: 3 });
  });

  it('agrees with JSON.parse on which texts are JSON, and never throws', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 0, max: 4 }), (value, indent) => {
        const json = JSON.stringify(value, null, indent);
        assert.equal(scanJsonPositions(json).syntaxError, null, json);
      }),
    );
    fc.assert(
      fc.property(fc.string(), (garbage) => {
        let parses = true;
        try {
          JSON.parse(garbage);
        } catch {
          parses = false;
        }
        assert.equal(scanJsonPositions(garbage).syntaxError === null, parses, JSON.stringify(garbage));
      }),
    );
  });

  it('spells paths one level up and reads the path a problem names', () => {
    assert.equal(parentPath('replicas[2].port'), 'replicas[2]');
    assert.equal(parentPath('replicas[2]'), 'replicas');
    assert.equal(parentPath('replicas'), '');
    assert.equal(parentPath(''), null);
    assert.equal(problemPath('replicas[0].port: must be an integer'), 'replicas[0].port');
    assert.equal(problemPath('the file must contain an object'), '');
  });
});

describe('loadClusterConfig names file:line:column for every problem', () => {
  let directory: string;
  let valid: Record<string, unknown>;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'phalanx-positions-'));
    const { configPath } = await generateCluster({
      directory,
      f: 1,
      k: 0,
      basePort: 7000,
      clients: ['admin'],
    });
    valid = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  });

  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  async function errorOf(text: string): Promise<ConfigError> {
    const path = join(directory, 'candidate.json');
    await writeFile(path, text);
    try {
      await loadClusterConfig(path);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error;
    }
    assert.fail('the configuration was accepted');
  }

  it('a semantic problem points at the offending field', async () => {
    const replicas = valid.replicas as Record<string, unknown>[];
    const document = { ...valid, replicas: [{ ...replicas[0], port: 'seven' }, ...replicas.slice(1)] };
    const text = JSON.stringify(document, null, 2);
    const error = await errorOf(text);
    const index = error.problems.findIndex((problem) => problem.startsWith('replicas[0].port:'));
    assert.notEqual(index, -1, error.message);
    const lines = text.split('\n');
    const line = lines.findIndex((candidate) => candidate.includes('"port": "seven"')) + 1;
    assert.deepEqual(error.positions[index], { line, column: lines[line - 1]!.indexOf('"port"') + 1 });
    assert.match(
      error.message,
      new RegExp(
        `candidate\\.json:${line}:\\d+: replicas\\[0\\]\\.port: must be an integer from 1 to 65535, got "seven"`,
      ),
    );
  });

  it('an unknown field points at itself, a missing one at its object', async () => {
    const text = '{\n  "f": 1,\n  "colour": "red",\n  "replicas": [\n    {"id": 0}\n  ]\n}\n';
    const error = await errorOf(text);
    const at = (prefix: string): unknown =>
      error.positions[error.problems.findIndex((problem) => problem.startsWith(prefix))];
    assert.deepEqual(at('colour: unknown field'), { line: 3, column: 3 });
    assert.deepEqual(at('replicas[0].host'), { line: 5, column: 5 });
  });

  it('a syntax error gives its line and column', async () => {
    const error = await errorOf('{\n  "f": 1,\n  "k": 0\n  "replicas": []\n}\n');
    assert.equal(error.problems.length, 1);
    assert.match(error.problems[0]!, /^not valid JSON: /);
    assert.deepEqual(error.positions[0], { line: 4, column: 3 });
    assert.match(error.message, /candidate\.json:4:3: not valid JSON/);
  });
});
