// A second process holding its own connection to the monitor's database, like a companion
// sync service would: every ~20 ms a read-then-write transaction — BEGIN IMMEDIATE (or deferred), SELECT
// recent sessions, upsert them into a table of its own, COMMIT — with busy_timeout 1000 ms.
// Every SQLITE_BUSY* it sees is counted. Runs on the machine's Node 20 with the root
// better-sqlite3 (started by the bench as an IPC child).
import { openDatabase } from "./sqlite.ts";
import type { CompanionCounts, CompanionToParent, ParentToCompanion } from "./protocol.ts";

const dbPath = process.argv[2];
const intervalMs = Number(process.argv[3] ?? 20);
const busyTimeoutMs = Number(process.argv[4] ?? 1000);
// "immediate" (default) takes the lock at BEGIN, where busy_timeout applies: the way a writer
// must open a read-then-write transaction (it is what patch immediate-transactions does).
// "deferred": the write lock is requested only at the first write, after the SELECT.
// In WAL mode SQLite then answers SQLITE_BUSY at once when another connection holds the write
// lock (busy_timeout is not applied to a read transaction upgrading to write), and
// SQLITE_BUSY_SNAPSHOT when a commit landed after the SELECT.
const beginMode = (process.argv[5] ?? "immediate") === "deferred" ? "DEFERRED" : "IMMEDIATE";

/** Send a message; resolves once it is handed to the IPC channel (safe to exit after). */
function reply(msg: CompanionToParent): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

if (!dbPath || !process.send) {
  console.error("usage: started by the bench as an IPC child: companion.ts <dbPath> [intervalMs] [busyTimeoutMs] [deferred|immediate]");
  process.exit(2);
}

const counts: CompanionCounts = { transactions: 0, committed: 0, busy: 0, busyCodes: {}, otherErrors: 0, lastError: null, maxTxMs: 0 };
let stopping = false;

const isBusy = (err: unknown) => {
  const code = (err as { code?: string }).code ?? "";
  return code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED");
};

function noteError(err: unknown): void {
  const e = err as { code?: string; message?: string };
  if (isBusy(err)) {
    counts.busy++;
    counts.busyCodes[e.code!] = (counts.busyCodes[e.code!] ?? 0) + 1;
  } else counts.otherErrors++;
  counts.lastError = `${e.code ?? "error"}: ${e.message ?? String(err)}`;
}

const db = openDatabase(dbPath, { timeout: busyTimeoutMs });

// Our own table, created with retries (the monitor may be writing).
for (let attempt = 0; ; attempt++) {
  try {
    db.exec(
      `CREATE TABLE IF NOT EXISTS bench_companion_sync (
         session_id TEXT PRIMARY KEY,
         status TEXT,
         seen_updated_at TEXT,
         synced_at TEXT NOT NULL,
         passes INTEGER NOT NULL DEFAULT 1
       )`,
    );
    break;
  } catch (err) {
    noteError(err);
    if (attempt > 50) throw err;
  }
}

const selectSessions = db.prepare("SELECT id, status, updated_at FROM sessions ORDER BY updated_at DESC LIMIT 25");
const upsert = db.prepare(
  `INSERT INTO bench_companion_sync (session_id, status, seen_updated_at, synced_at) VALUES (?, ?, ?, ?)
   ON CONFLICT(session_id) DO UPDATE SET status = excluded.status, seen_updated_at = excluded.seen_updated_at,
     synced_at = excluded.synced_at, passes = passes + 1`,
);

interface SessionRow {
  id: string;
  status: string;
  updated_at: string;
}

function pass(): void {
  counts.transactions++;
  const t0 = performance.now();
  try {
    db.exec(`BEGIN ${beginMode}`);
    const rows = selectSessions.all() as SessionRow[];
    const now = new Date().toISOString();
    upsert.run("__heartbeat__", null, null, now);
    for (const r of rows) upsert.run(r.id, r.status, r.updated_at, now);
    db.exec("COMMIT");
    counts.committed++;
  } catch (err) {
    noteError(err);
    try {
      if (db.inTransaction) db.exec("ROLLBACK");
    } catch (rollbackErr) {
      noteError(rollbackErr);
    }
  }
  counts.maxTxMs = Math.max(counts.maxTxMs, performance.now() - t0);
}

function loop(): void {
  if (stopping) return;
  pass();
  setTimeout(loop, intervalMs);
}

process.on("message", (raw: unknown) => {
  const msg = raw as ParentToCompanion;
  if (msg.type === "snapshot") void reply({ type: "counts", counts: { ...counts, busyCodes: { ...counts.busyCodes } }, final: false });
  else if (msg.type === "stop") {
    stopping = true;
    db.close();
    void reply({ type: "counts", counts: { ...counts, busyCodes: { ...counts.busyCodes } }, final: true }).then(() => process.exit(0));
  }
});

// The bench went away: stop touching the database.
process.on("disconnect", () => {
  stopping = true;
  process.exit(0);
});

void reply({ type: "ready" });
loop();
