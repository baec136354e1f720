// Types of scripts/eslint-layers.mjs for the TypeScript that imports it (test/lint/layers.test.ts).
import type { ESLint } from 'eslint';

/** The layer name of the modules directly in src/ (the package entry points). */
export declare const ENTRY_POINTS: string;
/** The layers of src/, bottom first; folders of one layer are siblings. */
export declare const LAYERS: readonly (readonly string[])[];
/** Folders whose modules import no Node built-in and no package. */
export declare const PURE_FOLDERS: readonly string[];
declare const plugin: ESLint.Plugin;
export default plugin;
