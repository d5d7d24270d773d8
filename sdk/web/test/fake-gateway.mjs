// An in-memory model of the gateway's document routes, for listener tests: versions, merge patch,
// If-Match, queries (through the SDK's evaluator, which the conformance table checks against the
// real gateway) and the change events each write publishes.
import { error, reply } from './helpers.mjs';
import { plan, run, sortKeys } from '../build/src/evaluate.js';
import { mergePatch } from '../build/src/merge.js';

export class FakeGateway {
  docs = new Map();
  events = [];
  clock = Date.parse('2026-12-01T00:00:00.000Z');
  queries = 0;
  /** set to an error reply to refuse the next write */
  refuseNext = null;

  now() {
    return new Date(++this.clock).toISOString();
  }

  write(collection, id, op, data) {
    const key = `${collection}/${id}`;
    const cur = this.docs.get(key);
    const at = this.now();
    if (op === 'delete') {
      this.docs.delete(key);
      const ev = { type: 'deleted', collection, id, version: cur.version + 1, owner_id: cur.owner_id, data: null, updated_at: at };
      this.events.push(ev);
      return ev;
    }
    const body = op === 'patch' ? mergePatch(cur.data, data) : data;
    const rec = cur
      ? { ...cur, version: cur.version + 1, updated_at: at, data: body }
      : { id, collection, owner_id: 'u1', version: 1, created_at: at, updated_at: at, data: body };
    this.docs.set(key, rec);
    this.events.push({ type: cur ? 'updated' : 'created', collection, id, version: rec.version, owner_id: rec.owner_id, data: body, updated_at: at });
    return rec;
  }

  routes() {
    const refuse = () => {
      const r = this.refuseNext;
      this.refuseNext = null;
      return r;
    };
    return {
      'POST *': (call) => {
        const m = /^\/v1\/collections\/(\w+)\/(documents|query)$/.exec(call.path);
        if (!m) return error(404, 'not_found');
        if (m[2] === 'query') {
          this.queries++;
          const p = plan(call.body);
          const all = run([...this.docs.values()].filter((d) => d.collection === m[1]), { ...p, limit: Infinity });
          const page = all.slice(0, p.limit);
          const last = page[page.length - 1];
          const next = all.length > p.limit && last ? Buffer.from(JSON.stringify({ o: 'x', k: sortKeys(last, p.order) })).toString('base64url') : null;
          return reply(200, { documents: page, next_cursor: next });
        }
        const refused = refuse();
        if (refused) return refused;
        return reply(201, this.write(m[1], call.body.id, 'create', call.body.data));
      },
      'GET *': (call) => {
        const [, , , c, , id] = call.path.split('/');
        const d = this.docs.get(`${c}/${id}`);
        return d ? reply(200, d) : error(404, 'not_found');
      },
      'PUT *': (call) => this.update(call, 'replace'),
      'PATCH *': (call) => this.update(call, 'patch'),
      'DELETE *': (call) => {
        const r = this.update(call, 'delete');
        return r.status === 200 ? reply(204, undefined, { etag: `"${this.events.at(-1).version}"` }) : r;
      },
    };
  }

  update(call, op) {
    const refused = this.refuseNext;
    this.refuseNext = null;
    if (refused) return refused;
    const [, , , c, , id] = call.path.split('/');
    const cur = this.docs.get(`${c}/${id}`);
    if (!cur) return error(404, 'not_found');
    const want = call.headers['if-match'];
    if (want && want !== `"${cur.version}"`) return error(412, 'version_mismatch');
    return reply(200, this.write(c, id, op, call.body?.data));
  }
}
