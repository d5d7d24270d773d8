// Minified + gzipped size of the SDK as an app bundler would ship it: without and with `centrifuge`.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';

async function measure(external) {
  const out = await build({
    entryPoints: ['src/index.ts'], bundle: true, minify: true, format: 'esm', platform: 'browser',
    target: 'es2022', external, write: false, logLevel: 'error',
  });
  const bytes = out.outputFiles[0].contents;
  return { min: bytes.length, gz: gzipSync(bytes, { level: 9 }).length };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const without = await measure(['centrifuge']);
const withCf = await measure([]);
console.log(`without centrifuge: ${kb(without.gz)} min+gz (${kb(without.min)} minified)`);
console.log(`with centrifuge:    ${kb(withCf.gz)} min+gz (${kb(withCf.min)} minified)`);
const BUDGET = 15 * 1024;
if (without.gz > BUDGET) {
  console.error(`over the ${kb(BUDGET)} budget without centrifuge`);
  process.exitCode = 1;
}
