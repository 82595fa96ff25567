// TEMPORARY stand-in for test/support/monitor.ts (being written by another engineer).
// Same signature as the shared helper; bench/workload.ts imports startMonitor through
// bench/monitor.ts only, so switching to the shared helper is a one-line change there
// and this file gets deleted.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { ensureNode22 } from "../scripts/lib/node22.ts";

export interface StartMonitorOptions {
  treeDir: string;
  dbPath?: string;
  env?: Record<string, string>;
}

export interface Monitor {
  url: string;
  port: number;
  dbPath: string;
  child: ChildProcess;
  postEvent(hookType: string, data: Record<string, unknown>): Promise<{ status: number; body: unknown }>;
  get(urlPath: string): Promise<{ status: number; body: unknown }>;
  stop(): Promise<void>;
  kill(): void;
  stderr(): string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startMonitor(opts: StartMonitorOptions): Promise<Monitor> {
  const node = ensureNode22();
  const home = mkdtempSync(path.join(os.tmpdir(), "ccam-bench-home-"));
  const dbPath = opts.dbPath ?? path.join(home, "dashboard.db");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(node, ["server/index.js"], {
    cwd: opts.treeDir,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      CLAUDE_HOME: path.join(home, ".claude"),
      DASHBOARD_DATA_DIR: path.join(home, "data"),
      DASHBOARD_PORT: String(port),
      DASHBOARD_HOST: "127.0.0.1",
      DASHBOARD_DB_PATH: dbPath,
      ...opts.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  let out = "";
  child.stderr?.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-64 * 1024);
  });
  child.stdout?.on("data", (d: Buffer) => {
    out = (out + d.toString()).slice(-16 * 1024);
  });
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));

  const request = async (method: string, urlPath: string, body?: unknown) => {
    const res = await fetch(url + urlPath, {
      method,
      headers: body === undefined ? undefined : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* keep text */
    }
    return { status: res.status, body: parsed };
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`monitor exited during startup:\n${out}\n${err}`);
    try {
      const r = await request("GET", "/api/health");
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`monitor did not become healthy within 30 s:\n${out}\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const cleanup = () => rmSync(home, { recursive: true, force: true });
  return {
    url,
    port,
    dbPath,
    child,
    postEvent: (hookType, data) => request("POST", "/api/hooks/event", { hook_type: hookType, data }),
    get: (urlPath) => request("GET", urlPath),
    async stop() {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 8000);
        await exitPromise;
        clearTimeout(timer);
      }
      // Callers read the database after stop(): the temp home is removed only when the
      // database lives elsewhere (caller-given dbPath).
      if (opts.dbPath) cleanup();
    },
    kill() {
      if (!exited) child.kill("SIGKILL");
    },
    stderr: () => err,
  };
}
