#!/usr/bin/env node
// composio-exec: the bridge between the gateway's `composio` skill and Composio's REST API
// (https://docs.composio.dev/rest-api/tools/post-tools-execute-by-tool-slug).
// Installed by the OpenClaws controller into /data/bin (on the gateway's PATH).
//
//   composio-exec <TOOL_SLUG> ['<json arguments>']   run one tool for this customer
//   composio-exec --list <toolkit>                    list a toolkit's tools and their schemas
//
// Environment: COMPOSIO_API_KEY (required), COMPOSIO_ENTITY_ID (required: the customer's
// Composio user id), COMPOSIO_API_BASE (default https://backend.composio.dev/api/v3),
// COMPOSIO_TOOLKIT_VERSIONS (the controller's pins, `toolkit=version,...`, e.g.
// `gmail=20250930_00,github=20250909_00`). A tool of a pinned toolkit runs (and is listed) at
// that version; any other at Composio's pinned base version (`version` omitted, which Composio
// resolves to 00000000_00). Never `latest`: a toolkit release must not change what an agent's
// tool call does without the platform choosing it (Composio's SDKs refuse `latest` for manual
// execution too).
// Output: the API's JSON answer on stdout. Exit: 0 success, 1 tool or API failure, 2 usage.
// The API key is sent only as the x-api-key header and never printed.

const base = (process.env.COMPOSIO_API_BASE || "https://backend.composio.dev/api/v3").replace(/\/+$/, "");
const apiKey = process.env.COMPOSIO_API_KEY;
const userId = process.env.COMPOSIO_ENTITY_ID;
const timeoutMs = 60_000;

// `gmail=20250930_00,github=20250909_00` -> [["gmail", "20250930_00"], ...], longest toolkit first.
function pins() {
  return (process.env.COMPOSIO_TOOLKIT_VERSIONS || "")
    .split(",")
    .map((entry) => entry.trim().split("="))
    .filter((pair) => pair.length === 2 && pair[0] && pair[1] && pair[1] !== "latest")
    .map(([toolkit, version]) => [toolkit.toLowerCase(), version])
    .sort((a, b) => b[0].length - a[0].length);
}

// The pinned version of the toolkit a tool slug (`{TOOLKIT}_{ACTION}`) belongs to, if any.
function versionOf(slug) {
  const pin = pins().find(([toolkit]) => slug.startsWith(`${toolkit.toUpperCase()}_`));
  return pin ? pin[1] : undefined;
}

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
    const toolkit = args[1].toLowerCase();
    const query = new URLSearchParams({ toolkit_slug: toolkit, limit: "100" });
    const pinned = pins().find(([name]) => name === toolkit);
    if (pinned) query.set(`toolkit_versions[${toolkit}]`, pinned[1]);
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
  const body = { user_id: userId, arguments: toolArguments };
  const version = versionOf(slug);
  if (version) body.version = version;
  const { ok, json } = await call("POST", `${base}/tools/execute/${encodeURIComponent(slug)}`, body);
  process.stdout.write(JSON.stringify(json, null, 2) + "\n");
  process.exit(ok && json.successful !== false ? 0 : 1);
} catch (error) {
  process.stdout.write(JSON.stringify({ successful: false, error: String(error?.message ?? error) }) + "\n");
  process.exit(1);
}
