/**
 * A size-bounded, rotating log file, usable as a pino destination: `pino(options, logFile)`.
 * Replica and guardian processes used to log to stdout, redirected by their parent into one
 * append-only file that grew without bound (hostile input could make it grow fast). This writes
 * `<path>` until the next line would take it past `maxFileBytes`, then renames `<path>.1` …
 * `<path>.{N-1}` one step older, `<path>` to `<path>.1`, drops what was `<path>.N`, and starts
 * a new `<path>`. A log therefore never takes more than (1 + maxRotatedFiles) × maxFileBytes.
 *
 * Lines are never split across files: every write is whole lines, a line goes entirely into one
 * file, and a line longer than `maxLineBytes` (so it could not fit any file) is replaced by a short
 * JSON notice saying so.
 *
 * Writes are synchronous (one `writeSync` per pino line, as pino's own default destination does
 * for stdout), so nothing is buffered in the process: the last lines before `process.exit()` or a
 * fatal error are on their way to the disk when `write` returns. pino's destination contract is
 * just `write(line)`; `flush(callback)` and `flushSync()` are there for callers that call them.
 *
 * Several processes may share one path (a replica and the standby that replaces it both log to
 * `replica-<i>.log`): the file is opened in append mode, its size is read from the file itself
 * before each line, and a process that finds its file rotated away by another follows to the new
 * one instead of rotating again. At worst two processes racing to rotate rotate once too often.
 */
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { InvariantViolation } from '../messages/ids.js';

export const LOG_FILE_LIMITS = {
  /**
   * A file is rotated before a line would take it past this. 8 MiB holds some 30 000 lines: hours
   * of a replica's info-level log, a few minutes of a busy debug-level one.
   */
  defaultMaxFileBytes: 8 * 1024 * 1024,
  /** Rotated files kept (`<path>.1` newest … `<path>.N` oldest): 40 MiB per log in all by default. */
  defaultMaxRotatedFiles: 4,
  /**
   * A longer line is replaced by a notice: pino lines are a few hundred bytes, a stack trace a few
   * KB, so a line this long is a bug or an echo of hostile input, and it must fit in any file.
   */
  defaultMaxLineBytes: 64 * 1024,
  /**
   * Characters of an over-long line kept in its notice, to tell what it was. JSON escapes a
   * character into at most 6 bytes, so a notice stays below minLineBytes.
   */
  noticeExcerptCharacters: 128,
  /** Smallest maxLineBytes: room for the notice that replaces a longer line. */
  minLineBytes: 1024,
} as const;

export interface RotatingLogFileOptions {
  readonly maxFileBytes?: number;
  readonly maxRotatedFiles?: number;
  /** At least LOG_FILE_LIMITS.minLineBytes, at most maxFileBytes. */
  readonly maxLineBytes?: number;
}

const NEWLINE = 0x0a;

/** Where the `index`th rotated file of `path` goes (1 is the newest). */
export function rotatedLogPath(path: string, index: number): string {
  return `${path}.${index}`;
}

function checkPositiveInteger(value: number, name: string): void {
  if (!(Number.isSafeInteger(value) && value > 0))
    throw new InvariantViolation(`${name} must be a positive integer, got ${value}`);
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
}

export class RotatingLogFile {
  readonly path: string;
  readonly maxFileBytes: number;
  readonly maxRotatedFiles: number;
  readonly maxLineBytes: number;
  /** Null after a failed reopen (retried at the next line) or after close. */
  #fd: number | null;
  #closed = false;
  #rotations = 0;
  #droppedLines = 0;

  private constructor(path: string, options: Required<RotatingLogFileOptions>) {
    this.path = path;
    this.maxFileBytes = options.maxFileBytes;
    this.maxRotatedFiles = options.maxRotatedFiles;
    this.maxLineBytes = options.maxLineBytes;
    mkdirSync(dirname(path), { recursive: true });
    this.#fd = openSync(path, 'a');
  }

  /** Opens (appending to) `path`, creating it and its directory when missing. */
  static open(path: string, options: RotatingLogFileOptions = {}): RotatingLogFile {
    const resolved: Required<RotatingLogFileOptions> = {
      maxFileBytes: options.maxFileBytes ?? LOG_FILE_LIMITS.defaultMaxFileBytes,
      maxRotatedFiles: options.maxRotatedFiles ?? LOG_FILE_LIMITS.defaultMaxRotatedFiles,
      maxLineBytes: options.maxLineBytes ?? LOG_FILE_LIMITS.defaultMaxLineBytes,
    };
    checkPositiveInteger(resolved.maxFileBytes, 'maxFileBytes');
    checkPositiveInteger(resolved.maxRotatedFiles, 'maxRotatedFiles');
    checkPositiveInteger(resolved.maxLineBytes, 'maxLineBytes');
    if (
      resolved.maxLineBytes < LOG_FILE_LIMITS.minLineBytes ||
      resolved.maxLineBytes > resolved.maxFileBytes
    ) {
      throw new InvariantViolation(
        `maxLineBytes (${resolved.maxLineBytes}) must be between ${LOG_FILE_LIMITS.minLineBytes} and maxFileBytes (${resolved.maxFileBytes})`,
      );
    }
    return new RotatingLogFile(path, resolved);
  }

  /** Times this process rotated the file (not counting rotations by others sharing the path). */
  get rotations(): number {
    return this.#rotations;
  }

  /** Lines lost to write errors (a full disk, say) or written after close. */
  get droppedLines(): number {
    return this.#droppedLines;
  }

  /**
   * Writes whole lines (pino hands one line per call, newline included). Never throws: a log that
   * cannot be written must not take the process down, so a failed line is counted in droppedLines.
   */
  write(chunk: string | Uint8Array): boolean {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk);
    if (bytes.length === 0) return true;
    if (this.#closed) {
      this.#droppedLines++;
      return false;
    }
    let ok = true;
    // Usually the chunk is one line and fits; otherwise it goes line by line, so that a rotation
    // falls between lines, never inside one.
    if (bytes.length <= this.maxLineBytes && bytes.indexOf(NEWLINE) >= bytes.length - 1) {
      return this.#writeLine(bytes);
    }
    let start = 0;
    while (start < bytes.length) {
      const newline = bytes.indexOf(NEWLINE, start);
      const end = newline < 0 ? bytes.length : newline + 1;
      ok = this.#writeLine(bytes.subarray(start, end)) && ok;
      start = end;
    }
    return ok;
  }

  /** Nothing is buffered: calls back at once (pino's `logger.flush(callback)`). */
  flush(callback?: (error?: Error) => void): void {
    callback?.();
  }

  /** Nothing is buffered (pino and its exit handlers may call it). */
  flushSync(): void {}

  /** Closes the file; later lines are dropped and counted. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  /** Same as close (stream-like callers call `end`). */
  end(): void {
    this.close();
  }

  #writeLine(line: Buffer): boolean {
    const unit = line.length > this.maxLineBytes ? this.#notice(line) : line;
    try {
      this.#fd ??= openSync(this.path, 'a');
      this.#makeRoomFor(unit.length);
      const fd = this.#fd;
      let written = 0;
      while (written < unit.length) written += writeSync(fd, unit, written, unit.length - written);
      return true;
    } catch {
      this.#droppedLines++;
      return false;
    }
  }

  /** A JSON line in place of one too long for any file, so the log still parses line by line. */
  #notice(line: Buffer): Buffer {
    const excerpt = line
      .subarray(0, LOG_FILE_LIMITS.noticeExcerptCharacters * 4)
      .toString('utf8')
      .slice(0, LOG_FILE_LIMITS.noticeExcerptCharacters);
    return Buffer.from(
      `${JSON.stringify({
        time: Date.now(),
        msg: 'log line dropped: longer than maxLineBytes',
        lineBytes: line.length,
        maxLineBytes: this.maxLineBytes,
        excerpt,
      })}\n`,
      'utf8',
    );
  }

  /** Rotates (or follows another process's rotation) until `bytes` fit in the current file. */
  #makeRoomFor(bytes: number): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      const size = fstatSync(this.#fd!).size;
      if (size === 0 || size + bytes <= this.maxFileBytes) return;
      this.#rotateOrFollow();
    }
  }

  #rotateOrFollow(): void {
    const own = fstatSync(this.#fd!);
    const current = statSync(this.path, { throwIfNoEntry: false });
    // The path no longer names this file (another process rotated it, or is in the middle of
    // doing so): follow to the file the path names now rather than rotate a second time.
    const rotatedByAnother = current === undefined || current.ino !== own.ino || current.dev !== own.dev;
    if (!rotatedByAnother) {
      this.#shiftRotatedFiles();
      this.#rotations++;
    }
    closeSync(this.#fd!);
    // Null until the open succeeds: a failed open is retried at the next line.
    this.#fd = null;
    this.#fd = openSync(this.path, 'a');
  }

  /** `<path>.{N-1}` → `<path>.N`, …, `<path>` → `<path>.1`; the oldest is dropped. */
  #shiftRotatedFiles(): void {
    const renameIfPresent = (from: string, to: string): void => {
      try {
        renameSync(from, to);
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
      }
    };
    try {
      unlinkSync(rotatedLogPath(this.path, this.maxRotatedFiles));
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
    }
    for (let index = this.maxRotatedFiles - 1; index >= 1; index--) {
      renameIfPresent(rotatedLogPath(this.path, index), rotatedLogPath(this.path, index + 1));
    }
    renameIfPresent(this.path, rotatedLogPath(this.path, 1));
  }
}

/**
 * The file a child process's stdout and stderr go to, beside its log (`<logFile>.stderr`): only
 * what Node itself prints (a crash before the logger exists), since the process logs through
 * RotatingLogFile. Opened for appending; moved to `<logFile>.stderr.1` first when it has grown
 * past the log's file bound, so it stays bounded too. The caller closes the descriptor.
 */
export function openProcessOutput(logFile: string): number {
  const path = `${logFile}.stderr`;
  mkdirSync(dirname(path), { recursive: true });
  try {
    if (statSync(path).size > LOG_FILE_LIMITS.defaultMaxFileBytes) renameSync(path, `${path}.1`);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
  return openSync(path, 'a');
}
