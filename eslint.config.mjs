// Lint, and the layering of DESIGN.md: imports point down only.
//   renderer -> (types of) core/api     main/server/cli -> core     core -> never electron or a host
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import ts from 'typescript-eslint';

const hosts = ['**/main/**', '**/server/**', '**/cli/**', '**/preload/**', '**/renderer/**'];

/** One no-restricted-imports entry per core folder: never electron or a host, and never a folder above it. */
function coreLayers(above) {
  return Object.entries(above).map(([folder, banned]) => ({
    files: [`electron/core/${folder}/**`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'electron', message: 'core/ runs in all three hosts: it never imports electron' }],
          patterns: [
            { group: hosts, message: 'core/ must not import a host layer (imports point down only)' },
            ...(banned.length
              ? [
                  {
                    group: banned.map((b) => `**/${b}/**`),
                    message: `core/${folder} sits below ${banned.join(', ')} (docs/ARCHITECTURE.md)`,
                  },
                ]
              : []),
          ],
        },
      ],
    },
  }));
}

export default ts.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', 'test/fixtures/out/**'] },
  js.configs.recommended,
  ...ts.configs.recommended,
  ...svelte.configs['flat/recommended'],
  prettier,
  ...svelte.configs['flat/prettier'],
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: ts.parser, extraFileExtensions: ['.svelte'] }, globals: { ...globals.browser } },
  },
  // Inside core, each folder may import only the folders below it (docs/ARCHITECTURE.md):
  //   api, clock, paths  <  store, qemu  <  auth, supervisor, resources  <  vms  <  consoles, portable, ha  <  cluster  <  host
  ...coreLayers({
    api: ['store', 'qemu', 'auth', 'supervisor', 'resources', 'vms', 'consoles', 'portable', 'ha', 'cluster', 'host'],
    store: ['qemu', 'auth', 'supervisor', 'resources', 'vms', 'consoles', 'portable', 'ha', 'cluster', 'host'],
    qemu: ['store', 'auth', 'supervisor', 'resources', 'vms', 'consoles', 'portable', 'ha', 'cluster', 'host'],
    auth: ['qemu', 'supervisor', 'resources', 'vms', 'consoles', 'portable', 'ha', 'cluster', 'host'],
    supervisor: ['store', 'auth', 'resources', 'vms', 'consoles', 'portable', 'ha', 'cluster', 'host'],
    resources: ['auth', 'supervisor', 'vms', 'consoles', 'portable', 'ha', 'cluster', 'host'],
    vms: ['auth', 'consoles', 'portable', 'ha', 'cluster', 'host'],
    consoles: ['auth', 'host', 'store', 'portable', 'ha', 'cluster'],
    portable: ['auth', 'consoles', 'supervisor', 'resources', 'ha', 'cluster', 'host'],
    // HA sits on the VM layer; its fencer (below) is a process of its own
    ha: ['consoles', 'portable', 'cluster', 'host'],
    // above vms/, reached only through its public classes (the Vms object), never the store or QEMU
    cluster: ['store', 'qemu', 'auth', 'supervisor', 'resources', 'consoles', 'portable', 'host'],
    host: [],
  }),
  // the fencer runs alone, on plain Node: no store, no native module, nothing that waits on the host
  {
    files: ['electron/core/ha/fencer/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'better-sqlite3', message: 'the fencer loads no native module' },
            { name: 'electron', message: 'core/ runs in all three hosts: it never imports electron' },
          ],
          patterns: [
            {
              group: [
                '**/store/**',
                '**/vms/**',
                '**/resources/**',
                '**/supervisor/**',
                '**/host/**',
                '**/consoles/**',
                '**/auth/**',
                'etcd3',
              ],
              message: 'the fencer is a small separate process: it needs only qemu/proc and its own files',
            },
          ],
        },
      ],
    },
  },
  // the leaves at core's top (clock, paths, version…) import no folder of core
  ...coreLayers({
    '': ['api', 'store', 'auth', 'qemu', 'supervisor', 'resources', 'vms', 'consoles', 'portable', 'ha', 'cluster', 'host'],
  }).map((c) => ({
    ...c,
    files: ['electron/core/*.ts'],
  })),
  {
    files: ['electron/server/**', 'electron/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'electron', message: 'serve and the CLI run under plain Node' }],
          patterns: [{ group: ['**/main/**', '**/preload/**', '**/renderer/**'], message: 'a host talks to core/, not to another host' }],
        },
      ],
    },
  },
  {
    files: ['electron/preload/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/core/**', '**/main/**', '**/server/**', '**/cli/**', 'node:*'],
              message: 'the preload is one generic bridge and nothing else',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['renderer/src/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'electron', message: 'the renderer reaches the host only through lib/api' }],
          patterns: [
            {
              regex: '(^|/)electron/(?!core/api/(contract|units|rules|roles|nics)(\\.js)?$)',
              message: 'the renderer may only use the contract (core/api) from electron/',
            },
            { group: ['**/electron/core/api/contract*'], allowTypeImports: true, message: 'import only types from the contract' },
            { group: ['node:*'], message: 'the renderer runs in a browser' },
          ],
        },
      ],
    },
  },
);
