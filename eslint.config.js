// @ts-check
// ESLint (flat config) for the dashboard's JavaScript: the browser modules under web/static/js and
// their node --test suites under tests/js. Vendored code (Lightweight Charts, the API docs' bundles)
// is not ours to lint. Run by scripts/test.sh (npx eslint .).
import js from '@eslint/js';
import globals from 'globals';

export default [
    {
        ignores: [
            'web/static/js/lightweight-charts.standalone.production.js',
            'legend/adapters/http/apidocs/**',
            'node_modules/**',
            '.venv/**',
            'build/**',
            'artifacts/**',
        ],
    },
    js.configs.recommended,
    {
        files: ['web/static/js/**/*.js'],
        languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.browser } },
    },
    {
        files: ['web/static/sw.js'],
        languageOptions: { ecmaVersion: 2022, sourceType: 'script', globals: { ...globals.serviceworker } },
    },
    {
        files: ['tests/js/**/*.js', 'eslint.config.js'],
        languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.node } },
    },
    {
        rules: {
            'no-unused-vars': ['error', { args: 'none', caughtErrors: 'none' }],
            eqeqeq: ['error', 'always'],
            'no-var': 'error',
            'prefer-const': 'error',
        },
    },
];
