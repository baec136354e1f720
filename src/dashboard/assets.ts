/**
 * The charting library the page uses (uPlot), served by the dashboard itself so the page makes no
 * request to another origin. Its files are read once, at start, from the installed package, with a
 * size limit; the content security policy allows them by hash, like the page's own script and style.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Named limits on the files read from node_modules (uPlot 1.6: 51 KB of script, 2 KB of CSS). */
export const ASSET_LIMITS = {
  maxScriptBytes: 256 * 1024,
  maxStyleBytes: 32 * 1024,
} as const;

export interface DashboardAsset {
  /** Path under the dashboard's origin, e.g. /assets/uplot.js (the page inlines the style instead). */
  readonly path: string;
  readonly contentType: string;
  readonly body: Buffer;
  /** 'sha256-…' in the form a content security policy takes. */
  readonly integrity: string;
}

export interface ChartAssets {
  readonly script: DashboardAsset;
  readonly style: DashboardAsset;
}

function readBounded(file: string, maxBytes: number): Buffer {
  const size = statSync(file).size;
  if (size > maxBytes) throw new Error(`${file} is ${size} bytes, more than the ${maxBytes}-byte limit`);
  return readFileSync(file);
}

function asset(path: string, contentType: string, body: Buffer): DashboardAsset {
  return {
    path,
    contentType,
    body,
    integrity: `sha256-${createHash('sha256').update(body).digest('base64')}`,
  };
}

let loaded: ChartAssets | undefined;

/** Reads uPlot's minified script and its CSS once per process; throws when missing or too large. */
export function chartAssets(): ChartAssets {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  const distribution = join(dirname(require.resolve('uplot/package.json')), 'dist');
  loaded = {
    script: asset(
      '/assets/uplot.js',
      'text/javascript; charset=utf-8',
      readBounded(join(distribution, 'uPlot.iife.min.js'), ASSET_LIMITS.maxScriptBytes),
    ),
    style: asset(
      '/assets/uplot.css',
      'text/css; charset=utf-8',
      readBounded(join(distribution, 'uPlot.min.css'), ASSET_LIMITS.maxStyleBytes),
    ),
  };
  return loaded;
}
