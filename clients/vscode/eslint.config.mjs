// Lint config: typescript-eslint recommended, plus a guard that pure modules never import vscode.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const PURE = ['src/protocol.ts', 'src/launch.ts', 'src/settings.ts', 'src/status.ts', 'src/picks.ts', 'test/**/*.ts'];

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', 'e2e/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      eqeqeq: 'error',
      curly: 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: PURE,
    rules: {
      'no-restricted-imports': ['error', { paths: ['vscode', 'vscode-languageclient', 'vscode-languageclient/node'] }],
    },
  },
);
