// spool-hook-events under the real load: 22 simulated agents (harness/agents.ts, the bench's) with the
// fire-and-forget client, each event appended to the spool by the tree's own hook-spool runtime before
// it is sent, as the patched scripts/hook-handler.js does. Every event an agent handed to the hook
// client must end up in the database exactly once (counted by its bench_event_id) when the dashboard
// was stopped 15 s mid-load, killed -9 mid-load, refusing with 503, fed torn and misaddressed records,
// or got an event both by POST and by replay.
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { driveAgents } from "../../harness/agents.ts";
import type { Monitor } from "../../harness/monitor.ts";
import type { EventRecord } from "../../harness/protocol.ts";
import { openDatabase } from "../../harness/sqlite.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import { waitFor } from "../support/hook-runtime.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[spool-agents runtime] ${SKIP_REAL}`);

const { tempDir, start, forget } = useRuntimeScratch({ teardown: "kill" });
const requireCjs = createRequire(import.meta.url);
const AGENTS = 22;
const BENCH_ID = /"bench_event_id"\s*:\s*"([^"]+)"/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Hook rows per bench_event_id in the events table. */
function storedCounts(dbPath: string): Map<string, number> {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
  try {
    const out = new Map<string, number>();
    for (const row of db.prepare("SELECT data FROM events").iterate() as IterableIterator<{ data: string | null }>) {
      const m = row.data ? BENCH_ID.exec(row.data) : null;
      if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + 1);
    }
    return out;
  } finally {
    db.close();
  }
}

describe.each(trees())("spool-hook-events with %s, 22 fire-and-forget agents", (_label, build) => {
  const setup = async (extra: Record<string, string> = {}) => {
    const tree = (await build()).outDir;
    const spoolDir = path.join(tempDir("spool-agents-"), "spool");
    const env = { AGENT_MONITOR_SPOOL_DIR: spoolDir, AGENT_MONITOR_SPOOL_REPLAY_MS: "500", ...extra };
    const m = await start(tree, { env });
    const drive = (port: number, durationMs: number) =>
      driveAgents({
        port,
        agents: AGENTS,
        mode: "fire-and-forget",
        durationMs,
        thinkMs: 200,
        workDir: tempDir("spool-agents-work-"),
        spool: { module: path.join(tree, "server", "patch-runtime", "hook-spool.js"), env: { AGENT_MONITOR_SPOOL_DIR: spoolDir } },
      });
    return { tree, spoolDir, env, m, drive };
  };

  /** Waits until every emitted event is stored, prints the case's line and asserts exactly once. */
  async function expectExactlyOnce(label: string, m: Monitor, events: EventRecord[]) {
    const emitted = new Set(events.map((e) => e.id));
    expect(emitted.size).toBe(events.length);
    const stored = await waitFor(
      `every one of ${emitted.size} events stored (${label})`,
      () => {
        const s = storedCounts(m.dbPath);
        return [...emitted].every((id) => s.has(id)) && s;
      },
      120_000,
    );
    const duplicates = [...stored.values()].reduce((n, c) => n + c - 1, 0);
    const stats = await m.get<Record<string, number>>("/api/hooks/spool/stats");
    const ok = events.filter((e) => e.status === 200).length;
    console.info(
      `[spool ${label}] emitted ${emitted.size} / stored ${stored.size} / duplicates ${duplicates}` +
        `  (POST answered 200: ${ok}; replayed ${stats.spoolReplayed}, already stored ${stats.spoolAlreadyStored}, duplicates answered ${stats.spoolDuplicates}, torn ${stats.torn}, vanished db ${stats.spoolForVanishedDatabase})`,
    );
    expect(stored.size).toBe(emitted.size);
    expect(duplicates).toBe(0);
    return { stats, ok };
  }

  it("the dashboard stopped for 15 s mid-load, then started again: every event exactly once", async () => {
    const { tree, env, m, drive } = await setup();
    const load = drive(m.port, 22_000);
    await sleep(3000);
    await m.stop();
    forget(m);
    await sleep(15_000);
    const again = await start(tree, { dbPath: m.dbPath, env, port: m.port });
    const { events } = await load;
    const { ok } = await expectExactlyOnce("stopped 15 s", again, events);
    expect(ok).toBeLessThan(events.length); // the outage really lost POSTs: the spool brought them
  }, 240_000);

  it("the dashboard killed (-9) mid-load, then restarted: every event exactly once", async () => {
    const { tree, env, m, drive } = await setup();
    const load = drive(m.port, 8000);
    await sleep(3000);
    await m.kill();
    forget(m);
    await sleep(1000);
    const again = await start(tree, { dbPath: m.dbPath, env, port: m.port });
    const { events } = await load;
    await expectExactlyOnce("kill -9", again, events);
  }, 240_000);

  it("a write queue so small that many POSTs get 503: every event exactly once", async () => {
    const { m, drive } = await setup({ AGENT_MONITOR_QUEUE_MAX: "2", AGENT_MONITOR_COMMIT_WINDOW_MS: "30" });
    const { events } = await drive(m.port, 6000);
    const refused = events.filter((e) => e.status === 503).length;
    await expectExactlyOnce("503", m, events);
    expect(refused).toBeGreaterThan(0);
  }, 240_000);

  it("a torn record and a record for a vanished database are skipped and counted, the rest stored once", async () => {
    const { tree, spoolDir, m, drive } = await setup();
    const spool = requireCjs(path.join(tree, "server", "patch-runtime", "hook-spool.js")) as { frame(r: object): string; segmentName(ms: number): string };
    // A dashboard registered with its database, whose data directory was then deleted.
    mkdirSync(path.join(spoolDir, "consumers"), { recursive: true });
    writeFileSync(
      path.join(spoolDir, "consumers", "feedfacefeedface.json"),
      JSON.stringify({ consumerId: "feedfacefeedface", dbPath: path.join(tempDir("spool-gone-"), "deleted.db"), port: "1", passed: [], at: Date.now() }),
    );
    const sessionId = "5b002000-0000-4000-8000-000000000001";
    const rec = (id: string) => ({ event_id: id, sent_at_ms: Date.now(), hook_type: "PreToolUse", data: { session_id: sessionId, tool_name: "Read", bench_event_id: id } });
    const file = path.join(spoolDir, spool.segmentName(Date.now() - 5 * 60_000));
    appendFileSync(file, spool.frame(rec("5b002000-aaaa-4000-8000-000000000001")));
    appendFileSync(file, spool.frame(rec("5b002000-aaaa-4000-8000-000000000002")).slice(0, 40)); // torn
    appendFileSync(file, spool.frame({ ...rec("5b002000-aaaa-4000-8000-000000000003"), to: "1", db: "feedfacefeedface" }));
    appendFileSync(file, spool.frame(rec("5b002000-aaaa-4000-8000-000000000004")));
    const { events } = await drive(m.port, 5000);
    const planted = ["5b002000-aaaa-4000-8000-000000000001", "5b002000-aaaa-4000-8000-000000000004"].map((id) => ({ id }) as EventRecord);
    const { stats } = await expectExactlyOnce("torn + vanished db", m, [...events, ...planted]);
    const stored = storedCounts(m.dbPath);
    expect(stored.has("5b002000-aaaa-4000-8000-000000000002")).toBe(false);
    expect(stored.has("5b002000-aaaa-4000-8000-000000000003")).toBe(false);
    expect(stats.torn).toBe(1);
    expect(stats.spoolForVanishedDatabase).toBe(1);
  }, 240_000);

  it("events arriving by POST and by replay (replay every 200 ms, racing the POSTs) are stored once", async () => {
    const { m, drive } = await setup({ AGENT_MONITOR_SPOOL_REPLAY_MS: "200" });
    const { events } = await drive(m.port, 5000);
    const { stats, ok } = await expectExactlyOnce("POST + replay", m, events);
    // Every event reached the server both ways: replay found each either stored already (by POST), or
    // stored it (the POST was still in the queue: the POST's copy is then the duplicate), never twice.
    expect(ok).toBeGreaterThan(0);
    await waitFor("replay to have read every event", async () => {
      const s = await m.get<Record<string, number>>("/api/hooks/spool/stats");
      return s.spoolAlreadyStored + s.spoolReplayed >= events.length && s;
    });
    expect(stats.spoolAlreadyStored + stats.spoolDuplicates).toBeGreaterThan(0);
  }, 240_000);
});
