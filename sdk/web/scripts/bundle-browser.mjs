// One ES module with the SDK and `centrifuge` inside, for pages without a bundler (examples/notes-web,
// the real-browser tests). Build output, never committed: `node scripts/bundle-browser.mjs [outfile]`.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('..', import.meta.url));
const outfile = process.argv[2] ?? `${here}../../examples/notes-web/telestack.js`;
await build({
  entryPoints: [`${here}src/index.ts`],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outfile,
  logLevel: 'warning',
});
