// The spool runtime on real files: concurrent child-process appenders, framing (a torn record costs
// only itself), offsets (a second read returns nothing new), and segment cleanup once every
// registered consumer has passed a closed segment; the replay's offset commits in the transaction of
// the events it covers (a process killed right after that COMMIT re-reads nothing).
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";

const require = createRequire(import.meta.url);
// The package is "type": "module"; the runtime is CommonJS (as in the generated tree): load a .cjs copy.
const RUNTIME = path.join(mkdtempSync(path.join(os.tmpdir(), "spool-mod-")), "hook-spool.cjs");
copyFileSync(path.resolve(__dirname, "../../patches/runtime/hook-spool.js"), RUNTIME);
const WRITE_QUEUE = path.join(path.dirname(RUNTIME), "write-queue.cjs");
copyFileSync(path.resolve(__dirname, "../../patches/runtime/write-queue.js"), WRITE_QUEUE);
const spool = require(RUNTIME) as {
  spoolAppend(p: object, env: NodeJS.ProcessEnv): { event_id: string } | null;
  createSpoolReader(o: object): {
    nextChunk(now?: number): { segment: string; records: { record: { event_id: string; data: { n: number } }; offset: number }[]; endOffset: number } | null;
    cleanup(now?: number): void;
    databaseExists(id: string): boolean;
    stats(): Record<string, number>;
  };
  frame(r: object): string;
  spoolHookEvent(hookType: string, data: object, env: NodeJS.ProcessEnv): { event_id: string };
  segmentName(ms: number): string;
  SEGMENT_MS: number;
};

const dirs: string[] = [];
afterAll(() => [...dirs, path.dirname(RUNTIME)].forEach((d) => rmSync(d, { recursive: true, force: true })));
const scratch = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), "spool-"));
  dirs.push(d);
  return d;
};

function drain(reader: ReturnType<typeof spool.createSpoolReader>, offsets: Map<string, number>, now?: number) {
  const got: { event_id: string; data: { n: number } }[] = [];
  for (let chunk = reader.nextChunk(now); chunk; chunk = reader.nextChunk(now)) {
    got.push(...chunk.records.map((r) => r.record));
    offsets.set(chunk.segment, chunk.endOffset);
  }
  return got;
}

describe("hook-spool runtime", () => {
  it("keeps every record appended by concurrent processes, once", async () => {
    const dir = scratch();
    const script = `const s = require(${JSON.stringify(RUNTIME)}); for (let i = 0; i < 200; i++) s.spoolAppend({ hook_type: "PreToolUse", data: { n: i, pad: "x".repeat(i * 37) } }, { AGENT_MONITOR_SPOOL_DIR: ${JSON.stringify(dir)} });`;
    await Promise.all(Array.from({ length: 4 }, () => promisify(execFile)(process.execPath, ["-e", script])));
    const offsets = new Map<string, number>();
    const reader = spool.createSpoolReader({ dir, consumerId: "a", offsetOf: (s: string) => offsets.get(s) ?? 0, maxRecords: 64 });
    const got = drain(reader, offsets);
    expect(got).toHaveLength(800);
    expect(new Set(got.map((r) => r.event_id)).size).toBe(800);
    expect(drain(reader, offsets)).toHaveLength(0);
    expect(reader.stats().torn).toBe(0);
  });

  it("addresses a hook run for one dashboard (CLAUDE_DASHBOARD_PORT) to it, and a fan-out hook to none", () => {
    const dir = scratch();
    const sent = spool.spoolHookEvent("Stop", { session_id: "s1" }, { AGENT_MONITOR_SPOOL_DIR: dir, CLAUDE_DASHBOARD_PORT: "5123" });
    const fanOut = spool.spoolHookEvent("Stop", { session_id: "s2" }, { AGENT_MONITOR_SPOOL_DIR: dir });
    const offsets = new Map<string, number>();
    const reader = spool.createSpoolReader({ dir, consumerId: "a", offsetOf: (s: string) => offsets.get(s) ?? 0 });
    const got = drain(reader, offsets) as unknown as { event_id: string; to?: string }[];
    expect(got.map((r) => [r.event_id, r.to])).toEqual([
      [sent.event_id, "5123"],
      [fanOut.event_id, undefined],
    ]);
  });

  it("names the database of the dashboard registered on that port (db), and forgets a consumer whose database is gone", () => {
    const dir = scratch();
    const dbPath = path.join(dir, "gone.db");
    writeFileSync(dbPath, "");
    const gone = spool.createSpoolReader({ dir, consumerId: "gone", dbPath, port: "5124", offsetOf: () => 0 });
    gone.cleanup(); // registers consumers/gone.json { consumerId, dbPath, port }
    const rec = spool.spoolHookEvent("Stop", { session_id: "s1" }, { AGENT_MONITOR_SPOOL_DIR: dir, CLAUDE_DASHBOARD_PORT: "5124" });
    const other = spool.spoolHookEvent("Stop", { session_id: "s2" }, { AGENT_MONITOR_SPOOL_DIR: dir, CLAUDE_DASHBOARD_PORT: "5125" });
    const offsets = new Map<string, number>();
    writeFileSync(path.join(dir, "live.db"), "");
    const live = spool.createSpoolReader({ dir, consumerId: "live", dbPath: path.join(dir, "live.db"), port: "4820", offsetOf: (s: string) => offsets.get(s) ?? 0 });
    const got = drain(live, offsets) as unknown as { event_id: string; to?: string; db?: string }[];
    expect(got.map((r) => [r.event_id, r.to, r.db])).toEqual([
      [rec.event_id, "5124", "gone"],
      [other.event_id, "5125", undefined], // no dashboard registered on 5125: addressed by port only
    ]);
    expect(live.databaseExists("gone")).toBe(true);
    rmSync(dbPath);
    expect(live.databaseExists("gone")).toBe(false);
    live.cleanup();
    expect(live.stats().vanishedConsumers).toBe(1);
    expect(readdirSync(path.join(dir, "consumers")).sort()).toEqual(["live.json"]);
  });

  it("skips and counts a torn record without losing the one after it", () => {
    const dir = scratch();
    const old = Date.now() - 5 * spool.SEGMENT_MS;
    const file = path.join(dir, spool.segmentName(old));
    appendFileSync(file, spool.frame({ event_id: "a", data: { n: 1 } }));
    appendFileSync(file, spool.frame({ event_id: "b", data: { n: 2 } }).slice(0, 12)); // torn mid-write
    appendFileSync(file, spool.frame({ event_id: "c", data: { n: 3 } }));
    appendFileSync(file, spool.frame({ event_id: "d", data: { n: 4 } }).slice(0, 9)); // torn tail of a closed segment
    const offsets = new Map<string, number>();
    const reader = spool.createSpoolReader({ dir, consumerId: "a", offsetOf: (s: string) => offsets.get(s) ?? 0 });
    expect(drain(reader, offsets).map((r) => r.event_id)).toEqual(["a", "c"]);
    expect(reader.stats().torn).toBe(2);
  });

  it("removes a closed segment once every registered consumer has passed it", () => {
    const dir = scratch();
    const old = Date.now() - 5 * spool.SEGMENT_MS;
    appendFileSync(path.join(dir, spool.segmentName(old)), spool.frame({ event_id: "a", data: { n: 1 } }));
    const oa = new Map<string, number>();
    const ob = new Map<string, number>();
    const a = spool.createSpoolReader({ dir, consumerId: "a", offsetOf: (s: string) => oa.get(s) ?? 0 });
    const b = spool.createSpoolReader({ dir, consumerId: "b", offsetOf: (s: string) => ob.get(s) ?? 0 });
    b.cleanup(); // b registers before reading
    drain(a, oa);
    a.cleanup();
    expect(readdirSync(dir).filter((f) => f.endsWith(".log"))).toHaveLength(1); // b has not passed it
    expect(drain(b, ob)).toHaveLength(1);
    b.cleanup();
    expect(readdirSync(dir).filter((f) => f.endsWith(".log"))).toHaveLength(0);
    expect(b.stats().removedSegments).toBe(1);
  });
});

// A child process replays the spool through the real write queue and spool runtime into a real SQLite
// file (better-sqlite3), with a trivial event writer. KILL_AFTER_FIRST_COMMIT=1: SIGKILL itself in the
// first batch's post-commit hook, i.e. right after the COMMIT that stored the first chunk's events.
const REPLAYER = `
const Database = require(${JSON.stringify(require.resolve("better-sqlite3"))});
const { createWriteQueue } = require(${JSON.stringify(WRITE_QUEUE)});
const spool = require(${JSON.stringify(RUNTIME)});
const [dbPath, dir] = process.argv.slice(2);
const db = new Database(dbPath);
db.pragma("journal_mode = WAL");
db.exec("CREATE TABLE IF NOT EXISTS events (event_id TEXT NOT NULL, n INTEGER NOT NULL)");
const quiet = { log() {}, warn() {}, error() {} };
let wq;
const ids = spool.createEventIds(db, (name) => wq.count(name));
const insert = db.prepare("INSERT INTO events (event_id, n) VALUES (?, ?)");
wq = createWriteQueue({
  db,
  run: ids.run((item) => (insert.run(item.data.event_id, item.data.n), { ok: true })),
  afterCommit: ids.afterCommit(() => { if (process.env.KILL_AFTER_FIRST_COMMIT === "1") process.kill(process.pid, "SIGKILL"); }),
  log: quiet,
});
const replay = spool.createSpoolReplay({ db, writeQueue: wq, dbPath, dir, transcriptFor: () => null, eventIds: ids, count: wq.count, log: quiet, env: { AGENT_MONITOR_SPOOL_CHUNK: "50" } });
replay.round().then(() => { process.stdout.write(JSON.stringify(wq.stats())); process.exit(0); });
`;

describe("hook-spool replay progress", () => {
  it("commits the offset in the transaction of the events it covers: killed right after that COMMIT, nothing is lost or read again", () => {
    const dir = scratch();
    const spoolDir = path.join(dir, "spool");
    const script = path.join(dir, "replayer.cjs");
    writeFileSync(script, REPLAYER);
    const dbPath = path.join(dir, "dashboard.db");
    const segment = spool.segmentName(Date.now() - 5 * spool.SEGMENT_MS);
    const records = Array.from({ length: 120 }, (_, n) => ({ event_id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`, sent_at_ms: Date.now(), hook_type: "PreToolUse", data: { session_id: "s1", n } }));
    const frames = records.map((r) => spool.frame(r));
    mkdirSync(spoolDir);
    appendFileSync(path.join(spoolDir, segment), frames.join(""));

    const killed = spawnSync(process.execPath, [script, dbPath, spoolDir], { env: { ...process.env, KILL_AFTER_FIRST_COMMIT: "1" }, encoding: "utf8" });
    expect(killed.signal).toBe("SIGKILL");
    const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
    const stored = (db.prepare("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n;
    const offset = db.prepare("SELECT byte_offset FROM hook_spool_offsets WHERE segment = ?").get(segment) as { byte_offset: number } | undefined;
    db.close();
    // The first chunk (50 records) and its offset, in one COMMIT: the offset is exactly where those 50 end.
    expect(stored).toBe(50);
    expect(offset?.byte_offset).toBe(Buffer.byteLength(frames.slice(0, 50).join("")));

    const again = spawnSync(process.execPath, [script, dbPath, spoolDir], { encoding: "utf8" });
    expect(again.status).toBe(0);
    const stats = JSON.parse(again.stdout) as Record<string, number>;
    expect(stats.spoolReplayed).toBe(70);
    expect(stats.spoolAlreadyStored ?? 0).toBe(0); // nothing of the first chunk was read again
    const db2 = openDatabase(dbPath, { readonly: true, fileMustExist: true });
    const rows = db2.prepare("SELECT event_id, COUNT(*) AS c FROM events GROUP BY event_id").all() as { c: number }[];
    db2.close();
    expect(rows).toHaveLength(120);
    expect(rows.every((r) => r.c === 1)).toBe(true);
  });
});
