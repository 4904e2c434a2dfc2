// Typed client for the openclaws-controller API.
//
// `createOpenClawsClient` returns an openapi-fetch client typed by `schema.d.ts` (generated from
// the API's /openapi.json by `make ts-client`; never edit it by hand) with the bearer token set,
// plus the helpers a generator cannot give: server-side apply with a field manager, watches as
// async iterators over NDJSON, and errors as a typed exception.

import createClient, { type Client } from "openapi-fetch";
import type { Writable } from "openapi-typescript-helpers";
import type { components, operations, paths } from "./schema.d.ts";

export type { components, operations, paths };

type Schemas = components["schemas"];
/** An instance as the API renders it. */
export type OpenClawInstance = Schemas["OpenClawInstance"];
/** A page of instances. */
export type OpenClawInstanceList = Schemas["OpenClawInstanceList"];
// Request bodies as openapi-fetch accepts them (`Writable`: a property the schema allows only as
// `null`, such as `requestId` beside `latest: true` in an approval, is left out instead).
/** Body of `PUT /v1/instances/{name}`. */
export type InstanceWrite = Writable<Schemas["InstanceWrite"]>;
/** Body of a merge patch (`null` removes a field). */
export type InstancePatch = Writable<Schemas["InstancePatch"]>;
/** Body of a server-side apply: every field the field manager wants set. */
export type InstanceApply = Writable<Schemas["InstanceApply"]>;
/** The API's error shape. */
export type ErrorBody = Schemas["ErrorBody"];
/** A stored event of an instance. */
export type InstanceEvent = Schemas["Event"];
/** The gateway token of an instance. */
export type GatewayToken = Schemas["GatewayToken"];
/** The object of a BOOKMARK watch event. */
export type WatchBookmark = Schemas["WatchBookmark"];

/** One event of an instance watch, its `object` narrowed by `type`. */
export type InstanceWatchEvent =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: OpenClawInstance }
  | { type: "BOOKMARK"; object: WatchBookmark }
  | { type: "ERROR"; object: ErrorBody };

// The schema's own event type must admit every variant above (a compile-time check that they
// stay in step when the schema is regenerated).
type Assert<T extends true> = T;
export type _WatchEventMatchesSchema = Assert<
  InstanceWatchEvent extends Omit<Schemas["WatchEvent"], "type"> & { type: Schemas["WatchEventType"] }
    ? true
    : false
>;

/**
 * The openapi-fetch client over every documented route. Answers are typed by their
 * `application/json` content: a plain list is a list (watches, whose answers are streams, go
 * through {@link OpenClawsClient.watchInstances}).
 */
export type OpenClawsFetchClient = Client<paths, "application/json">;

/** An error answer of the API (any 4xx/5xx with its error shape), or a malformed answer. */
export class OpenClawsApiError extends Error {
  /** HTTP status (0 when the answer was not the API's error shape). */
  readonly status: number;
  /** Stable machine-readable code: `conflict`, `not_found`, `invalid`, `gone`, ... */
  readonly code: string;
  /** The invalid fields (422), or each field an apply conflicts on with its owner (409). */
  readonly fields: Schemas["FieldError"][];
  /** `gone` only: the current resource version, to list again from. */
  readonly resourceVersion: string | undefined;
  /** Seconds to wait before retrying (429 and 503). */
  readonly retryAfter: number | undefined;

  constructor(status: number, body: ErrorBody, retryAfter?: number) {
    super(`${status} ${body.error.code}: ${body.error.message}`);
    this.name = "OpenClawsApiError";
    this.status = status;
    this.code = body.error.code;
    this.fields = body.error.fields ?? [];
    this.resourceVersion = body.error.resourceVersion ?? undefined;
    this.retryAfter = retryAfter;
  }

  /** A 409 from an apply: fields other field managers own (`force: true` takes them over). */
  get isApplyConflict(): boolean {
    return this.status === 409 && this.fields.some((f) => f.message.startsWith("is managed by"));
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== "object" || value === null || !("error" in value)) {
    return false;
  }
  const error = (value as { error: unknown }).error;
  return typeof error === "object" && error !== null && "code" in error && "message" in error;
}

/** The typed exception for an error answer `body` of `response`. */
export function apiError(response: Response, body: unknown): OpenClawsApiError {
  const retry = Number(response.headers.get("Retry-After"));
  const retryAfter = Number.isFinite(retry) && retry > 0 ? retry : undefined;
  if (isErrorBody(body)) {
    return new OpenClawsApiError(response.status, body, retryAfter);
  }
  return new OpenClawsApiError(
    response.status,
    { error: { code: "unexpected", message: `HTTP ${response.status} without the API's error shape` } },
    retryAfter,
  );
}

/**
 * The data of an openapi-fetch result, or its error as an {@link OpenClawsApiError}:
 * `const instance = await ok(api.GET("/v1/instances/{name}", { params: { path: { name } } }))`.
 */
export async function ok<D>(
  result: Promise<{ data?: D; error?: unknown; response: Response }>,
): Promise<D> {
  const { data, error, response } = await result;
  if (!response.ok || error !== undefined) {
    throw apiError(response, error);
  }
  return data as D;
}

/** Options of {@link OpenClawsClient.apply}. */
export interface ApplyOptions {
  /** Who owns the fields this apply sets (e.g. `dashboard`); required by the API. */
  fieldManager: string;
  /** Take over fields other managers own instead of failing with a 409. */
  force?: boolean;
  /** Validate and plan only: nothing is stored. */
  dryRun?: boolean;
  /** Precondition: the current resource version. */
  ifMatch?: string;
}

type ListQuery = NonNullable<operations["list_instances"]["parameters"]["query"]>;

/** Options of {@link OpenClawsClient.watchInstances}. */
export interface WatchOptions {
  /** Send the changes after this version; absent or `"0"`: every instance as ADDED first. */
  resourceVersion?: string;
  /** Kubernetes label selector (`env=prod,tier in (web,api)`). */
  labelSelector?: string;
  /** Field selector over `status.phase` and `spec.customerId`. */
  fieldSelector?: string;
  /** Only this customer's instances. */
  customerId?: string;
  /** Only instances in this phase. */
  phase?: ListQuery["phase"];
  /** End the stream after this many seconds (1-3600; the server's default is 1800). */
  timeoutSeconds?: number;
  /** `false` turns bookmarks off (heartbeats keep the stream open instead). */
  allowWatchBookmarks?: boolean;
  /** Stops the watch (the iterator then ends). */
  signal?: AbortSignal;
}

/** The client: the typed openapi-fetch routes plus the dashboard's helpers. */
export interface OpenClawsClient {
  /** Every documented route, typed (GET, PUT, PATCH, DELETE, POST). */
  api: OpenClawsFetchClient;
  /** Server-side apply of `body` by `fieldManager`; creates the instance when there is none. */
  apply(name: string, body: InstanceApply, options: ApplyOptions): Promise<OpenClawInstance>;
  /** Streams instance watch events (NDJSON) until the server ends the stream or `signal` aborts. */
  watchInstances(options?: WatchOptions): AsyncGenerator<InstanceWatchEvent, void, undefined>;
  /** The instance's gateway token (writer token only; each read is recorded as an event). */
  gatewayToken(name: string): Promise<string>;
}

/** Options of {@link createOpenClawsClient}. */
export interface ClientOptions {
  /** The controller's API, e.g. `https://controller.example.com`. */
  baseUrl: string;
  /** Writer token (every route) or reader token (GET only). */
  token: string;
  /** A fetch of your own (tests, proxies); the global fetch by default. */
  fetch?: typeof globalThis.fetch;
}

/** A client for the API at `baseUrl` authenticating with `token`. */
export function createOpenClawsClient(options: ClientOptions): OpenClawsClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const authorization = `Bearer ${options.token}`;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const api = createClient<paths, "application/json">({
    baseUrl,
    headers: { Authorization: authorization },
    fetch: (request: Request) => fetchImpl(request),
  });

  async function apply(name: string, body: InstanceApply, o: ApplyOptions): Promise<OpenClawInstance> {
    const headers: Record<string, string> = { "Content-Type": "application/apply-patch+json" };
    if (o.ifMatch !== undefined) {
      headers["If-Match"] = o.ifMatch;
    }
    return ok(
      api.PATCH("/v1/instances/{name}", {
        params: {
          path: { name },
          query: {
            fieldManager: o.fieldManager,
            ...(o.force === undefined ? {} : { force: o.force }),
            ...(o.dryRun ? { dryRun: "All" } : {}),
          },
        },
        headers,
        body,
      }),
    );
  }

  async function* watchInstances(o: WatchOptions = {}): AsyncGenerator<InstanceWatchEvent, void, undefined> {
    const query = new URLSearchParams({ watch: "true" });
    for (const key of [
      "resourceVersion",
      "labelSelector",
      "fieldSelector",
      "customerId",
      "phase",
      "timeoutSeconds",
      "allowWatchBookmarks",
    ] as const) {
      const value = o[key];
      if (value !== undefined) {
        query.set(key, String(value));
      }
    }
    const init: RequestInit = {
      headers: { Authorization: authorization, Accept: "application/x-ndjson" },
    };
    if (o.signal !== undefined) {
      init.signal = o.signal;
    }
    const response = await fetchImpl(`${baseUrl}/v1/instances?${query}`, init);
    if (!response.ok) {
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      throw apiError(response, body);
    }
    if (response.body === null) {
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<string>;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (o.signal?.aborted) {
            return;
          }
          throw e;
        }
        if (chunk.done) {
          break;
        }
        buffered += chunk.value;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== "") {
            // An empty line is a heartbeat.
            yield JSON.parse(line) as InstanceWatchEvent;
          }
        }
      }
      if (buffered.trim() !== "") {
        yield JSON.parse(buffered) as InstanceWatchEvent;
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  async function gatewayToken(name: string): Promise<string> {
    const body = await ok(
      api.GET("/v1/instances/{name}/gateway-token", { params: { path: { name } } }),
    );
    return body.token;
  }

  return { api, apply, watchInstances, gatewayToken };
}

/** The resource version of a watch event's object (to resume a watch from). */
export function eventResourceVersion(event: InstanceWatchEvent): string | undefined {
  if (event.type === "ERROR") {
    return undefined;
  }
  return event.object.metadata.resourceVersion ?? undefined;
}
