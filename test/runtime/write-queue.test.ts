// Runtime check of write-queue: a real monitor (Node 22, real SQLite file) built by the test.
// Every test drives the real server over HTTP and looks at the database file from a second
// connection (better-sqlite3 in this process); nothing is mocked. Where a test needs requests to
// pile up, it holds SQLite's write lock from that second connection (BEGIN IMMEDIATE), which is
// exactly what another writer does in production. No timing assertions.
//
// The last describe runs the queue module itself in this process on better-sqlite3 (the other
// driver): savepoint isolation, PRAGMA synchronous, BUSY retries, runExclusive, shutdown flush.
import { randomUUID } from "node:crypto";
import { copyFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase, type SqliteDatabase } from "../../harness/sqlite.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import type { BuildOutcome } from "../../scripts/pipeline/build.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import { connectWs, holdWriteLock, postRaw, track, waitFor } from "../support/hook-runtime.ts";
import type { Monitor } from "../../harness/monitor.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[write-queue runtime] ${SKIP_REAL}`);

const require = createRequire(import.meta.url);

// Monitors a test did not stop itself are killed (SIGKILL) after the file's tests.
const scratch = useRuntimeScratch({ teardown: "kill" });
const { tempDir, forget } = scratch;

/** Fast lock waits so held-lock tests do not take busy_timeout (5 s) per attempt. */
const FAST = { AGENT_MONITOR_BUSY_TIMEOUT_MS: "200", AGENT_MONITOR_WRITE_BACKOFF_MS: "20", AGENT_MONITOR_WRITE_RETRIES: "200" };

async function start(outDir: string, env: Record<string, string> = {}): Promise<Monitor> {
  return scratch.start(outDir, { dbPath: path.join(tempDir("wq-db-"), "monitor.db"), env });
}

async function stop(m: Monitor, how: "stop" | "kill" = "stop"): Promise<void> {
  await (how === "stop" ? m.stop() : m.kill());
  forget(m);
}

interface Stats {
  batches: number;
  events: number;
  transactions: number;
  failedEvents: number;
  retries: number;
  unavailable: number;
  rejectedFull: number;
  queued: number;
  lockHeldMs: { p50: number; p99: number; max: number };
}
const stats = (m: Monitor) => m.get<Stats>("/api/hooks/write-queue/stats");

function reader(dbPath: string): SqliteDatabase {
  return openDatabase(dbPath, { readonly: true, fileMustExist: true, timeout: 5_000 });
}

const countTag = (db: SqliteDatabase, tag: string) =>
  (db.prepare("SELECT count(*) AS n FROM events WHERE json_extract(data, '$.tag') = ?").get(tag) as { n: number }).n;

const sid = (label: string) => `${label}-${randomUUID()}`;

describe.each(trees())("write-queue at runtime: %s", (_label, buildTree: () => Promise<BuildOutcome>) => {
  it("a full hook lifecycle still works through the queue (every event 200, session completed)", async () => {
    const m = await start((await buildTree()).outDir, FAST);
    const session = sid("life");
    const base = { session_id: session, cwd: tempDir("wq-cwd-") };
    const lifecycle: [string, Record<string, unknown>][] = [
      ["SessionStart", { ...base, source: "startup" }],
      ["UserPromptSubmit", { ...base, prompt: "hello" }],
      ["PreToolUse", { ...base, tool_name: "Bash", tool_input: { command: "ls" } }],
      ["PostToolUse", { ...base, tool_name: "Bash", tool_input: { command: "ls" }, tool_response: { stdout: "a" } }],
      ["Stop", { ...base }],
      ["SessionEnd", { ...base, reason: "exit" }],
    ];
    for (const [hook, data] of lifecycle) {
      const r = await m.postEvent(hook, data);
      expect(r.status, `${hook}: ${JSON.stringify(r.body)}`).toBe(200);
      expect(r.body).toMatchObject({ ok: true, event: { session_id: session, event_type: hook } });
    }
    const missing = await m.postEvent("Stop", { cwd: "/" });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ error: { code: "MISSING_SESSION" } });
    const db = reader(m.dbPath);
    try {
      expect((db.prepare("SELECT status FROM sessions WHERE id = ?").get(session) as { status: string }).status).toBe("completed");
      const types = (db.prepare("SELECT event_type FROM events WHERE session_id = ? ORDER BY id").all(session) as { event_type: string }[]).map((r) => r.event_type);
      expect(types).toEqual(lifecycle.map(([h]) => h));
    } finally {
      db.close();
    }
    const s = await stats(m);
    expect(s.events).toBe(lifecycle.length);
    expect(s.transactions).toBeGreaterThanOrEqual(1);
    await stop(m);
  });

  it("an answer means the row is committed: visible from a second connection the moment the 200 arrives", async () => {
    const m = await start((await buildTree()).outDir, FAST);
    const session = sid("ack");
    const db = reader(m.dbPath);
    try {
      const tags = Array.from({ length: 60 }, (_, i) => `ack-${i}-${randomUUID()}`);
      await Promise.all(
        tags.map(async (tag) => {
          const r = await m.postEvent("PreToolUse", { session_id: session, tool_name: "Read", tag });
          expect(r.status).toBe(200);
          expect(countTag(db, tag), `row for ${tag} at answer time`).toBe(1);
        }),
      );
      const s = await stats(m);
      expect(s.events).toBe(tags.length);
      // concurrent requests shared transactions (group commit)
      expect(s.batches).toBeLessThanOrEqual(tags.length);
    } finally {
      db.close();
    }
    await stop(m);
  });

  it("no answer while another connection holds the write lock; 200 and the row once it is released", async () => {
    const m = await start((await buildTree()).outDir, FAST);
    const tag = `locked-${randomUUID()}`;
    const lock = holdWriteLock(m.dbPath);
    const post = track(postRaw(m, "PreToolUse", { session_id: sid("locked"), tool_name: "Edit", tag }));
    // the event is accepted and waiting in the queue (the server keeps retrying BEGIN IMMEDIATE) ...
    await waitFor("the event to be queued behind the lock", async () => (await stats(m)).queued === 1 && (await stats(m)).retries >= 2);
    // ... and no answer has gone out, and nothing is in the database
    expect(post.state.settled).toBe(false);
    const db = reader(m.dbPath);
    try {
      expect(countTag(db, tag)).toBe(0);
      lock.release();
      await post.done;
      expect(post.state.value?.status).toBe(200);
      expect(countTag(db, tag)).toBe(1);
    } finally {
      db.close();
    }
    await stop(m);
  });

  it("a batch with one throwing event commits the others and nothing of the bad one; its broadcasts are dropped", async () => {
    const m = await start((await buildTree()).outDir, FAST);
    const ws = await connectWs(m);
    const [good1, bad, good2] = [sid("good1"), sid("bad"), sid("good2")];
    const before = await stats(m);
    // A trigger aborts the bad event's events-row insert, after the event created its session and
    // main agent: a deterministic failure in the middle of the event. (A malformed field no longer
    // gets that far: validate-hook-input answers it 400 at the door.)
    const ddl = openDatabase(m.dbPath, { timeout: 10_000 });
    try {
      ddl.exec(`CREATE TRIGGER fail_bad_event BEFORE INSERT ON events WHEN NEW.session_id = '${bad}' BEGIN SELECT RAISE(ABORT, 'bad event (test trigger)'); END`);
    } finally {
      ddl.close();
    }
    const lock = holdWriteLock(m.dbPath);
    const posts = [
      track(postRaw(m, "PreToolUse", { session_id: good1, tool_name: "Bash", tag: good1 })),
      track(postRaw(m, "PreToolUse", { session_id: bad, tool_name: "Bash", tag: bad })),
      track(postRaw(m, "PreToolUse", { session_id: good2, tool_name: "Bash", tag: good2 })),
    ];
    await waitFor("three events queued behind the lock", async () => (await stats(m)).queued === 3);
    // nothing is broadcast for events that have not committed
    const framesBeforeCommit = ws.frames.length;
    expect(ws.frames.filter((f) => f.raw.includes(good1) || f.raw.includes(good2) || f.raw.includes(bad))).toEqual([]);
    lock.release();
    await Promise.all(posts.map((p) => p.done));
    const [r1, rBad, r2] = posts.map((p) => p.state.value!);
    expect(r1.status).toBe(200);
    expect(r2.status).toBe(200);
    expect(rBad.status).toBe(500);
    expect(rBad.body).toMatchObject({ error: { code: "EVENT_FAILED" } });

    const after = await stats(m);
    expect(after.batches - before.batches).toBe(1); // all three were in ONE transaction
    expect(after.events - before.events).toBe(2);
    expect(after.failedEvents - before.failedEvents).toBe(1);

    const db = reader(m.dbPath);
    try {
      for (const id of [good1, good2]) {
        expect(db.prepare("SELECT count(*) AS n FROM sessions WHERE id = ?").get(id)).toEqual({ n: 1 });
        expect(countTag(db, id)).toBe(1);
      }
      // the bad event rolled back entirely: not its session, not its main agent, not its event row
      expect(db.prepare("SELECT count(*) AS n FROM sessions WHERE id = ?").get(bad)).toEqual({ n: 0 });
      expect(db.prepare("SELECT count(*) AS n FROM agents WHERE session_id = ?").get(bad)).toEqual({ n: 0 });
      expect(db.prepare("SELECT count(*) AS n FROM events WHERE session_id = ?").get(bad)).toEqual({ n: 0 });
    } finally {
      db.close();
    }
    // broadcasts: the good events' frames arrive after COMMIT; none ever for the rolled-back one
    await waitFor("the committed events' new_event frames", () => ws.frames.filter((f) => f.type === "new_event" && (f.raw.includes(good1) || f.raw.includes(good2))).length >= 2);
    expect(ws.frames.slice(framesBeforeCommit).some((f) => f.type === "session_created" && f.raw.includes(good1))).toBe(true);
    expect(ws.frames.filter((f) => f.raw.includes(bad))).toEqual([]);
    ws.close();
    await stop(m);
  });

  it("a write that cannot commit (lock held beyond the retries) is answered 503 + Retry-After and is not stored", async () => {
    const m = await start((await buildTree()).outDir, { ...FAST, AGENT_MONITOR_WRITE_RETRIES: "1" });
    const tag = `unavailable-${randomUUID()}`;
    const lock = holdWriteLock(m.dbPath);
    let r;
    try {
      r = await postRaw(m, "PreToolUse", { session_id: sid("busy"), tool_name: "Bash", tag });
    } finally {
      lock.release();
    }
    expect(r.status).toBe(503);
    expect(r.retryAfter).toBe("1");
    expect(r.body).toMatchObject({ error: { code: "WRITE_UNAVAILABLE" } });
    const db = reader(m.dbPath);
    try {
      expect(countTag(db, tag)).toBe(0);
    } finally {
      db.close();
    }
    expect((await stats(m)).unavailable).toBe(1);
    // the queue is healthy afterwards
    const again = await postRaw(m, "PreToolUse", { session_id: sid("busy"), tool_name: "Bash", tag: `${tag}-2` });
    expect(again.status).toBe(200);
    await stop(m);
  });

  it("a full queue answers 503 with Retry-After; the accepted events are written once the lock is free", async () => {
    const m = await start((await buildTree()).outDir, { ...FAST, AGENT_MONITOR_QUEUE_MAX: "2" });
    const tags = Array.from({ length: 5 }, (_, i) => `full-${i}-${randomUUID()}`);
    const lock = holdWriteLock(m.dbPath);
    const posts = tags.map((tag) => track(postRaw(m, "PreToolUse", { session_id: sid("full"), tool_name: "Bash", tag })));
    await waitFor("three requests refused", () => posts.filter((p) => p.state.settled).length === 3);
    expect((await stats(m)).queued).toBe(2);
    lock.release();
    await Promise.all(posts.map((p) => p.done));
    const results = posts.map((p, i) => ({ tag: tags[i], ...p.state.value! }));
    const ok = results.filter((r) => r.status === 200);
    const full = results.filter((r) => r.status === 503);
    expect(ok).toHaveLength(2);
    expect(full).toHaveLength(3);
    for (const r of full) {
      expect(r.retryAfter).toBe("1");
      expect(r.body).toMatchObject({ error: { code: "QUEUE_FULL" } });
    }
    const db = reader(m.dbPath);
    try {
      for (const r of ok) expect(countTag(db, r.tag)).toBe(1);
      for (const r of full) expect(countTag(db, r.tag)).toBe(0);
    } finally {
      db.close();
    }
    expect((await stats(m)).rejectedFull).toBe(3);
    await stop(m);
  });

  it("SIGTERM writes what is queued before the process exits", async () => {
    // After one failed attempt the next retry is 10 minutes away: only the shutdown drain can write them.
    const m = await start((await buildTree()).outDir, { ...FAST, AGENT_MONITOR_WRITE_BACKOFF_MS: "600000" });
    const tags = Array.from({ length: 3 }, (_, i) => `sigterm-${i}-${randomUUID()}`);
    const lock = holdWriteLock(m.dbPath);
    const posts = tags.map((tag) => track(postRaw(m, "PreToolUse", { session_id: sid("term"), tool_name: "Bash", tag })));
    await waitFor("the events queued, waiting for a retry far away", async () => {
      const s = await stats(m);
      return s.queued === 3 && s.retries >= 1;
    });
    lock.release();
    expect(posts.some((p) => p.state.settled)).toBe(false);
    await stop(m, "stop"); // SIGTERM, wait for exit
    expect(m.child.exitCode).toBe(0);
    await Promise.all(posts.map((p) => p.done));
    for (const p of posts) expect(p.state.value?.status, JSON.stringify(p.state.value ?? p.state.error)).toBe(200);
    const db = openDatabase(m.dbPath, { fileMustExist: true });
    try {
      for (const tag of tags) expect(countTag(db, tag)).toBe(1);
    } finally {
      db.close();
    }
  });

  it("kill -9 in the middle of concurrent posts loses no event that was answered 200", async () => {
    const m = await start((await buildTree()).outDir);
    const session = sid("kill");
    const total = 2000;
    const concurrency = 24;
    const outcome = new Map<string, number | string>();
    let next = 0;
    let answered = 0;
    let inFlight = 0;
    let inFlightAtKill = -1;
    let sentAtKill = -1;
    const worker = async () => {
      while (next < total) {
        const tag = `kill-${next++}-${randomUUID()}`;
        inFlight++;
        try {
          const r = await m.postEvent("PostToolUse", { session_id: session, tool_name: "Bash", tag }, { timeoutMs: 15_000 });
          outcome.set(tag, r.status);
          if (r.status === 200 && ++answered === 150) {
            // SIGKILL right now, while the other workers' requests are outstanding
            inFlightAtKill = inFlight - 1;
            sentAtKill = next;
            m.child.kill("SIGKILL");
          }
        } catch (err) {
          outcome.set(tag, (err as Error).name);
          if (inFlightAtKill >= 0) break; // the server is gone
        } finally {
          inFlight--;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    await stop(m, "kill");
    const acknowledged = [...outcome].filter(([, s]) => s === 200).map(([t]) => t);
    const failed = [...outcome].filter(([, s]) => s !== 200);
    console.info(`[write-queue runtime] kill -9 after ${sentAtKill} posts sent, ${inFlightAtKill} others outstanding; ${acknowledged.length} answered 200, ${failed.length} failed`);
    expect(sentAtKill, "killed in the middle of the run").toBeLessThan(total);
    expect(acknowledged.length).toBeGreaterThanOrEqual(150);
    expect(failed.length, "requests after (or during) the kill failed").toBeGreaterThan(0);
    const db = openDatabase(m.dbPath, { fileMustExist: true });
    try {
      const lost = acknowledged.filter((tag) => countTag(db, tag) !== 1);
      expect(lost, "events answered 200 but missing after kill -9").toEqual([]);
    } finally {
      db.close();
    }
  });
});

// ── The queue module on better-sqlite3, in this process ─────────────────────

interface QueueApi {
  enqueue(item: unknown): Promise<unknown>;
  runExclusive(fn: () => unknown): Promise<unknown>;
  drain(): Promise<void>;
  close(): void;
  stats(): Stats & { limits: Record<string, number> };
  size(): number;
}
// The repository is "type": "module"; the runtime file is CommonJS (as in the generated tree), so
// load a .cjs copy of it.
const queueModule = path.join(tempDir("wq-module-"), "write-queue.cjs");
copyFileSync(path.join(repoRoot, "patches", "runtime", "write-queue.js"), queueModule);
const { createWriteQueue } = require(queueModule) as { createWriteQueue(opts: Record<string, unknown>): QueueApi };

describe("write-queue module on better-sqlite3 (the other driver), in process", () => {
  const quiet = { warn() {}, error() {} };
  function freshDb(): { file: string; db: SqliteDatabase & { pragma(s: string, o?: { simple: boolean }): unknown } } {
    const file = path.join(tempDir("wq-bs3-"), "q.db");
    const db = openDatabase(file, { timeout: 50 }) as SqliteDatabase & { pragma(s: string, o?: { simple: boolean }): unknown };
    db.pragma("journal_mode = WAL");
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    return { file, db };
  }
  /** A broadcast stand-in with the same hold semantics as the patched websocket.js. */
  function broadcaster() {
    const sent: string[] = [];
    const holds: string[][] = [];
    const broadcast = (msg: string) => (holds.length ? holds[holds.length - 1].push(msg) : sent.push(msg));
    const holdBroadcasts = () => {
      const frames: string[] = [];
      holds.push(frames);
      let open = true;
      const close = () => open && !(open = false) && (holds.splice(holds.lastIndexOf(frames), 1), true);
      return { flush: () => close() && frames.forEach(broadcast), discard: () => void close() };
    };
    return { sent, broadcast, holdBroadcasts };
  }

  it("sets PRAGMA synchronous = FULL (better-sqlite3 runs WAL databases at NORMAL by default)", () => {
    const { db } = freshDb();
    expect(db.pragma("synchronous", { simple: true })).toBe(1);
    createWriteQueue({ db, run: () => null, log: quiet });
    expect(db.pragma("synchronous", { simple: true })).toBe(2);
    db.close();
  });

  it("one failing item rolls back alone inside a shared transaction; broadcasts only for committed items, after COMMIT", async () => {
    const { db } = freshDb();
    const b = broadcaster();
    const seenInTx: boolean[] = [];
    const postCommit: { item: string; inTx: boolean; answered: boolean }[] = [];
    const answered = new Set<string>();
    const q = createWriteQueue({
      db,
      holdBroadcasts: b.holdBroadcasts,
      log: quiet,
      afterCommit: (item: { v: string }, result: string) => postCommit.push({ item: `${item.v}=${result}`, inTx: db.inTransaction, answered: answered.has(item.v) }),
      run: (item: { v: string; fail?: boolean }) => {
        seenInTx.push(db.inTransaction);
        db.prepare("INSERT INTO t (v) VALUES (?)").run(item.v);
        b.broadcast(`inserted ${item.v}`);
        if (item.fail) throw new Error("boom");
        return item.v;
      },
    });
    const settled = await Promise.allSettled(
      [{ v: "a" }, { v: "b", fail: true }, { v: "c" }].map((item) => q.enqueue(item).finally(() => answered.add(item.v))),
    );
    await new Promise((r) => setImmediate(r));
    // post-commit work: only for committed items, outside the transaction, after their answers
    expect(postCommit).toEqual([
      { item: "a=a", inTx: false, answered: true },
      { item: "c=c", inTx: false, answered: true },
    ]);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: "EVENT_FAILED", status: 500 });
    expect(seenInTx).toEqual([true, true, true]);
    expect(db.prepare("SELECT v FROM t ORDER BY id").all()).toEqual([{ v: "a" }, { v: "c" }]);
    expect(b.sent).toEqual(["inserted a", "inserted c"]);
    expect(q.stats()).toMatchObject({ batches: 1, events: 2, transactions: 1, failedEvents: 1 });
    expect(db.inTransaction).toBe(false);
    db.close();
  });

  it("BEGIN IMMEDIATE blocked by another connection: retried with backoff, then 503; nothing resolved that is not stored", async () => {
    const { file, db } = freshDb();
    const postCommit: string[] = [];
    const q = createWriteQueue({
      db,
      retries: 2,
      backoffMs: 5,
      log: quiet,
      afterCommit: (v: string) => postCommit.push(v),
      run: (v: string) => db.prepare("INSERT INTO t (v) VALUES (?)").run(v),
    });
    const other = openDatabase(file, { timeout: 50 });
    other.exec("BEGIN IMMEDIATE");
    const p = q.enqueue("x");
    await expect(p).rejects.toMatchObject({ code: "WRITE_UNAVAILABLE", status: 503, retryAfter: 1 });
    other.exec("COMMIT");
    expect(db.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 0 });
    expect(q.stats()).toMatchObject({ retries: 2, unavailable: 1, events: 0 });
    // released: the next one goes through
    await expect(q.enqueue("y")).resolves.toBeDefined();
    expect(db.prepare("SELECT v FROM t").all()).toEqual([{ v: "y" }]);
    await new Promise((r) => setImmediate(r));
    expect(postCommit).toEqual(["y"]); // never for the event that was not stored
    other.close();
    db.close();
  });

  it("orderBatch reorders a batch; runExclusive runs alone between batches in its own transaction", async () => {
    const { db } = freshDb();
    const order: string[] = [];
    const q = createWriteQueue({
      db,
      log: quiet,
      orderBatch: (items: string[]) => [...items].sort(),
      run: (v: string) => {
        order.push(v);
        db.prepare("INSERT INTO t (v) VALUES (?)").run(v);
        return v;
      },
    });
    const all = [q.enqueue("c"), q.enqueue("a"), q.enqueue("b"), q.runExclusive(() => (order.push("exclusive"), db.inTransaction)), q.enqueue("d")];
    const values = await Promise.all(all);
    expect(values[3]).toBe(true);
    expect(order).toEqual(["a", "b", "c", "exclusive", "d"]);
    expect(q.stats()).toMatchObject({ batches: 2, transactions: 3, events: 4 });
    // a throwing exclusive fn rolls back and rejects; the queue goes on
    await expect(q.runExclusive(() => { db.prepare("INSERT INTO t (v) VALUES ('z')").run(); throw new Error("nope"); })).rejects.toThrow("nope");
    expect(db.prepare("SELECT count(*) AS n FROM t WHERE v = 'z'").get()).toEqual({ n: 0 });
    db.close();
  });

  it("group commit window: events arriving while the previous commit is fresh share the next transaction", async () => {
    const { db } = freshDb();
    const insert = (v: string) => db.prepare("INSERT INTO t (v) VALUES (?)").run(v) && v;
    // A window far longer than this test's synchronous steps, so the grouping cannot depend on speed.
    const windowed = createWriteQueue({ db, log: quiet, commitWindowMs: 60_000, run: insert });
    await windowed.enqueue("first"); // idle queue: drains on its own, alone
    expect(windowed.stats()).toMatchObject({ batches: 1, transactions: 1 });
    const later = [windowed.enqueue("a"), windowed.enqueue("b")];
    await new Promise((r) => setImmediate(r));
    expect(windowed.stats().transactions).toBe(1); // held in the window, not committed one by one
    windowed.enqueue("c");
    windowed.close(); // shutdown does not wait for the window: writes all three now, in one transaction
    await Promise.all(later);
    expect(windowed.stats()).toMatchObject({ batches: 2, transactions: 2, events: 4 });

    const { db: db2 } = freshDb();
    const plain = createWriteQueue({ db: db2, log: quiet, commitWindowMs: 0, run: (v: string) => db2.prepare("INSERT INTO t (v) VALUES (?)").run(v) && v });
    await plain.enqueue("first");
    const next = [plain.enqueue("a"), plain.enqueue("b")];
    await Promise.all(next);
    expect(plain.stats()).toMatchObject({ batches: 2, transactions: 2, events: 3 });
    db.close();
    db2.close();
  });

  it("maxQueue refuses with QUEUE_FULL; close() writes what is queued synchronously, then refuses", async () => {
    const { db } = freshDb();
    const q = createWriteQueue({ db, maxQueue: 2, log: quiet, run: (v: string) => db.prepare("INSERT INTO t (v) VALUES (?)").run(v) });
    const a = q.enqueue("a");
    const b = q.enqueue("b");
    await expect(q.enqueue("c")).rejects.toMatchObject({ code: "QUEUE_FULL", status: 503, retryAfter: 1 });
    expect(q.size()).toBe(2);
    q.close(); // before the setImmediate drain ran
    expect(db.prepare("SELECT v FROM t ORDER BY id").all()).toEqual([{ v: "a" }, { v: "b" }]);
    await expect(Promise.all([a, b])).resolves.toHaveLength(2);
    await expect(q.enqueue("d")).rejects.toMatchObject({ code: "SHUTTING_DOWN", status: 503 });
    await q.drain();
    db.close();
  });

  it("close() while another connection holds the lock: one attempt, then everything left is answered 503", async () => {
    const { file, db } = freshDb();
    const begins: string[] = [];
    // the real connection, with BEGINs counted
    const counted = { exec: (sql: string) => (sql.startsWith("BEGIN") && begins.push(sql), db.exec(sql)), prepare: (sql: string) => db.prepare(sql), get inTransaction() { return db.inTransaction; } };
    const q = createWriteQueue({ db: counted, maxBatch: 1, synchronousFull: false, log: quiet, run: (v: string) => db.prepare("INSERT INTO t (v) VALUES (?)").run(v) });
    const other = openDatabase(file, { timeout: 50 });
    other.exec("BEGIN IMMEDIATE");
    const items = ["a", "b", "c"].map((v) => q.enqueue(v));
    q.close();
    other.exec("COMMIT");
    other.close();
    const settled = await Promise.allSettled(items);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected", "rejected"]);
    for (const s of settled) expect((s as PromiseRejectedResult).reason).toMatchObject({ code: "WRITE_UNAVAILABLE", status: 503 });
    expect(begins).toEqual(["BEGIN IMMEDIATE"]); // not one busy wait per remaining batch
    expect(db.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 0 });
    expect(q.stats()).toMatchObject({ unavailable: 3, queued: 0 });
    db.close();
  });
});
