// dist/index.js: one ESM bundle of src/ with `centrifuge` left as an import (the runtime dependency);
// the .d.ts files come from `tsc --emitDeclarationOnly` (package.json "build").
// build/src/*.js: each module transpiled on its own, for the unit tests of internals (not published).
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';

// from scratch: a file left by an older build would otherwise be published (scripts/pack-check.mjs)
rmSync('dist', { recursive: true, force: true });

await build({
  entryPoints: ['src/index.ts'],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  external: ['centrifuge'],
  outfile: 'dist/index.js',
  sourcemap: true,
  logLevel: 'warning',
});

await build({
  entryPoints: readdirSync('src').filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).map((f) => `src/${f}`),
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  outdir: 'build/src',
  logLevel: 'warning',
});
