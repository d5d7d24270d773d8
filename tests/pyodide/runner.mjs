// Serves the gateway Worker (worker/) under Pyodide in Node, playing workerd's part.
//
// Usage: node runner.mjs <spec.json>
// The spec names the cache dir (node_modules from scripts/pyodide_setup.sh), the wheels of what the
// runtime provides (the workers SDK), the Worker's modules as uploaded (name, content type, base64
// content) and its main module, the SQLite file behind the D1 binding, the plain-text bindings and
// the collections JSON the ops path hands the migrations (the Worker reads its own from the bundle).
// Protocol: one JSON object per line. The runner first prints {"ready":true,...} (versions, timings,
// memory), then answers each line read from stdin:
//   {"op":"request","method","path","headers":{},"body":str|null,"body_base64"?:str} -> {"status","headers","body"}
//   {"op":"sql","sql","params":[]}                                  -> {"rows":[...]} (better-sqlite3)
//   {"op":"replication","paused":bool}                              -> {"commits","replica_at","reads"}
//   {"op":"migrate"}                                                -> {"applied":[names]} (worker.migrations over D1)
//   {"op":"scheduled"}                                              -> {"wait_until_errors":[...]} (cron event)
//   {"op":"stats"}                                                   -> {"memory":{...}}
//   {"op":"modules","prefixes":[..],"importable":[..]}              -> {"loaded":[..],"importable":{name:bool}}
//   {"op":"verified_tokens"}                                        -> {"entries": n} (the token cache)
// Errors come back as {"error": "..."}; Python's stdout/stderr go to this process's stderr.
// Nothing here reaches the network: fetch() is refused except for loopback addresses.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

import { D1Database } from "./d1shim.mjs";

// a short message instead of Node's dump of the (minified) line that threw
process.on("uncaughtException", (e) => {
  process.stderr.write(`runner failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const cacheRequire = createRequire(path.join(spec.cacheDir, "package.json"));
const pyodideDir = path.dirname(cacheRequire.resolve("pyodide/package.json"));
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
const Sqlite = cacheRequire("better-sqlite3");
const pyodideVersion = JSON.parse(
  fs.readFileSync(path.join(pyodideDir, "package.json"), "utf8"),
).version;

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// --- no network: the Worker may only reach loopback (and, here, nothing needs to) ----------------
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = new URL(typeof input === "string" ? input : input.url ?? String(input));
  if (url.protocol === "file:" || ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    return realFetch(input, init);
  }
  throw new TypeError(`network access refused in the Pyodide compatibility test: ${url.href}`);
};

// --- workerd's stand-ins -----------------------------------------------------------------------
class ExecutionContext {
  constructor() {
    this.pending = [];
  }
  waitUntil(promise) {
    this.pending.push(Promise.resolve(promise));
  }
  passThroughOnException() {}
  async drain() {
    const settled = await Promise.allSettled(this.pending.splice(0));
    return settled.filter((s) => s.status === "rejected").map((s) => String(s.reason));
  }
}

const db = new Sqlite(spec.dbPath);
const env = { ...spec.bindings, [spec.d1Binding]: new D1Database(db) };

const memory = (pyodide) => ({
  // linear memory reserved, and the allocator's break (the heap's high-water mark) inside it
  wasm_heap_bytes: pyodide._module.HEAP8.buffer.byteLength,
  wasm_sbrk_bytes: pyodide._module._sbrk(0),
  node_rss_bytes: process.memoryUsage().rss,
});

const t0 = performance.now();
const pyodide = await loadPyodide({
  indexURL: pyodideDir + path.sep,
  packageCacheDir: spec.packageCacheDir ?? path.join(spec.cacheDir, "pyodide-packages"),
  stdout: (line) => process.stderr.write(`[py] ${line}\n`),
  stderr: (line) => process.stderr.write(`[py:err] ${line}\n`),
});
const tBoot = performance.now();
const memBoot = memory(pyodide);

// Pyodide-built packages (e.g. cryptography) only if their files are already in the local cache:
// loadPackage would otherwise go to the CDN.
const lock = JSON.parse(fs.readFileSync(path.join(pyodideDir, "pyodide-lock.json")));
const pyodidePackages = {};
for (const name of spec.pyodidePackages ?? []) {
  const closure = new Set();
  const visit = (n) => {
    const entry = lock.packages[n];
    if (!entry || closure.has(n)) return;
    closure.add(n);
    (entry.depends ?? []).forEach(visit);
  };
  visit(name);
  const cacheDir = spec.packageCacheDir ?? path.join(spec.cacheDir, "pyodide-packages");
  const missing = [...closure].filter((n) => !fs.existsSync(path.join(cacheDir, lock.packages[n].file_name)));
  if (lock.packages[name] && missing.length === 0) {
    await pyodide.loadPackage([...closure], { messageCallback: () => {}, checkIntegrity: true });
    pyodidePackages[name] = { loaded: true, version: lock.packages[name].version };
  } else {
    pyodidePackages[name] = { loaded: false, version: lock.packages[name]?.version ?? null, missing };
  }
}

for (const wheel of spec.wheels) {
  pyodide.unpackArchive(new Uint8Array(fs.readFileSync(wheel)), "wheel");
}

// workerd-private modules the workers SDK imports
const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
pyodide.FS.writeFile(
  `${sitePackages}/_cloudflare_compat_flags.py`,
  "def __getattr__(name):\n    return False\n",
);
pyodide.registerJsModule("_pyodide_entrypoint_helper", {
  patchWaitUntil() {},
  cloudflareWorkersModule: { env, waitUntil: (p) => p },
  cloudflareSocketsModule: {},
  doAnImport: (name) => Promise.reject(new Error(`no JS module ${name} in the compatibility test`)),
  patch_env_helper() {
    throw new Error("patch_env is not supported in the compatibility test");
  },
});

// The Worker's modules exactly as infra/worker_bundle.py uploads them, laid out as workerd lays them
// out: every Python module's bytes at /session/metadata/<module name> (src/workerd/io/worker-modules.c++
// hands Pyodide each module's name and content; src/pyodide/internal/setupPackages.ts mountWorkerFiles
// mounts them at /session/metadata and adjustSysPath appends that directory to sys.path). A module
// name must end in ".py" (worker-modules.c++ KJ_REQUIRE); text/x-python-requirement modules are
// ignored (ObsoletePythonRequirement: "No longer supported; ignored").
const bundleRoot = "/session/metadata";
const ignoredModules = [];
for (const m of spec.modules) {
  if (m.content_type === "text/x-python-requirement") {
    ignoredModules.push(m.name);
    continue;
  }
  if (m.content_type !== "text/x-python") {
    throw new Error(`module ${m.name}: content type ${m.content_type} is not laid out by this test`);
  }
  if (!m.name.endsWith(".py")) throw new Error(`Python module ${m.name} does not end in .py`);
  const dst = `${bundleRoot}/${m.name}`;
  pyodide.FS.mkdirTree(path.posix.dirname(dst));
  pyodide.FS.writeFile(dst, Buffer.from(m.content_base64, "base64"));
}
pyodide.runPython(`import sys; sys.path.append(${JSON.stringify(bundleRoot)})`);
// the harness's own module lives outside the bundle, so it cannot stand in for a missing Worker module
pyodide.FS.mkdirTree("/harness");
pyodide.FS.writeFile("/harness/workers_host.py", fs.readFileSync(new URL("./workers_host.py", import.meta.url)));
pyodide.runPython(`import sys; sys.path.append("/harness")`);
// workerd: the main module's name must end in ".py" and is imported as its name minus ".py"
// (src/pyodide/python-entrypoint-helper.ts pyimportMainModule: MAIN_MODULE_NAME.slice(0, -3)).
if (!spec.mainModule.endsWith(".py")) throw new Error("Main module needs to end with a .py file extension");
const mainModuleName = spec.mainModule.slice(0, -3);
const tInstall = performance.now();

const host = pyodide.pyimport("workers_host");
const memBeforeImport = memory(pyodide);
let importResult;
let importError = null;
try {
  importResult = host.import_main(mainModuleName).toJs({ dict_converter: Object.fromEntries });
} catch (e) {
  importError = String(e);
}
const tImport = performance.now();
const memAfterImport = memory(pyodide);

out({
  ready: importError === null,
  import_error: importError,
  versions: {
    node: process.versions.node,
    pyodide: pyodideVersion,
    python: pyodide.runPython("import sys; sys.version.split()[0]"),
    sqlite: db.prepare("select sqlite_version()").pluck().get(),
  },
  pyodide_packages: pyodidePackages,
  timings_ms: {
    pyodide_boot: tBoot - t0,
    install_packages: tInstall - tBoot,
    import_workers_sdk: importResult ? importResult.sdk_seconds * 1000 : null,
    import_main_module: importResult ? importResult.seconds * 1000 : null,
    import_main_module_wall: tImport - tInstall,
  },
  memory: {
    after_boot: memBoot,
    before_import: memBeforeImport,
    after_import: memAfterImport,
  },
  ignored_modules: ignoredModules,
  loaded_modules: importError ? [] : host.loaded_modules(mainModuleName, ...(spec.ownPackages ?? [])).toJs(),
  other_modules: importError ? [] : host.loaded_modules(...(spec.watchModules ?? [])).toJs(),
  dependency_modules: importError ? [] : host.loaded_modules(...(spec.reportModules ?? [])).toJs(),
});
if (importError !== null) process.exit(0);

async function handle(msg) {
  if (msg.op === "request") {
    const init = { method: msg.method, headers: msg.headers ?? {} };
    if (msg.body !== null && msg.body !== undefined) init.body = msg.body;
    // raw bytes, for bodies that are not UTF-8 text (a str body is sent UTF-8 encoded)
    if (msg.body_base64 !== undefined) init.body = Buffer.from(msg.body_base64, "base64");
    const request = new Request(new URL(msg.path, spec.baseUrl).href, init);
    const ctx = new ExecutionContext();
    const started = performance.now();
    const response = await host.serve(mainModuleName, spec.entrypoint, request, env, ctx);
    const waitUntilErrors = await ctx.drain();
    if (!(response instanceof Response)) {
      throw new TypeError(`fetch() returned ${Object.prototype.toString.call(response)}, not a Response`);
    }
    const body = await response.text();
    return {
      status: response.status,
      headers: Object.fromEntries(response.headers.entries()),
      body,
      ms: performance.now() - started,
      wait_until_errors: waitUntilErrors,
    };
  }
  if (msg.op === "sql") {
    const stmt = db.prepare(msg.sql);
    if (stmt.reader) return { rows: stmt.all(...(msg.params ?? [])) };
    const info = stmt.run(...(msg.params ?? []));
    env[spec.d1Binding].noteCommit(); // a replica must not hide the test's own write forever
    return { info };
  }
  if (msg.op === "replication") {
    const d1 = env[spec.d1Binding];
    if (typeof msg.paused === "boolean") d1.replicationPaused = msg.paused;
    return { commits: d1.commits, replica_at: d1.replicaAt, reads: d1.reads };
  }
  if (msg.op === "migrate") {
    const applied = await host.migrate(env, JSON.stringify(spec.migrations), spec.collections);
    return { applied: applied.toJs() };
  }
  if (msg.op === "scheduled") {
    const ctx = new ExecutionContext();
    await host.scheduled(mainModuleName, spec.entrypoint, env, ctx);
    return { wait_until_errors: await ctx.drain() };
  }
  if (msg.op === "stats") return { memory: memory(pyodide) };
  if (msg.op === "verified_tokens") return { entries: host.verified_tokens() };
  if (msg.op === "modules") {
    const importable = {};
    for (const name of msg.importable ?? []) importable[name] = host.importable(name);
    return { loaded: host.loaded_modules(...(msg.prefixes ?? [])).toJs(), importable };
  }
  throw new Error(`unknown op ${msg.op}`);
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let msg;
  try {
    msg = JSON.parse(line);
    out(await handle(msg));
  } catch (e) {
    out({ error: String(e && e.stack ? e.stack : e) });
  }
}
db.close();
