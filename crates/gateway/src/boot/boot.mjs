#!/usr/bin/env node
// openclaws boot step: the machine's command. It prepares the gateway's state directory from the
// bundle delivered next to this file (bundle.json, rendered by src/gateway/bundle.rs), then runs
// the gateway as a child, forwarding SIGTERM/SIGINT/SIGHUP and exiting with its status.
//
// Preparation (every boot, idempotent):
// 1. openclaw.json: the owned fields are set (or removed) and every other key is left alone,
//    exactly as `merge_owned` in src/gateway/config.rs; a missing file starts from the bundle's
//    seed; the file is written (sorted keys, two-space indent, mode 0600) only when an owned field
//    differed; a file that is not strict JSON is left untouched.
// 2. IDENTITY.md in the workspace: `decide_identity` of src/gateway/files.rs, with the hash of
//    what this step last wrote kept in $OPENCLAW_STATE_DIR/.openclaws/identity.sha256.
// 3. Installed files (Composio skill and bridge), rewritten only when their content differs.
// 4. Stale gateway locks (clearStaleGatewayLocks): a `gateway.*.lock` under
//    $OPENCLAW_STATE_DIR/tmp/openclaw-<uid>/ left by a gateway that died (a crash, an OOM kill, a
//    host move) is removed unless a live gateway process of this state directory owns it; each
//    removal is logged and listed in $OPENCLAW_STATE_DIR/.openclaws/boot-notices.json.
//
// Environment: OPENCLAW_STATE_DIR (default /data), OPENCLAWS_GATEWAY_ENTRY (default
// /app/dist/index.js), OPENCLAWS_GATEWAY_PORT (default 3000), OPENCLAWS_GATEWAY_BIND (default
// lan). `--prepare-only` stops after preparation. Nothing here reads or prints a secret.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const LOG_PREFIX = "openclaws-boot:";

function log(message) {
  process.stderr.write(`${LOG_PREFIX} ${message}\n`);
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

// set_path of config.rs: parents become objects, the leaf is replaced when it differs.
function setPath(root, keys, want) {
  let changed = false;
  let node = root;
  for (const key of keys.slice(0, -1)) {
    if (!Object.hasOwn(node, key)) node[key] = {};
    if (!isObject(node[key])) {
      node[key] = {};
      changed = true;
    }
    node = node[key];
  }
  const last = keys[keys.length - 1];
  if (!Object.hasOwn(node, last) || !deepEqual(node[last], want)) {
    node[last] = want;
    changed = true;
  }
  return changed;
}

// remove_path of config.rs: the leaf goes, parents stay.
function removePath(root, keys) {
  let node = root;
  for (const key of keys.slice(0, -1)) {
    if (!Object.hasOwn(node, key) || !isObject(node[key])) return false;
    node = node[key];
  }
  const last = keys[keys.length - 1];
  if (!Object.hasOwn(node, last)) return false;
  delete node[last];
  return true;
}

function mergeOwned(existing, owned) {
  const value = isObject(existing) ? structuredClone(existing) : {};
  let changed = !isObject(existing);
  for (const entry of owned) {
    changed = ("value" in entry ? setPath(value, entry.path, entry.value) : removePath(value, entry.path)) || changed;
  }
  return { value, changed };
}

// to_file_text of config.rs: keys sorted at every level, two-space indent, trailing newline.
function compareKeys(a, b) {
  const ea = Buffer.from(a, "utf8");
  const eb = Buffer.from(b, "utf8");
  return Buffer.compare(ea, eb);
}

function render(value, indent) {
  const pad = "  ".repeat(indent + 1);
  const close = "  ".repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => pad + render(v, indent + 1)).join(",\n")}\n${close}]`;
  }
  if (isObject(value)) {
    const keys = Object.keys(value).sort(compareKeys);
    if (keys.length === 0) return "{}";
    return `{\n${keys.map((k) => `${pad}${JSON.stringify(k)}: ${render(value[k], indent + 1)}`).join(",\n")}\n${close}}`;
  }
  return JSON.stringify(value);
}

function toFileText(value) {
  return `${render(value, 0)}\n`;
}

function contentHash(bytes) {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

// decide_identity of files.rs: returns { write, record }.
function decideIdentity(lastWritten, current, desired) {
  if (current === null) return { write: true, record: desired };
  if (current === desired) return { write: false, record: desired };
  if (lastWritten === null) return { write: false, record: desired };
  if (current === lastWritten) return { write: true, record: desired };
  if (desired === lastWritten) return { write: false, record: lastWritten };
  return { write: true, record: desired };
}

function readIfExists(file, encoding) {
  try {
    return fs.readFileSync(file, encoding);
  } catch (err) {
    if (err.code === "ENOENT") return null;
    throw err;
  }
}

function writeAtomic(file, content, mode) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.openclaws-tmp`;
  fs.writeFileSync(tmp, content, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

function expandEnv(text, env) {
  return text.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (whole, name) => env[name] ?? whole);
}

function prepareConfig(stateDir, bundle) {
  const file = path.join(stateDir, "openclaw.json");
  const text = readIfExists(file, "utf8");
  let existing;
  if (text === null) {
    existing = bundle.seed;
  } else {
    try {
      existing = JSON.parse(text);
    } catch {
      log("openclaw.json is not strict JSON: left as it is");
      return null;
    }
  }
  const merged = mergeOwned(existing, bundle.owned);
  if (text === null || merged.changed) {
    writeAtomic(file, toFileText(merged.value), 0o600);
    log(text === null ? "openclaw.json created" : "openclaw.json: owned fields restored");
  }
  return merged.value;
}

function workspaceDir(stateDir, config, env) {
  const configured = config?.agents?.defaults?.workspace;
  if (typeof configured !== "string" || configured === "") return path.join(stateDir, "workspace");
  return path.resolve(stateDir, expandEnv(configured, env));
}

function prepareIdentity(stateDir, workspace, identity) {
  const file = path.join(workspace, "IDENTITY.md");
  const recordFile = path.join(stateDir, ".openclaws", "identity.sha256");
  const desired = contentHash(Buffer.from(identity.content, "utf8"));
  const currentBytes = readIfExists(file);
  const current = currentBytes === null ? null : contentHash(currentBytes);
  const last = readIfExists(recordFile, "utf8")?.trim() || null;
  const decision = decideIdentity(last, current, desired);
  if (decision.write) {
    writeAtomic(file, identity.content, 0o644);
    log("IDENTITY.md written");
  }
  if (decision.record !== last) writeAtomic(recordFile, `${decision.record}\n`, 0o644);
}

function installFiles(stateDir, files) {
  for (const entry of files) {
    const file = path.join(stateDir, entry.path);
    const current = readIfExists(file, "utf8");
    if (current !== entry.content) {
      writeAtomic(file, entry.content, entry.mode);
      log(`${entry.path} installed`);
    } else {
      fs.chmodSync(file, entry.mode);
    }
  }
}

function prepare(stateDir, bundle, env) {
  fs.mkdirSync(stateDir, { recursive: true });
  const config = prepareConfig(stateDir, bundle);
  if (bundle.identity) prepareIdentity(stateDir, workspaceDir(stateDir, config, env), bundle.identity);
  installFiles(stateDir, bundle.files ?? []);
}

// Stale gateway locks. The gateway keeps its singleton locks on the volume
// ($OPENCLAW_STATE_DIR/tmp/openclaw-<uid>/gateway.state.lock and gateway.<config hash>.lock, JSON
// with the owner's pid and, on Linux, its start time). It reclaims a lock whose owner is gone, but
// it takes a live process whose command line looks like a gateway for the owner, so a pid reused
// after a restart blocks it ("gateway already running"). This step runs before the gateway, so the
// only legitimate owner is a live process whose OPENCLAW_STATE_DIR is this state directory (and
// whose start time matches the lock's, when both are known).

const BOOT_NOTICES_FILE = path.join(".openclaws", "boot-notices.json");

function gatewayLockDir(stateDir) {
  const uid = typeof process.getuid === "function" ? process.getuid() : undefined;
  return path.join(stateDir, "tmp", uid === undefined ? "openclaw" : `openclaw-${uid}`);
}

function processIsAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

// Field 22 of /proc/<pid>/stat (clock ticks after boot), as the gateway records it.
function processStartTime(pid) {
  const stat = readIfExists(`/proc/${pid}/stat`, "utf8");
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const value = Number(fields[19]);
  return Number.isFinite(value) ? value : null;
}

// The state directory a live process runs with; undefined when it cannot be read (then it may be
// the owner), null when it has none.
function processStateDir(pid) {
  let environ;
  try {
    environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8");
  } catch {
    return undefined;
  }
  const entry = environ.split("\0").find((kv) => kv.startsWith("OPENCLAW_STATE_DIR="));
  return entry === undefined ? null : path.resolve(entry.slice("OPENCLAW_STATE_DIR=".length));
}

function lockOwnerIsLive(stateDir, payload) {
  const pid = payload?.pid;
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || pid === process.ppid) return false;
  if (!processIsAlive(pid)) return false;
  const started = processStartTime(pid);
  if (Number.isFinite(payload.startTime) && started !== null && started !== payload.startTime) return false;
  const dir = processStateDir(pid);
  return dir === undefined || dir === path.resolve(stateDir);
}

function clearStaleGatewayLocks(stateDir) {
  const dir = gatewayLockDir(stateDir);
  let names;
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const notices = [];
  for (const name of names.filter((n) => /^gateway\..+\.lock$/.test(n))) {
    const file = path.join(dir, name);
    let payload = null;
    try {
      payload = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      payload = null;
    }
    if (lockOwnerIsLive(stateDir, payload)) continue;
    fs.rmSync(file, { force: true });
    const owner = Number.isInteger(payload?.pid) ? `pid ${payload.pid}` : "an unreadable owner";
    const message = `removed stale gateway lock ${path.relative(stateDir, file)} (${owner}, not a live gateway of this state directory)`;
    log(message);
    notices.push({ reason: "StaleGatewayLockRemoved", message });
  }
  return notices;
}

function recordBootNotices(stateDir, notices) {
  const file = path.join(stateDir, BOOT_NOTICES_FILE);
  if (notices.length === 0) {
    fs.rmSync(file, { force: true });
    return;
  }
  writeAtomic(file, `${JSON.stringify({ bootedAt: new Date().toISOString(), notices })}\n`, 0o644);
}

const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

function runGateway(stateDir, bundle) {
  const entry = process.env.OPENCLAWS_GATEWAY_ENTRY || "/app/dist/index.js";
  const port = process.env.OPENCLAWS_GATEWAY_PORT || "3000";
  const bind = process.env.OPENCLAWS_GATEWAY_BIND || "lan";
  const pathDirs = (bundle.pathDirs ?? []).map((dir) => path.join(stateDir, dir));
  const env = {
    ...process.env,
    OPENCLAW_STATE_DIR: stateDir,
    PATH: [...pathDirs, process.env.PATH ?? ""].join(":"),
  };
  const args = [entry, "gateway", "--allow-unconfigured", "--port", port, "--bind", bind];
  const child = spawn(process.execPath, args, { env, stdio: "inherit" });
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) {
    process.on(signal, () => child.kill(signal));
  }
  child.on("error", (err) => {
    log(`could not start the gateway: ${err.message}`);
    process.exit(127);
  });
  child.on("exit", (code, signal) => {
    process.exit(code ?? 128 + (SIGNAL_NUMBERS[signal] ?? 0));
  });
}

function main() {
  const bundle = JSON.parse(fs.readFileSync(path.join(HERE, "bundle.json"), "utf8"));
  const stateDir = process.env.OPENCLAW_STATE_DIR || "/data";
  prepare(stateDir, bundle, { ...process.env, OPENCLAW_STATE_DIR: stateDir });
  if (process.argv.includes("--prepare-only")) return;
  recordBootNotices(stateDir, clearStaleGatewayLocks(stateDir));
  runGateway(stateDir, bundle);
}

main();
