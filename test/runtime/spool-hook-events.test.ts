// Runtime check of spool-hook-events on a real monitor (Node 22, real SQLite file) and the generated
// hook-handler.js run as real child processes: events sent while the dashboard is stopped, killed
// (-9) or refusing (queue full, 503) are stored exactly once after the spool is replayed; an event that
// arrives by POST and by replay is stored once (counted as a duplicate); a torn record and an invalid
// record are skipped and counted while the records around them are stored.
import { appendFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import { runHookHandler } from "../../harness/hook-handler.ts";
import type { BuildOutcome } from "../../scripts/pipeline/build.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import { monitorEnv, type Monitor } from "../../harness/monitor.ts";
import { runtimeNodePath, useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[spool-hook-events runtime] ${SKIP_REAL}`);

const { tempDir, start, forget } = useRuntimeScratch({ teardown: "kill" });
const requireCjs = createRequire(import.meta.url);

/** Event ids stored in the events table (every hook event carries one in its data), with their counts. */
function storedIds(dbPath: string): Map<string, number> {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
  try {
    const out = new Map<string, number>();
    for (const row of db.prepare("SELECT data FROM events").all() as { data: string | null }[]) {
      const id = row.data ? (JSON.parse(row.data) as { event_id?: string }).event_id : undefined;
      if (id) out.set(id, (out.get(id) ?? 0) + 1);
    }
    return out;
  } finally {
    db.close();
  }
}

/** Run the generated hook client once per event (`parallel` at a time); returns the ids it spooled (read back from the spool). */
async function runHooks(tree: string, env: NodeJS.ProcessEnv, sessionId: string, n: number, parallel = 6): Promise<void> {
  let next = 0;
  const one = async (i: number) => {
    const { code } = await runHookHandler(tree, env, { session_id: sessionId, cwd: os.tmpdir(), hook_event_name: "PreToolUse", tool_name: "Read", tool_input: { n: i } });
    if (code !== 0) throw new Error(`hook-handler exited ${code}`);
  };
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) await one(next++);
    }),
  );
}

/** Every record in the spool directory (segments are removed once replayed, so read them before). */
function spooledIds(spoolDir: string, tree: string): string[] {
  const spool = requireCjs(path.join(tree, "server", "patch-runtime", "hook-spool.js")) as { parseRecords(b: Buffer, f: boolean): { records: { record: { event_id: string } }[] } };
  const { readFileSync } = requireCjs("node:fs") as typeof import("node:fs");
  return readdirSync(spoolDir)
    .filter((f) => f.endsWith(".log"))
    .flatMap((f) => spool.parseRecords(readFileSync(path.join(spoolDir, f)), true).records.map((r) => r.record.event_id));
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.each(trees())("spool-hook-events at runtime (%s)", (_label, build) => {
  const setup = async (extra: Record<string, string> = {}) => {
    const outcome: BuildOutcome = await build();
    const tree = outcome.outDir;
    const spoolDir = path.join(tempDir("spool-dir-"), "spool");
    const env = { AGENT_MONITOR_SPOOL_DIR: spoolDir, AGENT_MONITOR_SPOOL_REPLAY_MS: "300", ...extra };
    const m = await start(tree, { env });
    const hookEnv = (mon: Monitor) =>
      monitorEnv({ port: mon.port, dbPath: mon.dbPath, homeDir: tempDir("spool-hook-home-"), extra: { NODE_PATH: "", CLAUDE_DASHBOARD_PORT: String(mon.port), AGENT_MONITOR_SPOOL_DIR: spoolDir } });
    return { tree, spoolDir, env, m, hookEnv };
  };

  async function restartAndCheck(how: "stop" | "kill") {
    const { tree, spoolDir, env, m, hookEnv } = await setup();
    const sid = `5b001000-0000-4000-8000-00000000000${how === "stop" ? 1 : 2}`;
    const henv = hookEnv(m);
    henv.NODE_PATH = await runtimeNodePath(tree);
    await runHooks(tree, henv, sid, 20);
    if (how === "stop") await m.stop();
    else await m.kill();
    forget(m);
    await runHooks(tree, henv, sid, 20); // the dashboard is down: nothing listens on the port
    const emitted = spooledIds(spoolDir, tree);
    expect(emitted).toHaveLength(40);
    // Back on its port, as a restarted dashboard is: the hooks addressed it (CLAUDE_DASHBOARD_PORT).
    const again = await start(tree, { dbPath: m.dbPath, env, port: m.port });
    const ids = await until("every spooled event stored", () => {
      const s = storedIds(again.dbPath);
      return emitted.every((id) => s.has(id)) && s;
    });
    const stats = await again.get<Record<string, number>>("/api/hooks/spool/stats");
    console.info(`[spool ${how}] emitted ${emitted.length} / stored ${ids.size} / duplicates ${stats.spoolDuplicates ?? 0} (already stored, skipped: ${stats.spoolAlreadyStored ?? 0})`);
    expect([...ids.values()].every((c) => c === 1)).toBe(true);
    expect(ids.size).toBe(40);
    expect(again.stdout() + again.stderr()).toMatch(/\[spool\] replaying hook events/);
  }

  // 240 s: the first test of the file also waits for the tree's build (a real upstream build takes a minute on a busy machine).
  it("dashboard stopped mid-load, then started again: every event stored exactly once", () => restartAndCheck("stop"), 240_000);
  it("dashboard killed (-9) mid-load, then restarted: every event stored exactly once", () => restartAndCheck("kill"), 240_000);

  it("a queue so small that POSTs get 503: every event stored exactly once after replay", async () => {
    const { tree, m, hookEnv } = await setup({ AGENT_MONITOR_QUEUE_MAX: "1", AGENT_MONITOR_COMMIT_WINDOW_MS: "50" });
    const sid = "5b001000-0000-4000-8000-000000000003";
    const henv = hookEnv(m);
    henv.NODE_PATH = await runtimeNodePath(tree);
    await runHooks(tree, henv, sid, 40, 12); // 40 hook processes, each exits 0 once its event is spooled and sent
    // Counted in the database, not read back from the spool: replay removes segments it has passed.
    const ids = await until("all 40 hook events stored", () => {
      const s = storedIds(m.dbPath);
      return s.size >= 40 && s;
    });
    await new Promise((r) => setTimeout(r, 1000)); // one more replay round: a duplicate would show now
    const again = storedIds(m.dbPath);
    const stats = await m.get<Record<string, number>>("/api/hooks/spool/stats");
    console.info(`[spool 503] emitted 40 / stored ${again.size} / duplicates ${[...again.values()].reduce((n, c) => n + c - 1, 0)} (refused by POST ${stats.rejectedFull}, replayed ${stats.spoolReplayed ?? 0})`);
    expect(ids.size).toBe(40);
    expect(again.size).toBe(40);
    expect([...again.values()].every((c) => c === 1)).toBe(true);
  }, 240_000);

  it("a torn record and an invalid record, a record for a database that no longer exists are skipped and counted; the records around them are stored; a POSTed event replayed is stored once", async () => {
    const { tree, spoolDir, m } = await setup();
    const spool = requireCjs(path.join(tree, "server", "patch-runtime", "hook-spool.js")) as { frame(r: object): string; segmentName(ms: number): string };
    const sid = "5b001000-0000-4000-8000-000000000004";
    const rec = (id: string) => ({ event_id: id, sent_at_ms: Date.now(), hook_type: "PreToolUse", data: { session_id: sid, cwd: os.tmpdir(), tool_name: "Read", event_id: id } });
    // an event POSTed first, then also found in the spool
    const posted = "0000aaaa-0000-4000-8000-000000000001";
    expect((await m.postEvent("PreToolUse", rec(posted).data)).status).toBe(200);
    mkdirSync(spoolDir, { recursive: true });
    const file = path.join(spoolDir, spool.segmentName(Date.now() - 5 * 60_000));
    appendFileSync(file, spool.frame(rec("0000aaaa-0000-4000-8000-000000000002")));
    appendFileSync(file, spool.frame(rec("0000aaaa-0000-4000-8000-000000000003")).slice(0, 30)); // torn
    appendFileSync(file, spool.frame({ event_id: "0000aaaa-0000-4000-8000-000000000009", hook_type: "PreToolUse", data: { no_session: true } })); // not an event this server can store
    // addressed to a database that no longer exists (its dashboard registered, then its data directory was deleted)
    mkdirSync(path.join(spoolDir, "consumers"), { recursive: true });
    writeFileSync(path.join(spoolDir, "consumers", "0123456789abcdef.json"), JSON.stringify({ consumerId: "0123456789abcdef", dbPath: path.join(tempDir("spool-gone-"), "deleted.db"), port: "1", passed: [], at: Date.now() }));
    appendFileSync(file, spool.frame({ ...rec("0000aaaa-0000-4000-8000-000000000005"), to: "1", db: "0123456789abcdef" }));
    appendFileSync(file, spool.frame(rec("0000aaaa-0000-4000-8000-000000000004")));
    appendFileSync(file, spool.frame(rec(posted)));
    const ids = await until("the valid spooled events stored", () => {
      const s = storedIds(m.dbPath);
      return s.has("0000aaaa-0000-4000-8000-000000000004") && s;
    });
    const s2 = await m.get<Record<string, number>>("/api/hooks/spool/stats");
    expect(ids.get(posted)).toBe(1);
    expect(ids.has("0000aaaa-0000-4000-8000-000000000002")).toBe(true);
    expect(ids.has("0000aaaa-0000-4000-8000-000000000003")).toBe(false);
    expect(s2.torn).toBe(1);
    expect(s2.spoolInvalid).toBe(1);
    expect(ids.has("0000aaaa-0000-4000-8000-000000000005")).toBe(false);
    expect(s2.spoolForVanishedDatabase).toBe(1);
    expect((s2.spoolAlreadyStored ?? 0) + (s2.spoolDuplicates ?? 0)).toBe(1);
  }, 120_000);

  it("replayed events pass POST /event's validation and order rules: an invalid record is skipped and counted, a late one never reopens an ended session", async () => {
    const { tree, spoolDir, m } = await setup();
    const spool = requireCjs(path.join(tree, "server", "patch-runtime", "hook-spool.js")) as { frame(r: object): string; segmentName(ms: number): string };
    const sid = "5b001000-0000-4000-8000-000000000005";
    const t = Date.now();
    expect((await m.postEvent("SessionStart", { session_id: sid, cwd: os.tmpdir(), sent_at_ms: t - 3000 })).status).toBe(200);
    expect((await m.postEvent("SessionEnd", { session_id: sid, cwd: os.tmpdir(), reason: "exit", sent_at_ms: t - 1000 })).status).toBe(200);
    const status = () => {
      const db = openDatabase(m.dbPath, { readonly: true, fileMustExist: true });
      try {
        return (db.prepare("SELECT status FROM sessions WHERE id = ?").get(sid) as { status: string }).status;
      } finally {
        db.close();
      }
    };
    const ended = status();
    expect(ended).not.toBe("active");
    const late = "0000bbbb-0000-4000-8000-000000000001";
    const invalid = "0000bbbb-0000-4000-8000-000000000002";
    mkdirSync(spoolDir, { recursive: true });
    const file = path.join(spoolDir, spool.segmentName(t - 5 * 60_000));
    // sent before the SessionEnd, arriving (by replay) after it
    appendFileSync(file, spool.frame({ event_id: late, sent_at_ms: t - 2000, hook_type: "PreToolUse", data: { session_id: sid, cwd: os.tmpdir(), tool_name: "Read" } }));
    // what POST /event answers 400 (validate-hook-input: tool_name must be a string)
    appendFileSync(file, spool.frame({ event_id: invalid, sent_at_ms: t - 2000, hook_type: "PreToolUse", data: { session_id: sid, cwd: os.tmpdir(), tool_name: 42 } }));
    const ids = await until("the late event stored", () => {
      const s = storedIds(m.dbPath);
      return s.has(late) && s;
    });
    const stats = await m.get<Record<string, number>>("/api/hooks/spool/stats");
    expect(ids.has(invalid)).toBe(false);
    expect(stats.spoolInvalid).toBe(1);
    expect(status()).toBe(ended);
  }, 120_000);
});
