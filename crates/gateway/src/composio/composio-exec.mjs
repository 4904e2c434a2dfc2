#!/usr/bin/env node
// composio-exec: the bridge between the gateway's `composio` skill and Composio's REST API.
// Installed by the OpenClaws controller into /data/bin (on the gateway's PATH).
//
//   composio-exec <TOOL_SLUG> ['<json arguments>']   run one tool for this customer
//   composio-exec --list <toolkit>                    list a toolkit's tools and their schemas
//
// Environment: COMPOSIO_API_KEY (required), COMPOSIO_ENTITY_ID (required: the customer's
// Composio user id), COMPOSIO_API_BASE (default https://backend.composio.dev/api/v3.1),
// COMPOSIO_TOOLKIT_VERSION (default "latest"; pin e.g. 20251027_00 for stable schemas).
// Output: the API's JSON answer on stdout. Exit: 0 success, 1 tool or API failure, 2 usage.
// The API key is sent only as the x-api-key header and never printed.

const base = (process.env.COMPOSIO_API_BASE || "https://backend.composio.dev/api/v3.1").replace(/\/+$/, "");
const apiKey = process.env.COMPOSIO_API_KEY;
const userId = process.env.COMPOSIO_ENTITY_ID;
const version = process.env.COMPOSIO_TOOLKIT_VERSION || "latest";
const timeoutMs = 60_000;

function usage(message) {
  process.stderr.write(`composio-exec: ${message}\n`);
  process.stderr.write("usage: composio-exec <TOOL_SLUG> ['<json arguments>'] | composio-exec --list <toolkit>\n");
  process.exit(2);
}

async function call(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { "x-api-key": apiKey, "content-type": "application/json", accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { successful: false, error: `HTTP ${response.status}: ${text.slice(0, 500)}` };
  }
  return { ok: response.ok, json };
}

const args = process.argv.slice(2);
if (args.length === 0 || args[0] === "--help" || args[0] === "-h") usage("missing arguments");
if (!apiKey) usage("COMPOSIO_API_KEY is not set");
if (!userId) usage("COMPOSIO_ENTITY_ID is not set");

try {
  if (args[0] === "--list") {
    if (!args[1]) usage("--list needs a toolkit slug, e.g. gmail");
    const query = new URLSearchParams({ toolkit_slug: args[1], toolkit_versions: version, limit: "100" });
    const { ok, json } = await call("GET", `${base}/tools?${query}`);
    process.stdout.write(JSON.stringify(json, null, 2) + "\n");
    process.exit(ok ? 0 : 1);
  }
  const slug = args[0];
  if (!/^[A-Z0-9_]+$/.test(slug)) usage(`not a tool slug: ${slug}`);
  let toolArguments = {};
  if (args[1] !== undefined) {
    try {
      toolArguments = JSON.parse(args[1]);
    } catch (error) {
      usage(`arguments are not valid JSON: ${error.message}`);
    }
    if (toolArguments === null || typeof toolArguments !== "object" || Array.isArray(toolArguments)) {
      usage("arguments must be one JSON object");
    }
  }
  const body = { user_id: userId, arguments: toolArguments, version };
  const { ok, json } = await call("POST", `${base}/tools/execute/${encodeURIComponent(slug)}`, body);
  process.stdout.write(JSON.stringify(json, null, 2) + "\n");
  process.exit(ok && json.successful !== false ? 0 : 1);
} catch (error) {
  process.stdout.write(JSON.stringify({ successful: false, error: String(error?.message ?? error) }) + "\n");
  process.exit(1);
}
