// ESLint plugin that keeps src/ layered (docs/ARCHITECTURE.md, "Layers"). Rule `layers/layers`:
//
// - a module in src/<A>/ may import a module of src/<B>/ only when B's layer is below A's (or
//   B is A). Folders of one layer are siblings and may not import each other. A folder missing
//   from LAYERS is reported, so that a new folder gets a place in the order before it is used.
// - a module of a pure folder (PURE_FOLDERS, or a pure subfolder of a layer: PURE_SUBFOLDERS)
//   imports no Node built-in and no package at all, except the specifiers listed in the rule's
//   `allowInPure` option (none by default), and no module outside the pure folders, its own
//   layer's other modules included (recovery/core/ may not import recovery/guardian.ts).
//
// Every form of import is checked: `import`, `import type` (types are design dependencies too,
// so they follow the same order), `export … from`, `export * from`, dynamic `import('…')` with a
// literal specifier, `typeof import('…')` in types and `import x = require('…')`. A lint sees
// imports only: the clock, timers and randomness are globals (Date.now, setTimeout, Math.random),
// which eslint.config.js forbids in the pure folders with ESLint's no-restricted-* rules.
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';

/**
 * The layers of src/, bottom first. Each entry is one layer: a folder name, `apps/*` for every
 * application folder under src/apps/, or ENTRY_POINTS for the modules directly in src/.
 */
export const ENTRY_POINTS = '(entry points)';
export const LAYERS = [
  ['messages'],
  ['core'],
  ['crypto', 'adversary'],
  ['storage', 'transport'],
  ['detection'],
  ['config'],
  ['client'],
  ['apps/*', 'runtime'],
  ['hosting'],
  ['recovery'],
  ['sim', 'dashboard'],
  ['cli', ENTRY_POINTS],
];

/**
 * Folders whose modules must be pure: no I/O, no packages (see the header). adversary/ is the
 * adversary catalogue's mechanics, shared by the simulator and the runtime's fault injection:
 * randomness and time come in from them.
 */
export const PURE_FOLDERS = ['messages', 'core', 'adversary'];

/**
 * Pure subfolders of a non-pure layer, as paths relative to src/: the `step(event) → actions`
 * machines that live beside the shell that drives them (the guardian's core beside guardian.ts).
 */
export const PURE_SUBFOLDERS = ['recovery/core'];

/** Whether the module at `pathInSource` (relative to src/) must be pure. */
function isPurePath(pathInSource) {
  const parts = pathInSource.split(sep);
  if (parts.length > 1 && PURE_FOLDERS.includes(parts[0])) return true;
  const directory = parts.slice(0, -1).join('/');
  return PURE_SUBFOLDERS.some((folder) => directory === folder || directory.startsWith(`${folder}/`));
}

/** The folder named in a pure module's messages: its pure subfolder, or its layer folder. */
function pureFolderOf(pathInSource) {
  const directory = pathInSource.split(sep).slice(0, -1).join('/');
  return (
    PURE_SUBFOLDERS.find((folder) => directory === folder || directory.startsWith(`${folder}/`)) ??
    folderOf(pathInSource)
  );
}

/** The layer name of a path relative to src/ ('core/replica.ts' → 'core', 'apps/kv/x.ts' → 'apps/kv'). */
function folderOf(pathInSource) {
  const parts = pathInSource.split(sep);
  if (parts.length === 1) return ENTRY_POINTS;
  if (parts[0] === 'apps' && parts.length > 2) return `apps/${parts[1]}`;
  return parts[0];
}

/** Index of the folder's layer in LAYERS, or -1 when the order does not place it. */
function rankOf(folder) {
  const pattern = folder.startsWith('apps/') ? 'apps/*' : folder;
  return LAYERS.findIndex((layer) => layer.includes(pattern));
}

function literalSpecifier(node) {
  if (node == null) return null;
  if (node.type === 'Literal' && typeof node.value === 'string') return node.value;
  if (node.type === 'TemplateLiteral' && node.expressions.length === 0) return node.quasis[0].value.cooked;
  // `typeof import('x')`: the argument is a literal type around the string.
  if (node.type === 'TSLiteralType') return literalSpecifier(node.literal);
  return null;
}

const layersRule = {
  meta: {
    type: 'problem',
    docs: { description: 'keep src/ folders in their layer order; keep pure folders free of I/O imports' },
    schema: [
      {
        type: 'object',
        properties: {
          sourceRoot: { type: 'string' },
          allowInPure: { type: 'array', items: { type: 'string' } },
        },
        required: ['sourceRoot'],
        additionalProperties: false,
      },
    ],
    messages: {
      upward:
        "src/{{from}}/ may not import src/{{to}}/: '{{to}}' is not below '{{from}}' in the layer order (docs/ARCHITECTURE.md, Layers)",
      unplaced:
        'src/{{folder}}/ has no place in the layer order: add it to LAYERS in scripts/eslint-layers.mjs and to docs/ARCHITECTURE.md',
      impureBuiltin:
        "src/{{from}}/ is pure: it may not import '{{specifier}}' (no Node built-ins or packages; docs/ARCHITECTURE.md, Layers)",
      impureFolder: 'src/{{from}}/ is pure: it may not import the non-pure src/{{to}}/',
    },
  },
  create(context) {
    const options = context.options[0];
    const sourceRoot = resolve(options.sourceRoot);
    const allowInPure = new Set(options.allowInPure ?? []);
    const filename = context.filename;
    const ownPath = relative(sourceRoot, filename);
    if (ownPath.startsWith('..') || isAbsolute(ownPath)) return {};
    const from = folderOf(ownPath);
    const fromRank = rankOf(from);
    const fromPure = isPurePath(ownPath);
    let reportedUnplaced = false;

    function check(node, specifierNode) {
      const specifier = literalSpecifier(specifierNode);
      if (specifier === null) return;
      if (fromRank === -1) {
        if (!reportedUnplaced) context.report({ node, messageId: 'unplaced', data: { folder: from } });
        reportedUnplaced = true;
        return;
      }
      if (!specifier.startsWith('.')) {
        if (fromPure && !allowInPure.has(specifier))
          context.report({
            node,
            messageId: 'impureBuiltin',
            data: { from: pureFolderOf(ownPath), specifier },
          });
        return;
      }
      const targetPath = relative(sourceRoot, resolve(dirname(filename), specifier));
      if (targetPath.startsWith('..') || isAbsolute(targetPath)) return;
      const to = folderOf(targetPath);
      if (fromPure && !isPurePath(targetPath)) {
        const target = to === from ? targetPath.split(sep).slice(0, -1).join('/') || to : to;
        context.report({
          node,
          messageId: 'impureFolder',
          data: { from: pureFolderOf(ownPath), to: target },
        });
        return;
      }
      if (to === from) return;
      const toRank = rankOf(to);
      if (toRank === -1) {
        context.report({ node, messageId: 'unplaced', data: { folder: to } });
      } else if (toRank >= fromRank) {
        context.report({ node, messageId: 'upward', data: { from, to } });
      }
    }

    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source),
      TSImportType: (node) => check(node, node.argument),
      TSExternalModuleReference: (node) => check(node, node.expression),
    };
  },
};

export default { meta: { name: 'phalanx-layers' }, rules: { layers: layersRule } };
