// The client against a running controller, as the dashboard uses it: create, apply with a field
// manager (and a conflict with another manager, then force), watch, read the gateway token,
// delete. Run by `scripts/ts-client.sh e2e` (the Rust test tests/api/ts_client.rs starts the
// stack) with OPENCLAWS_API_URL and OPENCLAWS_API_TOKEN (a writer token). Exits non-zero on the
// first failed step.

import assert from "node:assert/strict";
import {
  createOpenClawsClient,
  eventResourceVersion,
  ok,
  OpenClawsApiError,
  type InstanceWatchEvent,
  type OpenClawInstance,
} from "../src/index.ts";

const baseUrl = process.env.OPENCLAWS_API_URL;
const token = process.env.OPENCLAWS_API_TOKEN;
if (!baseUrl || !token) {
  throw new Error("set OPENCLAWS_API_URL and OPENCLAWS_API_TOKEN");
}
const STEP_TIMEOUT_MS = Number(process.env.OPENCLAWS_E2E_TIMEOUT_MS ?? 60_000);

const client = createOpenClawsClient({ baseUrl, token });
const { api } = client;
const name = `ts-${Date.now().toString(36)}`;
const selector = `e2e=${name}`;

function step(text: string): void {
  console.log(`[e2e] ${text}`);
}

/** Polls `probe` until it returns a value other than undefined. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${STEP_TIMEOUT_MS} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// 1. Create (PUT, the generated route) with a label the watch selects on.
step(`create ${name}`);
const created = await api.PUT("/v1/instances/{name}", {
  params: { path: { name }, query: { fieldManager: "signup" } },
  body: {
    metadata: { labels: { e2e: name } },
    spec: { customerId: "cust-ts", region: "iad" },
  },
});
assert.equal(created.response.status, 201, `PUT answered ${created.response.status}`);
assert.ok(created.data, "PUT returned the instance");
assert.equal(created.data.metadata.name, name);
assert.equal(created.data.spec.customerId, "cust-ts");

// 2. Watch from a list's version (every change after it), in the background.
const listed = await ok(api.GET("/v1/instances", { params: { query: { labelSelector: selector } } }));
assert.equal(listed.items.length, 1, "the list selects the new instance");
const from = listed.metadata.resourceVersion ?? "0";
step(`watch ${selector} from resourceVersion ${from}`);
const events: InstanceWatchEvent[] = [];
let watchError: unknown;
const stopWatch = new AbortController();
const watching = (async () => {
  try {
    for await (const event of client.watchInstances({
      resourceVersion: from,
      labelSelector: selector,
      signal: stopWatch.signal,
    })) {
      events.push(event);
    }
  } catch (e) {
    watchError = e;
  }
})();
const seen = (what: string, match: (e: InstanceWatchEvent) => boolean) =>
  eventually(what, () => {
    if (watchError !== undefined) {
      throw watchError;
    }
    return events.find(match);
  });

// 3. Apply a spec change as the dashboard.
step("apply guest.memoryMb=4096 with fieldManager=dashboard");
const applied = await client.apply(
  name,
  { spec: { guest: { memoryMb: 4096 } } },
  { fieldManager: "dashboard" },
);
assert.equal(applied.spec.guest?.memoryMb, 4096);
const dashboard = applied.metadata.managedFields?.find((m) => m.manager === "dashboard");
assert.deepEqual(dashboard?.fields, ["/spec/guest/memoryMb"], "the dashboard owns what it applied");

// 4. The watch sees the change (a MODIFIED with the new spec).
const modified = await seen("a MODIFIED event with memoryMb 4096", (e) =>
  e.type === "MODIFIED" && e.object.spec.guest?.memoryMb === 4096,
);
step(`watch: MODIFIED at resourceVersion ${eventResourceVersion(modified)}`);

// 5. Another manager's apply of the same field conflicts (409 naming the owner) until forced.
step("apply by fieldManager=support conflicts, then force takes the field over");
const conflict = await client
  .apply(name, { spec: { guest: { memoryMb: 2048 } } }, { fieldManager: "support" })
  .then(
    () => undefined,
    (e: unknown) => e,
  );
assert.ok(conflict instanceof OpenClawsApiError, `expected an API error, got ${String(conflict)}`);
assert.equal(conflict.status, 409);
assert.equal(conflict.code, "conflict");
assert.ok(conflict.isApplyConflict, "the 409 is an apply conflict");
assert.deepEqual(
  conflict.fields.map((f) => [f.path, f.message]),
  [["/spec/guest/memoryMb", "is managed by dashboard"]],
);
const forced = await client.apply(
  name,
  { spec: { guest: { memoryMb: 2048 } } },
  { fieldManager: "support", force: true },
);
assert.equal(forced.spec.guest?.memoryMb, 2048);
await seen("a MODIFIED event with memoryMb 2048", (e) =>
  e.type === "MODIFIED" && e.object.spec.guest?.memoryMb === 2048,
);

// 6. The gateway token, once the controller has generated it (409 until its first reconcile).
step("read the gateway token");
const gatewayToken = await eventually("the gateway token", async () => {
  try {
    return await client.gatewayToken(name);
  } catch (e) {
    if (e instanceof OpenClawsApiError && e.status === 409) {
      return undefined;
    }
    throw e;
  }
});
assert.equal(typeof gatewayToken, "string");
assert.ok(gatewayToken.length >= 16, "a real token");

// 7. The controller's status progress arrives as MODIFIED events too.
await seen("a MODIFIED event with a status phase", (e) =>
  e.type === "MODIFIED" && typeof e.object.status.phase === "string",
);

// 8. Delete: 202 with the deletion requested, then DELETED on the watch once torn down.
step("delete");
const deleted = await api.DELETE("/v1/instances/{name}", { params: { path: { name } } });
assert.equal(deleted.response.status, 202, `DELETE answered ${deleted.response.status}`);
assert.ok(deleted.data?.metadata.deletionTimestamp, "deletionTimestamp is set");
const gone = await seen("a DELETED event", (e) => e.type === "DELETED");
assert.equal(gone.type === "DELETED" && (gone.object as OpenClawInstance).metadata.name, name);
const missing = await ok(api.GET("/v1/instances/{name}", { params: { path: { name } } })).then(
  () => undefined,
  (e: unknown) => e,
);
assert.ok(missing instanceof OpenClawsApiError && missing.status === 404 && missing.code === "not_found");

stopWatch.abort();
await watching;
assert.equal(watchError, undefined, `the watch failed: ${String(watchError)}`);
const types = events.map((e) => e.type);
step(`watch saw ${types.length} events: ${[...new Set(types)].join(", ")}`);
step("ok");
