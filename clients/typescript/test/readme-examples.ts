// The README's examples ("Integrating the dashboard" in the repository README, and this
// directory's), kept here so that `tsc --noEmit` checks them against the generated types. Not
// run: test/e2e.ts exercises the same calls against a controller.

import {
  createOpenClawsClient,
  eventResourceVersion,
  ok,
  OpenClawsApiError,
  type OpenClawInstance,
} from "../src/index.ts";

const client = createOpenClawsClient({ baseUrl: process.env.OPENCLAWS_API_URL!, token: process.env.OPENCLAWS_API_TOKEN! });

export async function applyAsDashboard(): Promise<void> {
  await client.apply("acme", {
    metadata: { labels: { plan: "pro" } },
    spec: { customerId: "cust-42", region: "iad", guest: { memoryMb: 4096 } },
  }, { fieldManager: "dashboard" });

  try {
    await client.apply("acme", { spec: { paused: false } }, { fieldManager: "dashboard" });
  } catch (e) {
    if (e instanceof OpenClawsApiError && e.isApplyConflict) {
      await client.apply("acme", { spec: { paused: false } }, { fieldManager: "dashboard", force: true });
    } else throw e;
  }
  const name = "acme";
  await ok(client.api.GET("/v1/instances/{name}", { params: { path: { name } } }));
}

export async function follow(customerId: string, show: (i: OpenClawInstance, deleted: boolean) => void, signal: AbortSignal) {
  const relist = async () => {
    const page = await ok(client.api.GET("/v1/instances", { params: { query: { customerId } } })); // one page of up to 1,000 here; follow metadata.continue beyond
    for (const item of page.items) show(item, false);
    return page.metadata.resourceVersion ?? "0";
  };
  let from = await relist();
  while (!signal.aborted) {
    try {
      for await (const event of client.watchInstances({ resourceVersion: from, customerId, signal })) {
        if (event.type === "ERROR") {
          if (event.object.error.code === "gone") from = await relist();
          break; // too_slow / unavailable: reopen from `from`
        }
        from = eventResourceVersion(event) ?? from;
        if (event.type !== "BOOKMARK") show(event.object, event.type === "DELETED");
      }
    } catch (e) {
      if (!(e instanceof OpenClawsApiError && e.code === "gone")) throw e;
      from = await relist();
    }
  }
}

export async function readToken(): Promise<string> {
  const token = await client.gatewayToken("acme");
  return token;
}

// clients/typescript/README.md
export async function quickTour(): Promise<void> {
  const instance = await ok(client.api.GET("/v1/instances/{name}", { params: { path: { name: "acme" } } }));
  void instance;
  await client.apply("acme", { spec: { customerId: "cust-42", region: "iad", guest: { memoryMb: 4096 } } },
    { fieldManager: "dashboard" });
  for await (const event of client.watchInstances({ labelSelector: "tier=pro" })) {
    if (event.type === "MODIFIED") console.log(event.object.metadata.name, event.object.status.phase);
  }
}
