/**
 * Where things are in a JSON text, so that a configuration problem can name `file:line:column`.
 *
 * `scanJsonPositions` walks the text once and records, for every value, the position of what an
 * editor should jump to: the key of an object member (`"port": …` → the `"` of `"port"`), the
 * value itself for array elements and the whole document. Paths are spelled the way
 * cluster-config.ts spells them in its problems: `replicas[2].port`, `clients.admin.keyspaces`,
 * `protocol.stateTransfer.chunkBytes`.
 *
 * It is tolerant: it records everything up to the first syntax error and reports where that is,
 * which is also how a JSON.parse error that carries no position gets one.
 */

/** 1-based, as editors and compilers print them; columns count UTF-16 code units. */
export interface TextPosition {
  readonly line: number;
  readonly column: number;
}

export interface JsonPositions {
  /** Path → offset in the text (see the module comment for which offset). */
  readonly offsets: ReadonlyMap<string, number>;
  /** Offset and reason of the first syntax error; null for well-formed JSON. */
  readonly syntaxError: { readonly offset: number; readonly reason: string } | null;
  /** The position of an offset in the scanned text. */
  positionAt(offset: number): TextPosition;
  /**
   * The position of `path`, or of its nearest enclosing value that has one (a missing field
   * points at the object that lacks it); null when not even the document has one.
   */
  positionOf(path: string): TextPosition | null;
}

/** Nesting deeper than this is not followed (a configuration nests a few levels). */
export const MAX_SCANNED_DEPTH = 256;

/** The path one level up: `a.b[3]` → `a.b`, `a.b` → `a`, `a` → '' (the document), '' → null. */
export function parentPath(path: string): string | null {
  if (path === '') return null;
  const bracket = path.endsWith(']') ? path.lastIndexOf('[') : -1;
  const dot = path.lastIndexOf('.');
  const cut = Math.max(bracket, dot);
  return cut <= 0 ? '' : path.slice(0, cut);
}

class SyntaxProblem extends Error {
  readonly offset: number;
  constructor(offset: number, reason: string) {
    super(reason);
    this.offset = offset;
  }
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

export function scanJsonPositions(text: string): JsonPositions {
  const offsets = new Map<string, number>();
  let index = 0;

  const fail = (reason: string): never => {
    throw new SyntaxProblem(index, reason);
  };
  const skipWhitespace = (): void => {
    while (index < text.length && WHITESPACE.has(text[index]!)) index++;
  };
  const readString = (): string => {
    const start = index;
    index++; // the opening quote
    while (index < text.length) {
      const character = text[index]!;
      if (character === '"') {
        index++;
        try {
          return JSON.parse(text.slice(start, index)) as string;
        } catch {
          index = start;
          return fail('invalid string');
        }
      }
      index += character === '\\' ? 2 : 1;
    }
    index = start;
    return fail('unterminated string');
  };
  const readValue = (path: string, depth: number, recordHere: boolean): void => {
    skipWhitespace();
    if (index >= text.length) fail('unexpected end of the text');
    if (recordHere) offsets.set(path, index);
    if (depth > MAX_SCANNED_DEPTH) fail(`nested deeper than ${MAX_SCANNED_DEPTH} levels`);
    const character = text[index]!;
    if (character === '{') {
      index++;
      skipWhitespace();
      if (text[index] === '}') {
        index++;
        return;
      }
      for (;;) {
        skipWhitespace();
        if (text[index] !== '"') fail('expected a field name in double quotes');
        const keyOffset = index;
        const key = readString();
        const memberPath = path === '' ? key : `${path}.${key}`;
        // The last of duplicate keys is the one JSON.parse keeps.
        offsets.set(memberPath, keyOffset);
        skipWhitespace();
        if (text[index] !== ':') fail("expected ':' after a field name");
        index++;
        readValue(memberPath, depth + 1, false);
        skipWhitespace();
        if (text[index] === ',') {
          index++;
          continue;
        }
        if (text[index] === '}') {
          index++;
          return;
        }
        fail("expected ',' or '}' after a field's value");
      }
    }
    if (character === '[') {
      index++;
      skipWhitespace();
      if (text[index] === ']') {
        index++;
        return;
      }
      for (let element = 0; ; element++) {
        readValue(`${path}[${element}]`, depth + 1, true);
        skipWhitespace();
        if (text[index] === ',') {
          index++;
          continue;
        }
        if (text[index] === ']') {
          index++;
          return;
        }
        fail("expected ',' or ']' after a list element");
      }
    }
    if (character === '"') {
      readString();
      return;
    }
    const literal = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(
      text.slice(index, index + 64),
    );
    if (literal === null) fail(`unexpected character ${JSON.stringify(character)}`);
    index += literal![0].length;
  };

  let syntaxError: JsonPositions['syntaxError'] = null;
  try {
    readValue('', 0, true);
    skipWhitespace();
    if (index < text.length) fail('unexpected text after the end of the document');
  } catch (error) {
    if (!(error instanceof SyntaxProblem)) throw error;
    syntaxError = { offset: error.offset, reason: error.message };
  }

  // Line starts, for offset → line and column by binary search.
  const lineStarts = [0];
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lineStarts.push(at + 1);
  const positionAt = (offset: number): TextPosition => {
    const clamped = Math.max(0, Math.min(offset, text.length));
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (lineStarts[middle]! <= clamped) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: clamped - lineStarts[low]! + 1 };
  };
  const positionOf = (path: string): TextPosition | null => {
    for (let candidate: string | null = path; candidate !== null; candidate = parentPath(candidate)) {
      const offset = offsets.get(candidate);
      if (offset !== undefined) return positionAt(offset);
    }
    return null;
  };
  return { offsets, syntaxError, positionAt, positionOf };
}

/** The path a configuration problem is about: the text before its first ': ' (problems start with it). */
export function problemPath(problem: string): string {
  const colon = problem.indexOf(': ');
  return colon === -1 ? '' : problem.slice(0, colon);
}
