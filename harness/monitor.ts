// Start an agent-monitor tree (the CI fixture, the real upstream checkout, or a
// patched .generated/ output) as a real child process on Node 22, isolated from
// the developer's machine: fresh HOME / CLAUDE_HOME / data dir, a free loopback
// port, no update checks, no liveness probing of real `claude` processes.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { dashboardEnv } from "../scripts/lib/dashboard.ts";
import { ensureNode22 } from "../scripts/lib/node22.ts";

export interface StartMonitorOptions {
  /** Directory holding server/index.js (cwd of the child). */
  treeDir: string;
  /** SQLite file; default: `monitor.db` in a fresh temp dir (kept after stop, so a restart can reuse it). */
  dbPath?: string;
  /** Extra/overriding environment (e.g. NODE_PATH for a tree whose deps live elsewhere). */
  env?: Record<string, string>;
  /** Node binary; default: ensureNode22(). */
  nodeBinary?: string;
  /** How long to wait for GET /api/health; default 20 s. */
  startTimeoutMs?: number;
}

export interface PostResult {
  status: number;
  body: unknown;
}

export interface Monitor {
  url: string;
  port: number;
  dbPath: string;
  /** The isolated HOME used by the child (removed on stop/kill). */
  homeDir: string;
  child: ChildProcess;
  postEvent(hookType: string, data: Record<string, unknown>, opts?: { timeoutMs?: number }): Promise<PostResult>;
  /** GET a path (e.g. "/api/sessions") and parse JSON; throws on a non-2xx status. */
  get<T = any>(urlPath: string): Promise<T>;
  /** SIGTERM and wait for exit (SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. Idempotent. */
  kill(): Promise<void>;
  stderr(): string;
  stdout(): string;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A failing test must not leave servers behind.
  process.on("exit", () => {
    for (const child of running) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("could not determine a free port"));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function parseBody(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The env a monitor child gets: the caller's DASHBOARD_* / CLAUDE_* / … scrubbed, everything isolated. */
export function monitorEnv(opts: { port: number; dbPath: string; homeDir: string; extra?: Record<string, string> }): NodeJS.ProcessEnv {
  return dashboardEnv({ ...opts, scrub: true });
}

export async function startMonitor(opts: StartMonitorOptions): Promise<Monitor> {
  const node = opts.nodeBinary ?? ensureNode22();
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
  const dbPath = opts.dbPath ?? path.join(mkdtempSync(path.join(os.tmpdir(), "monitor-db-")), "monitor.db");
  mkdirSync(path.dirname(dbPath), { recursive: true });

  // A port found free can be taken before the child binds it; retry in that case.
  let lastError: Error | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const homeDir = mkdtempSync(path.join(os.tmpdir(), "monitor-home-"));
    const port = await freePort();
    try {
      return await launch(node, opts.treeDir, port, dbPath, homeDir, opts.env, startTimeoutMs);
    } catch (err) {
      rmSync(homeDir, { recursive: true, force: true });
      lastError = err as Error;
      if (!/EADDRINUSE/.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error("monitor did not start");
}

async function launch(
  node: string,
  treeDir: string,
  port: number,
  dbPath: string,
  homeDir: string,
  extraEnv: Record<string, string> | undefined,
  startTimeoutMs: number,
): Promise<Monitor> {
  installExitHook();
  const child = spawn(node, ["server/index.js"], {
    cwd: treeDir,
    env: monitorEnv({ port, dbPath, homeDir, extra: extraEnv }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  const state: { spawnError: Error | null } = { spawnError: null };
  child.on("error", (e) => (state.spawnError = e));
  child.on("exit", () => running.delete(child));

  const url = `http://127.0.0.1:${port}`;
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const deadline = Date.now() + startTimeoutMs;
  let healthy = false;
  while (Date.now() < deadline) {
    if (state.spawnError || exited()) break;
    try {
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      // The child must still be ours and alive (upstream exits 0 if another dashboard answers).
      if (res.status === 200 && !exited()) {
        healthy = true;
        break;
      }
    } catch {
      // not listening yet
    }
    await sleep(100);
  }

  if (!healthy) {
    const why = state.spawnError
      ? `spawn failed: ${state.spawnError.message}`
      : exited()
        ? `exited early (code ${child.exitCode}, signal ${child.signalCode})`
        : `no healthy /api/health within ${startTimeoutMs} ms`;
    if (!exited()) {
      child.kill("SIGKILL");
      await waitForExit(child);
    }
    throw new Error(
      `monitor in ${treeDir} on port ${port}: ${why}\n--- stderr (tail) ---\n${tail(err)}\n--- stdout (tail) ---\n${tail(out, 10)}`,
    );
  }

  const finish = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    if (!exited()) {
      child.kill(signal);
      const timer = setTimeout(() => {
        if (!exited()) child.kill("SIGKILL");
      }, graceMs);
      await waitForExit(child);
      clearTimeout(timer);
    }
    rmSync(homeDir, { recursive: true, force: true });
  };

  return {
    url,
    port,
    dbPath,
    homeDir,
    child,
    async postEvent(hookType, data, postOpts = {}) {
      const res = await fetch(`${url}/api/hooks/event`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ hook_type: hookType, data }),
        signal: AbortSignal.timeout(postOpts.timeoutMs ?? 10_000),
      });
      return { status: res.status, body: await parseBody(res) };
    },
    async get(urlPath) {
      const res = await fetch(`${url}${urlPath}`, { signal: AbortSignal.timeout(10_000) });
      const body = await parseBody(res);
      if (!res.ok) throw new Error(`GET ${urlPath} -> ${res.status}: ${typeof body === "string" ? body : JSON.stringify(body)}`);
      return body as any;
    },
    stop: () => finish("SIGTERM", 10_000),
    kill: () => finish("SIGKILL", 0),
    stderr: () => err,
    stdout: () => out,
  };
}
