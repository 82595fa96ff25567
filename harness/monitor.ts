// Start an agent-monitor tree (the CI fixture, the real upstream checkout, or a
// patched .generated/ output) as a real child process on Node 22, isolated from
// the developer's machine: fresh HOME / CLAUDE_HOME / data dir, a free loopback
// port, no update checks, no liveness probing of real `claude` processes. The process itself
// (spawn, health wait, SIGTERM then SIGKILL, exit hook) is scripts/lib/launcher.ts's.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { dashboardEnv } from "../scripts/lib/dashboard.ts";
import { freePort, startServer, type ServerProcess } from "../scripts/lib/launcher.ts";

export { freePort };

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
  /** A fixed port (e.g. a restart on the port the hooks know); default: a free one, retried if taken. */
  port?: number;
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
  const dbPath = opts.dbPath ?? path.join(mkdtempSync(path.join(os.tmpdir(), "monitor-db-")), "monitor.db");
  mkdirSync(path.dirname(dbPath), { recursive: true });

  // A port found free can be taken before the child binds it; retry in that case.
  let lastError: Error | null = null;
  for (let attempt = 0; attempt < (opts.port ? 1 : 3); attempt++) {
    const homeDir = mkdtempSync(path.join(os.tmpdir(), "monitor-home-"));
    const port = opts.port ?? (await freePort());
    try {
      const server = await startServer({
        treeDir: opts.treeDir,
        port,
        env: monitorEnv({ port, dbPath, homeDir, extra: opts.env }),
        nodeBinary: opts.nodeBinary,
        startTimeoutMs: opts.startTimeoutMs ?? 20_000,
      });
      return monitorOf(server, dbPath, homeDir);
    } catch (err) {
      rmSync(homeDir, { recursive: true, force: true });
      lastError = err as Error;
      if (!/EADDRINUSE/.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error("monitor did not start");
}

function monitorOf(server: ServerProcess, dbPath: string, homeDir: string): Monitor {
  const { url } = server;
  const cleanUp = <T>(done: Promise<T>) => done.then(() => rmSync(homeDir, { recursive: true, force: true }));
  return {
    url,
    port: server.port,
    dbPath,
    homeDir,
    child: server.child,
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
    stop: () => cleanUp(server.stop(10_000)),
    kill: () => cleanUp(server.kill()),
    stderr: server.stderr,
    stdout: server.stdout,
  };
}
