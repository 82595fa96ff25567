// Helpers of the runtime tests that drive a monitor's hook path: hold SQLite's write lock from a
// second connection (so requests pile up into one batch), post and track hook requests, wait on a
// probe, and listen on /ws as a dashboard does.
import { createRequire } from "node:module";
import { openDatabase } from "../../harness/sqlite.ts";
import type { Monitor } from "../../harness/monitor.ts";

const require = createRequire(import.meta.url);

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** BEGIN IMMEDIATE on a second connection: the monitor cannot begin a write until release(). */
export function holdWriteLock(dbPath: string): { release(): void } {
  const db = openDatabase(dbPath, { timeout: 10_000 });
  db.exec("BEGIN IMMEDIATE");
  return {
    release() {
      db.exec("COMMIT");
      db.close();
    },
  };
}

/** POST /api/hooks/event keeping the headers (monitor.postEvent drops them). */
export async function postRaw(m: Monitor, hookType: string, data: Record<string, unknown>, timeoutMs = 60_000) {
  const res = await fetch(`${m.url}/api/hooks/event`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ hook_type: hookType, data }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body };
}

/** Track a promise's settlement without awaiting it. */
export function track<T>(p: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  const done = p.then(
    (v) => Object.assign(state, { settled: true, value: v }),
    (e) => Object.assign(state, { settled: true, error: e }),
  );
  return { state, done };
}

export interface WsClient {
  frames: { type: string; raw: string }[];
  close(): void;
}

/** A dashboard client on /ws (the `ws` package; Node 20 has no global WebSocket). */
export async function connectWs(m: Monitor): Promise<WsClient> {
  const WebSocket = require("ws") as new (url: string) => {
    on(ev: "message", cb: (data: Buffer) => void): void;
    once(ev: "open" | "error", cb: (err?: Error) => void): void;
    close(): void;
  };
  const ws = new WebSocket(`${m.url.replace(/^http/, "ws")}/ws`);
  const frames: { type: string; raw: string }[] = [];
  ws.on("message", (data) => {
    const raw = data.toString();
    frames.push({ type: (JSON.parse(raw) as { type: string }).type, raw });
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", (err) => reject(err));
  });
  return { frames, close: () => ws.close() };
}
