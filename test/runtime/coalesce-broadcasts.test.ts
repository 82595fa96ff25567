// Runtime check of coalesce-broadcasts: a real monitor (Node 22, real SQLite file) and a real
// WebSocket client on /ws counting the frames of one write-queue batch. The batch is made by holding
// SQLite's write lock from a second connection while the hook requests arrive (as another writer
// would), so it is one transaction by construction (the queue's stats show it), not by timing.
import { randomUUID } from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo, Socket } from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import type { BuildOutcome } from "../../scripts/pipeline/build.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import { connectWs, holdWriteLock, postRaw, track, waitFor } from "../support/hook-runtime.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[coalesce-broadcasts runtime] ${SKIP_REAL}`);

const scratch = useRuntimeScratch({ teardown: "kill" });
const FAST = { AGENT_MONITOR_BUSY_TIMEOUT_MS: "200", AGENT_MONITOR_WRITE_BACKOFF_MS: "20", AGENT_MONITOR_WRITE_RETRIES: "200" };
const SESSIONS = 3;
const EVENTS_PER_SESSION = 8;

describe.each(trees())("coalesce-broadcasts at runtime: %s", (_label, buildTree: () => Promise<BuildOutcome>) => {
  it("one batch sends one session_updated per session and one agent_updated per agent, each the row after COMMIT; every new_event kept", async () => {
    const m = await scratch.start((await buildTree()).outDir, { dbPath: path.join(scratch.tempDir("cb-db-"), "monitor.db"), env: FAST });
    const ws = await connectWs(m);
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `coalesce${i}-${randomUUID()}`);
    const cwd = scratch.tempDir("cb-cwd-");
    for (const s of sessions) expect((await postRaw(m, "SessionStart", { session_id: s, cwd, source: "startup" })).status).toBe(200);
    const before = await m.get<{ batches: number; events: number }>("/api/hooks/write-queue/stats");

    const lock = holdWriteLock(m.dbPath);
    const posts = sessions.flatMap((s) =>
      Array.from({ length: EVENTS_PER_SESSION }, (_, i) =>
        track(postRaw(m, i % 2 ? "PostToolUse" : "PreToolUse", { session_id: s, cwd, tool_name: "Bash", tool_input: { command: `echo ${i}` } })),
      ),
    );
    await waitFor("every event queued behind the lock", async () => (await m.get<{ queued: number }>("/api/hooks/write-queue/stats")).queued === posts.length);
    const from = ws.frames.length;
    lock.release();
    await Promise.all(posts.map((p) => p.done));
    expect(posts.map((p) => p.state.value?.status)).toEqual(posts.map(() => 200));
    const after = await m.get<{ batches: number; events: number }>("/api/hooks/write-queue/stats");
    expect(after.batches - before.batches).toBe(1);
    expect(after.events - before.events).toBe(posts.length);

    const ours = (f: { raw: string }) => sessions.some((s) => f.raw.includes(s));
    await waitFor("every new_event frame of the batch", () => ws.frames.slice(from).filter((f) => f.type === "new_event" && ours(f)).length === posts.length);
    const batch = ws.frames.slice(from).filter(ours).map((f) => ({ type: f.type, data: JSON.parse(f.raw).data }));
    ws.close();

    const sessionFrames = batch.filter((f) => f.type === "session_updated");
    expect(sessionFrames.map((f) => f.data.id).sort()).toEqual([...sessions].sort()); // one per session, not one per event
    const agentIds = batch.filter((f) => f.type === "agent_updated").map((f) => f.data.id);
    expect(agentIds.length).toBeGreaterThan(0);
    expect(new Set(agentIds).size).toBe(agentIds.length); // one per agent
    expect(batch.filter((f) => f.type === "new_event")).toHaveLength(posts.length);

    // Each frame is the row as committed (its last state), and stands before its session's first new_event.
    const db = openDatabase(m.dbPath, { readonly: true, fileMustExist: true, timeout: 5_000 });
    try {
      for (const f of sessionFrames) {
        expect(f.data).toMatchObject(db.prepare("SELECT id, status, updated_at FROM sessions WHERE id = ?").get(f.data.id) as object);
        const firstEvent = batch.findIndex((g) => g.type === "new_event" && JSON.stringify(g.data).includes(f.data.id));
        expect(batch.indexOf(f)).toBeLessThan(firstEvent);
      }
      for (const f of batch.filter((g) => g.type === "agent_updated")) {
        expect(f.data).toMatchObject(db.prepare("SELECT id, status, updated_at FROM agents WHERE id = ?").get(f.data.id) as object);
      }
    } finally {
      db.close();
    }
  });

  it("a batch's frames leave in one write per client (corked until the tick ends); outside a hold, one write per frame", async () => {
    // The tree's own websocket.js and ws, in this process, on a real HTTP server with real clients;
    // each accepted socket counts its writes (_write/_writev: one per syscall).
    const outDir = (await buildTree()).outDir;
    const load = createRequire(path.join(outDir, "server", "websocket.js"));
    const wsModule = load("./websocket.js") as {
      initWebSocket(server: http.Server): unknown; broadcast(type: string, data: unknown): void;
      holdBroadcasts(): { flush(): void }; closeWebSocket(): void;
    };
    const { WebSocket } = load("ws") as { WebSocket: new (url: string) => import("node:events").EventEmitter & { close(): void } };
    const server = http.createServer();
    const writes = new Map<Socket, number>();
    server.on("connection", (socket: Socket) => {
      writes.set(socket, 0);
      const counted = socket as unknown as Record<"_write" | "_writev", (...a: unknown[]) => unknown>;
      for (const name of ["_write", "_writev"] as const) {
        const original = counted[name];
        counted[name] = function (this: unknown, ...a: unknown[]) {
          writes.set(socket, writes.get(socket)! + 1);
          return original.apply(this, a);
        };
      }
    });
    wsModule.initWebSocket(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const clients = await Promise.all([0, 1].map(() => new Promise<{ ws: { close(): void }; got: string[] }>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      const got: string[] = [];
      ws.on("message", (m: Buffer) => got.push(JSON.parse(String(m)).data.n));
      ws.on("open", () => resolve({ ws, got }));
      ws.on("error", reject);
    })));
    try {
      const total = () => [...writes.values()].reduce((a, b) => a + b, 0);
      const FRAMES = 12;
      const frames = (tag: string) => Array.from({ length: FRAMES }, (_, i) => `${tag}${i}`);

      let before = total();
      for (const n of frames("free")) wsModule.broadcast("new_event", { n });
      const freeWrites = total() - before;
      await waitFor("every frame sent outside a hold", () => clients.every((c) => c.got.length === FRAMES));

      before = total();
      const hold = wsModule.holdBroadcasts();
      for (const n of frames("held")) wsModule.broadcast("new_event", { n });
      hold.flush();
      const duringTick = total() - before;
      await new Promise((resolve) => setImmediate(resolve));
      const heldWrites = total() - before;
      await waitFor("every held frame", () => clients.every((c) => c.got.length === 2 * FRAMES));

      expect(freeWrites).toBe(FRAMES * clients.length); // the counter sees one write per frame and client
      expect(duringTick).toBe(0); // corked: nothing leaves before the tick ends
      expect(heldWrites).toBe(clients.length); // then one write per client
      for (const c of clients) expect(c.got).toEqual([...frames("free"), ...frames("held")]); // all of them, in order
    } finally {
      for (const c of clients) c.ws.close();
      wsModule.closeWebSocket();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
