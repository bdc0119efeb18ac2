// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      'no-console': 'error',
      // client-node's models are classes with no behaviour; object literals of their shape are what
      // its own docs pass.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      complexity: ['error', 20],
      'max-depth': ['error', 4],
    },
  },
  {
    // Test harness and CLI scripts talk to a terminal, not to the operator's log.
    files: ['test/**', 'bench/**'],
    rules: { 'no-console': 'off' },
  },
  { files: ['**/*.js', '**/*.mjs'], extends: [tseslint.configs.disableTypeChecked] },
  {
    // The examples are plain JavaScript for Node.js, for users to copy: no type information, Node's globals.
    files: ['examples/**/*.mjs'],
    languageOptions: {
      globals: Object.fromEntries(
        'AbortController AbortSignal Buffer URL URLSearchParams clearInterval clearTimeout fetch process setInterval setTimeout structuredClone'
          .split(' ')
          .map((name) => [name, 'readonly']),
      ),
    },
  },
);
