// Every row of tests/conformance/query_semantics.json through the SDK's evaluator: the same file the
// gateway's test (tests/unit/test_query_conformance.py) runs against SQLite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cursorKeys, plan, run, sortKeys } from '../../build/src/evaluate.js';

const table = JSON.parse(readFileSync(new URL('../../../../tests/conformance/query_semantics.json', import.meta.url), 'utf8'));

function records(group) {
  return group.documents.map((d, i) => ({
    id: d.id,
    collection: 'conformance',
    owner_id: d.owner_id ?? null,
    version: 1,
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    updated_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    data: d.data,
  }));
}

/** Pages as the server serves them: limit, then resume after the last row's sort keys. */
function pages(docs, query) {
  const p = plan(query);
  const out = [];
  for (;;) {
    const all = run(docs, { ...p, limit: Infinity });
    const page = all.slice(0, p.limit);
    out.push(page.map((d) => d.id));
    if (all.length <= p.limit || out.length > 50) return out;
    p.after = sortKeys(page[page.length - 1], p.order);
  }
}

for (const group of table.groups) {
  test(`conformance: ${group.name}`, () => {
    const docs = records(group);
    for (const c of group.cases) {
      if (c.pages) {
        assert.deepEqual(pages(docs, c.query), c.pages, c.name);
      } else {
        assert.deepEqual(run(docs, plan(c.query)).map((d) => d.id), c.ids, c.name);
      }
      if ('count' in c) {
        const counted = run(docs, { ...plan(c.query), limit: Infinity }).length;
        assert.equal(counted, c.count, `${c.name}: count`);
      }
    }
  });
}

test('every operator of the grammar has a row', () => {
  const ops = new Set(table.groups.flatMap((g) => g.cases.flatMap((c) => (c.query.where ?? []).map((w) => w[1]))));
  assert.deepEqual([...ops].sort(), ['!=', '<', '<=', '==', '>', '>=', 'array-contains', 'exists', 'in', 'not-in']);
});

test('a gateway cursor decodes to its sort keys (base64url JSON, UTF-8)', () => {
  const raw = JSON.stringify({ o: '0123456789ab', k: ['Zürich 😀', null, 3.5, 'id-1'] });
  const cursor = Buffer.from(raw, 'utf8').toString('base64url');
  assert.deepEqual(cursorKeys(cursor), ['Zürich 😀', null, 3.5, 'id-1']);
});

test('a live query with startAfter(cursor) resumes exactly where the server would', () => {
  const group = table.groups.find((g) => g.name === 'ordering');
  const docs = records(group);
  const query = { order_by: ['team', ['score', 'desc']], limit: 3 };
  const first = run(docs, plan(query));
  const keys = sortKeys(first[2], plan(query).order);
  const cursor = Buffer.from(JSON.stringify({ o: 'x', k: keys })).toString('base64url');
  assert.deepEqual(run(docs, plan({ ...query, cursor })).map((d) => d.id), ['o8', 'o1', 'o6']);
});
