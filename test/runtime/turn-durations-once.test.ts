// Runtime check of turn-durations-once: a real monitor (Node 22, real SQLite file) built by the
// test, fed a session of K turns through many hooks, ends with exactly K TurnDuration rows at the
// transcript's timestamps and turn_count K. A database filled by the unpatched monitor keeps
// working (its duplicates are not multiplied further), and the optional cleanup SQL of
// docs/turn-durations-cleanup.md removes them.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import type { BuildOutcome } from "../../scripts/pipeline/build.ts";
import { buildFixture, buildFixtureUnpatched, buildReal, buildRealUnpatched, realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import type { Monitor } from "../../harness/monitor.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[turn-durations-once runtime] ${SKIP_REAL}`);

const { tempDir, start, forget } = useRuntimeScratch({ teardown: "stop" });

async function stop(m: Monitor): Promise<void> {
  await m.stop();
  forget(m);
}

/** A Claude Code transcript the test appends to as the "session" goes on (timestamps: real now). */
class Transcript {
  readonly durations: { durationMs: number; timestamp: string }[] = [];
  constructor(readonly file: string) {
    writeFileSync(file, "");
  }
  private line(obj: unknown): void {
    appendFileSync(this.file, JSON.stringify(obj) + "\n");
  }
  prompt(text: string): void {
    this.line({ type: "user", timestamp: new Date().toISOString(), message: { role: "user", content: text } });
  }
  reply(text: string): void {
    this.line({
      type: "assistant",
      timestamp: new Date().toISOString(),
      message: {
        model: "claude-test-1",
        role: "assistant",
        content: [{ type: "text", text }],
        usage: { input_tokens: 10, output_tokens: 5, service_tier: "standard" },
      },
    });
  }
  turnDuration(durationMs: number): void {
    const timestamp = new Date().toISOString();
    this.durations.push({ durationMs, timestamp });
    this.line({ type: "system", subtype: "turn_duration", durationMs, timestamp });
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One turn: prompt, a tool call, the reply, the turn_duration line, Stop, and some idle notifications. */
async function turn(m: Monitor, t: Transcript, base: Record<string, unknown>, i: number, durationMs: number): Promise<void> {
  const post = async (hook: string, extra: Record<string, unknown> = {}) => {
    const res = await m.postEvent(hook, { ...base, ...extra });
    expect(res.status, `${hook}: ${JSON.stringify(res.body)}`).toBe(200);
  };
  t.prompt(`do step ${i}`);
  await post("UserPromptSubmit", { prompt: `do step ${i}` });
  await post("PreToolUse", { tool_name: "Bash", tool_input: { command: `echo ${i}` } });
  await post("PostToolUse", { tool_name: "Bash", tool_input: { command: `echo ${i}` }, tool_response: { stdout: `${i}` } });
  t.reply(`step ${i} done`);
  await sleep(3); // distinct millisecond timestamps for the transcript lines
  t.turnDuration(durationMs);
  await post("Stop");
  await post("Notification", { message: "Claude has finished responding" });
  await post("Notification", { message: "Claude has finished responding" });
}

interface Row {
  created_at: string;
  data: string;
}

function turnRows(dbPath: string, sessionId: string): Row[] {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare("SELECT created_at, data FROM events WHERE session_id = ? AND event_type = 'TurnDuration' ORDER BY created_at, id")
      .all(sessionId) as Row[];
  } finally {
    db.close();
  }
}

function sessionMeta(dbPath: string, sessionId: string): Record<string, unknown> {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT metadata FROM sessions WHERE id = ?").get(sessionId) as { metadata: string | null } | undefined;
    return row?.metadata ? (JSON.parse(row.metadata) as Record<string, unknown>) : {};
  } finally {
    db.close();
  }
}

describe.each(trees())("turn-durations-once at runtime (%s)", (_label, buildTree) => {
  it("a session of K turns and many hooks records exactly K TurnDuration rows and turn_count K", async () => {
    const outcome: BuildOutcome = await buildTree();
    const work = tempDir("tdo-run-");
    const dbPath = path.join(work, "monitor.db");
    const sessionId = "7d0e0000-0000-4000-8000-0000000000a1";
    const t = new Transcript(path.join(work, `${sessionId}.jsonl`));
    const base = { session_id: sessionId, cwd: work, transcript_path: t.file };
    const m = await start(outcome.outDir, { dbPath });

    expect((await m.postEvent("SessionStart", { ...base, source: "startup" })).status).toBe(200);
    const K = 5;
    const durations = [4100, 5200, 4100, 7300, 6000]; // a repeated duration is still two turns
    for (let i = 0; i < K; i++) await turn(m, t, base, i, durations[i]);
    // hooks after the last turn re-read the same transcript
    for (let i = 0; i < 4; i++) {
      expect((await m.postEvent("PostToolUse", { ...base, tool_name: "Read", tool_input: {}, tool_response: {} })).status).toBe(200);
    }
    expect((await m.postEvent("SessionEnd", { ...base, reason: "exit" })).status).toBe(200);
    await stop(m);

    const rows = turnRows(dbPath, sessionId);
    expect(rows).toHaveLength(K);
    // each row sits at its transcript line's timestamp and says so in its data
    expect(rows.map((r) => r.created_at)).toEqual(t.durations.map((d) => d.timestamp));
    expect(rows.map((r) => JSON.parse(r.data))).toEqual(t.durations.map((d) => ({ durationMs: d.durationMs, transcript_ts: d.timestamp })));

    const meta = sessionMeta(dbPath, sessionId);
    expect(meta.turn_count).toBe(K);
    expect(meta.total_turn_duration_ms).toBe(durations.reduce((a, b) => a + b, 0));
  });
});

const CLEANUP_DOC = path.join(repoRoot, "docs", "turn-durations-cleanup.md");
function docSql(tag: "dry-run" | "apply"): string {
  const doc = readFileSync(CLEANUP_DOC, "utf8");
  const m = new RegExp(`<!-- cleanup:${tag} -->\\s*\`\`\`sql\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!m) throw new Error(`no <!-- cleanup:${tag} --> sql block in ${CLEANUP_DOC}`);
  return m[1];
}

const upgrades: [string, () => Promise<BuildOutcome>, () => Promise<BuildOutcome>][] = [["fixture", buildFixtureUnpatched, buildFixture]];
if (realUpstream) upgrades.push(["real upstream", () => buildRealUnpatched(), () => buildReal()]);

describe.each(upgrades)("turn-durations-once on a database the unpatched %s monitor filled", (_label, buildOld, buildNew) => {
  it("keeps working: old duplicates are not multiplied, new turns land once, and the documented cleanup removes the old duplicates", async () => {
    const [unpatched, patched] = [await buildOld(), await buildNew()];
    const work = tempDir("tdo-legacy-");
    const dbPath = path.join(work, "monitor.db");
    const sessionId = "7d0e0000-0000-4000-8000-0000000000b2";
    const t = new Transcript(path.join(work, `${sessionId}.jsonl`));
    const base = { session_id: sessionId, cwd: work, transcript_path: t.file };
    const durations = [3000, 3000, 4500, 2500];

    // 1. the unpatched monitor: 3 turns, duplicates pile up
    let m = await start(unpatched.outDir, { dbPath });
    expect((await m.postEvent("SessionStart", { ...base, source: "startup" })).status).toBe(200);
    for (let i = 0; i < 3; i++) await turn(m, t, base, i, durations[i]);
    await stop(m);
    const legacy = turnRows(dbPath, sessionId);
    expect(legacy.length).toBeGreaterThan(3 * 3); // the bug this patch fixes
    expect((sessionMeta(dbPath, sessionId).turn_count as number) > 3).toBe(true);

    // 2. the patched monitor on the same database: one more turn, many hooks
    m = await start(patched.outDir, { dbPath });
    await turn(m, t, base, 3, durations[3]);
    for (let i = 0; i < 3; i++) {
      expect((await m.postEvent("PostToolUse", { ...base, tool_name: "Read", tool_input: {}, tool_response: {} })).status).toBe(200);
    }
    await stop(m);
    const after = turnRows(dbPath, sessionId);
    expect(after).toHaveLength(legacy.length + 1);
    const fresh = after.filter((r) => "transcript_ts" in JSON.parse(r.data));
    expect(fresh.map((r) => [r.created_at, JSON.parse(r.data).durationMs])).toEqual([[t.durations[3].timestamp, 2500]]);
    const meta = sessionMeta(dbPath, sessionId);
    expect(meta.turn_count).toBe(4); // re-derived from the transcript, the inflated value is gone
    expect(meta.total_turn_duration_ms).toBe(3000 + 3000 + 4500 + 2500);

    // 3. the optional cleanup from the docs: dry run, then apply
    const db = openDatabase(dbPath, { fileMustExist: true });
    try {
      const dry = db.prepare(docSql("dry-run")).all() as { session_id: string; rows_to_delete: number }[];
      expect(dry).toEqual([{ session_id: sessionId, rows_to_delete: legacy.length - 3 }]);
      db.exec(docSql("apply"));
      const leftQuery = db.prepare(
        "SELECT id, created_at, json_extract(data, '$.durationMs') AS d FROM events WHERE session_id = ? AND event_type = 'TurnDuration' ORDER BY created_at, id",
      );
      const left = leftQuery.all(sessionId) as { id: number; created_at: string; d: number }[];
      // one row per turn, in turn order, each at (or just after) its transcript line's time
      expect(left.map((r) => r.d)).toEqual(durations);
      left.forEach((r, i) => expect(r.created_at >= t.durations[i].timestamp, `turn ${i}: ${r.created_at} < ${t.durations[i].timestamp}`).toBe(true));
      expect(left[3].created_at).toBe(t.durations[3].timestamp);
      const cleaned = JSON.parse((db.prepare("SELECT metadata FROM sessions WHERE id = ?").get(sessionId) as { metadata: string }).metadata);
      expect(cleaned.turn_count).toBe(4);
      expect(cleaned.total_turn_duration_ms).toBe(13000);
      // idempotent: nothing left to delete, and a second run changes nothing
      expect(db.prepare(docSql("dry-run")).all()).toEqual([]);
      db.exec(docSql("apply"));
      expect(leftQuery.all(sessionId)).toEqual(left);
    } finally {
      db.close();
    }
  });
});
