/**
 * The files a service module is made of: the module file and every file of the user's project it
 * imports, directly or not, following static imports only. The guardian's code manifest hashes
 * them (src/recovery/code-manifest.ts), so a change to the user's code after signing is caught
 * like a change to Phalanx's.
 *
 * The walk reads each file as text and finds its import specifiers with a regular expression
 * (`import … from '…'`, `import '…'`, `export … from '…'`, `import('…')` with a literal), as
 * test/architecture/module-graph.test.ts does with TypeScript's scanner. It follows relative and
 * absolute specifiers only: a bare specifier (a package, `phalanx` itself) and a `node:` built-in
 * are where the user's project ends, and so is any file under a `node_modules` folder. A specifier
 * that resolves to no file (one in a comment, say) is skipped: a real import of a missing file
 * fails when the module loads. Walking is bounded (SERVICE_GRAPH_LIMITS) so a hostile tree cannot
 * exhaust the guardian.
 *
 * Usage:
 * ```ts
 * const graph = await serviceImportGraph('/home/me/ledger/service.js');
 * // graph.files: ['/home/me/ledger/codec.js', '/home/me/ledger/service.js'], sorted
 * ```
 */
import { lstat, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve, sep } from 'node:path';

export const SERVICE_GRAPH_LIMITS = {
  /** Most files one service module's graph may hold. */
  maxFiles: 5_000,
  /** Largest file read to find its imports. */
  maxFileBytes: 8 * 1024 * 1024,
} as const;

export interface ServiceImportGraph {
  /** Absolute paths of the module file and every project file it reaches, sorted. */
  readonly files: readonly string[];
  /** Files that could not be read, limits exceeded; [] when the graph is complete. */
  readonly problems: readonly string[];
}

/**
 * `import x from '…'`, `import type … from '…'`, `export * from '…'`, `export { a } from '…'`,
 * `import '…'` and `import('…')`; the specifier is the second group.
 */
const IMPORT_PATTERN =
  /(?:\bimport\s*\(\s*|\bimport\s+(?:[\w*{}\s,$]+\s+from\s+)?|\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s+)(['"])([^'"\n]+)\1/g;

/** The import specifiers written in a module's text (see IMPORT_PATTERN). */
export function importSpecifiers(text: string): string[] {
  return [...text.matchAll(IMPORT_PATTERN)].map((match) => match[2]!);
}

/** Sources compile to .js and import each other by those names: ./x.js may be ./x.ts under tsx. */
function candidatesOf(path: string): string[] {
  const swapped = /\.(m|c)?js$/.test(path)
    ? [
        path
          .replace(/\.js$/, '.ts')
          .replace(/\.mjs$/, '.mts')
          .replace(/\.cjs$/, '.cts'),
      ]
    : [];
  return [path, ...swapped, `${path}.js`, `${path}.ts`, `${path}/index.js`, `${path}/index.ts`];
}

async function isRegularFile(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isFile();
  } catch {
    return false;
  }
}

function insideNodeModules(path: string): boolean {
  return path.split(sep).includes('node_modules');
}

/** The module file and the project files it imports (see the header). */
export async function serviceImportGraph(modulePath: string): Promise<ServiceImportGraph> {
  const entry = resolve(modulePath);
  const seen = new Set<string>([entry]);
  const problems: string[] = [];
  const pending = [entry];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    let text: string;
    try {
      const bytes = await readFile(file);
      if (bytes.length > SERVICE_GRAPH_LIMITS.maxFileBytes) {
        problems.push(
          `${file}: larger than ${SERVICE_GRAPH_LIMITS.maxFileBytes} bytes; not scanned for imports`,
        );
        continue;
      }
      text = bytes.toString('utf8');
    } catch (error) {
      problems.push(`${file}: cannot read it: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    for (const specifier of importSpecifiers(text)) {
      if (!specifier.startsWith('.') && !isAbsolute(specifier)) continue;
      let target: string | null = null;
      for (const candidate of candidatesOf(resolve(dirname(file), specifier))) {
        if (await isRegularFile(candidate)) {
          target = candidate;
          break;
        }
      }
      if (target === null || insideNodeModules(target) || seen.has(target)) continue;
      if (seen.size >= SERVICE_GRAPH_LIMITS.maxFiles) {
        problems.push(`${entry}: imports more than ${SERVICE_GRAPH_LIMITS.maxFiles} files; stopped walking`);
        return { files: [...seen].sort(), problems };
      }
      seen.add(target);
      pending.push(target);
    }
  }
  return { files: [...seen].sort(), problems };
}
