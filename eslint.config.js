// Lint rules: typescript-eslint's recommended set with type information, plus the house rules
// (no `any`, `node:` imports, no floating promises, and the layer order of src/ folders, checked
// by the local rule in scripts/eslint-layers.mjs). Formatting is Prettier's job.
import { join } from 'node:path';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import layers from './scripts/eslint-layers.mjs';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.phalanx/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex:
                '^(fs|path|crypto|net|http|os|url|util|child_process|events|stream|zlib|perf_hooks|worker_threads|tls|dns|assert|buffer|readline|timers)(/.*)?$',
              message: 'import Node built-ins with the node: prefix',
            },
          ],
        },
      ],
    },
  },
  {
    // docs/ARCHITECTURE.md, "Layers": each src/ folder imports only folders below it, and the
    // pure folders (messages/, core/, adversary/) import no Node built-in and no package.
    files: ['src/**/*.ts'],
    plugins: { layers },
    rules: { 'layers/layers': ['error', { sourceRoot: join(import.meta.dirname, 'src'), allowInPure: [] }] },
  },
  {
    // The pure folders read no clock, set no timer, draw no randomness and never wait (a step is
    // one synchronous function of its event). These are globals and syntax, so the layer rule
    // (imports only) cannot see them; the usual ways in are named here.
    files: ['src/core/**/*.ts', 'src/messages/**/*.ts', 'src/adversary/**/*.ts', 'src/recovery/core/**/*.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...[
          'setTimeout',
          'setInterval',
          'setImmediate',
          'queueMicrotask',
          'performance',
          'process',
          'crypto',
          'fetch',
        ].map((name) => ({
          name,
          message: 'core/, messages/, adversary/ and recovery/core/ are pure (docs/ARCHITECTURE.md, Layers)',
        })),
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'Date',
          property: 'now',
          message: 'core/, messages/, adversary/ and recovery/core/ are pure: time comes in as an event',
        },
        {
          object: 'Math',
          property: 'random',
          message: 'core/, messages/, adversary/ and recovery/core/ are pure: no randomness',
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'core/, messages/, adversary/ and recovery/core/ are pure: time comes in as an event',
        },
        {
          selector: 'AwaitExpression, :function[async=true]',
          message:
            'core/, messages/, adversary/ and recovery/core/ are pure: a step never waits (results come back as events)',
        },
      ],
    },
  },
  {
    // node:test's describe/it return promises the runner itself tracks.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
