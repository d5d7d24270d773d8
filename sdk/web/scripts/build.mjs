// dist/index.js: one ESM bundle of src/ with `centrifuge` left as an import (the runtime dependency);
// the .d.ts files come from `tsc --emitDeclarationOnly` (package.json "build").
import { build } from 'esbuild';

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
