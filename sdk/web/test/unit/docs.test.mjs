// docs/sdk.md documents every export of the package, and the published bundle exports what src/index.ts says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const index = readFileSync(new URL('../../src/index.ts', import.meta.url), 'utf8');
const docs = readFileSync(new URL('../../../../docs/sdk.md', import.meta.url), 'utf8');

/** name -> whether it is a type-only export */
function exported() {
  const names = new Map();
  for (const m of index.matchAll(/export (type )?\{([^}]*)\}/g)) {
    for (const raw of m[2].split(',')) {
      const item = raw.trim();
      if (!item) continue;
      const isType = Boolean(m[1]) || item.startsWith('type ');
      names.set(item.replace(/^type /, '').split(' as ').pop().trim(), isType);
    }
  }
  return names;
}

test('every export is in docs/sdk.md', () => {
  const missing = [...exported().keys()].filter((name) => !new RegExp('`' + name + '[`(<]').test(docs));
  assert.deepEqual(missing, [], 'exports missing from docs/sdk.md (write them as `name` or `name(...)`)');
});

test('every function the reference documents is exported', () => {
  const names = exported();
  const documented = [...docs.matchAll(/^#### `(\w+)\(/gm)].map((m) => m[1]);
  assert.ok(documented.length > 20);
  assert.deepEqual(documented.filter((n) => !names.has(n)), []);
});

test('the published bundle exports every runtime name of src/index.ts', async () => {
  const dist = await import('../../dist/index.js');
  const runtime = [...exported()].filter(([, isType]) => !isType).map(([n]) => n).sort();
  assert.deepEqual(Object.keys(dist).sort(), runtime);
});
