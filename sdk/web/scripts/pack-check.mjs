// The published tarball holds exactly the built files: `npm pack --dry-run` must list package.json,
// README.md, dist/index.js (+ its source map) and one declaration file per module of src/, nothing
// else (no sources, tests, scripts or stale build output) and nothing missing.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const modules = readdirSync('src').filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
const expected = new Set(['package.json', 'README.md', 'dist/index.js', 'dist/index.js.map',
  ...modules.map((f) => `dist/${f.replace(/\.ts$/, '.d.ts')}`)]);
const [report] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' }));
const packed = new Set(report.files.map((f) => f.path));
const extra = [...packed].filter((f) => !expected.has(f));
const missing = [...expected].filter((f) => !packed.has(f));
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const entries = [pkg.main, pkg.module, pkg.types, pkg.exports['.'].import, pkg.exports['.'].types]
  .map((p) => p.replace(/^\.\//, ''))
  .filter((p) => !packed.has(p));
const problems = [
  ...extra.map((f) => `packed but not a built file: ${f}`),
  ...missing.map((f) => `built file missing from the tarball: ${f}`),
  ...entries.map((f) => `package.json points at ${f}, which is not packed`),
];
if (problems.length) {
  console.error(`sdk/web: npm pack --dry-run:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.error(`sdk/web: the tarball holds exactly the ${packed.size} built files (${report.size} bytes packed)`);
