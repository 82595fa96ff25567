// Runtime check of validate-hook-input on a real monitor (Node 22, real SQLite file) built by the
// test: a table of malformed hook requests (each field's wrong types, absurd sizes and nesting,
// bodies express cannot parse) is answered 4xx — 400 with upstream's { error: { code, message } }
// naming the field wherever the route sees the request — never 500; the server stays healthy and
// nothing of them is stored; absurd send stamps are stored unstamped and counted; a good event
// afterwards is stored. A full queue is refused before the transcript is read.
import { randomUUID } from "node:crypto";
import { copyFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import { ensureTemplate } from "../../harness/transcript.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import type { Monitor } from "../../harness/monitor.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[validate-hook-input runtime] ${SKIP_REAL}`);

const { tempDir, start } = useRuntimeScratch({ teardown: "kill" });

/** Nested `depth` levels: { a: { a: … } } (built iteratively; JSON.stringify of it is ours to do once). */
function nested(depth: number): string {
  return '{"a":'.repeat(depth - 1) + "{}" + "}".repeat(depth - 1);
}

/** POST a raw body to /api/hooks/event; the answer's status and body (JSON when it is JSON). */
async function postBody(m: Monitor, body: string) {
  const res = await fetch(`${m.url}/api/hooks/event`, { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // express's own error page for a body it could not parse
  }
  return { status: res.status, json, text };
}

function counts(dbPath: string) {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
  try {
    const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    return { events: n("SELECT count(*) AS n FROM events"), sessions: n("SELECT count(*) AS n FROM sessions") };
  } finally {
    db.close();
  }
}

function storedData(dbPath: string, sessionId: string): Record<string, unknown>[] {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT data FROM events WHERE session_id = ? ORDER BY id").all(sessionId) as { data: string }[]).map((r) => JSON.parse(r.data));
  } finally {
    db.close();
  }
}

const healthy = async (m: Monitor) => expect((await m.get<{ status: string }>("/api/health")).status).toBe("ok");

const SID = "0a1d0000-0000-4000-8000-000000000001";
const ok = (data: Record<string, unknown>) => JSON.stringify({ hook_type: "PreToolUse", data: { session_id: SID, tool_name: "Bash", ...data } });
const bad = (hookType: unknown, data: unknown) => JSON.stringify({ hook_type: hookType, data });

// [label, raw body, expected status, text the message must contain (the field it names)]
const MALFORMED: [string, string, number, string][] = [
  ["body: a JSON array", "[]", 400, "request body must be a JSON object"],
  ["body: not JSON", '{"hook_type": "PreToolUse", "data": {', 400, ""],
  ["body: a bare string", '"PreToolUse"', 400, ""],
  ["body: over express's 1 MB limit", ok({ tool_input: { command: "x".repeat(1_100_000) } }), 413, ""],
  ["hook_type: missing", JSON.stringify({ data: { session_id: SID } }), 400, "hook_type"],
  ["hook_type: a number", bad(42, { session_id: SID }), 400, "hook_type"],
  ["hook_type: an object", bad({ name: "PreToolUse" }, { session_id: SID }), 400, "hook_type"],
  ["hook_type: an array", bad(["PreToolUse"], { session_id: SID }), 400, "hook_type"],
  ["hook_type: not letters", bad("Pre Tool-Use;", { session_id: SID }), 400, "hook_type"],
  ["hook_type: 65 letters", bad("P".repeat(65), { session_id: SID }), 400, "hook_type"],
  ["hook_type: 100 KB", bad("P".repeat(100_000), { session_id: SID }), 400, "hook_type"],
  ["data: missing", JSON.stringify({ hook_type: "PreToolUse" }), 400, "data"],
  ["data: a string", bad("PreToolUse", "session"), 400, "data must be a JSON object"],
  ["data: an array", bad("PreToolUse", [{ session_id: SID }]), 400, "data must be a JSON object"],
  ["data: a number", bad("PreToolUse", 7), 400, "data must be a JSON object"],
  ["data.session_id: missing", bad("PreToolUse", { tool_name: "Bash" }), 400, "session_id"],
  ["data.session_id: empty", bad("PreToolUse", { session_id: "" }), 400, "session_id"],
  ["data.session_id: a number", bad("PreToolUse", { session_id: 12345 }), 400, "data.session_id"],
  ["data.session_id: an object", bad("PreToolUse", { session_id: { id: SID } }), 400, "data.session_id"],
  ["data.session_id: an array", bad("PreToolUse", { session_id: [SID] }), 400, "data.session_id"],
  ["data.session_id: 257 characters", bad("PreToolUse", { session_id: "s".repeat(257) }), 400, "data.session_id"],
  ["data.session_id: 500 KB", bad("PreToolUse", { session_id: "s".repeat(500_000) }), 400, "data.session_id"],
  ["data.transcript_path: a number", ok({ transcript_path: 1 }), 400, "data.transcript_path"],
  ["data.transcript_path: an object", ok({ transcript_path: { path: "/x" } }), 400, "data.transcript_path"],
  ["data.transcript_path: 5000 characters", ok({ transcript_path: `/${"d".repeat(4999)}` }), 400, "data.transcript_path"],
  ["data.transcript_path: a NUL byte", ok({ transcript_path: "/tmp/a\u0000.jsonl" }), 400, "data.transcript_path"],
  ["data.cwd: an array", ok({ cwd: ["/tmp"] }), 400, "data.cwd"],
  ["data.cwd: a boolean", ok({ cwd: true }), 400, "data.cwd"],
  ["data.tool_name: a number", ok({ tool_name: 5 }), 400, "data.tool_name"],
  ["data.model: an object", ok({ model: { id: "opus" } }), 400, "data.model"],
  ["data.session_name: an array", ok({ session_name: ["a"] }), 400, "data.session_name"],
  ["data.prompt: an object", bad("UserPromptSubmit", { session_id: SID, prompt: { text: "hi" } }), 400, "data.prompt"],
  ["data.message: a number", bad("Notification", { session_id: SID, message: 404 }), 400, "data.message"],
  ["data.source: a number", bad("SessionStart", { session_id: SID, source: 1 }), 400, "data.source"],
  ["data.stop_reason: an object", bad("Stop", { session_id: SID, stop_reason: { r: "error" } }), 400, "data.stop_reason"],
  ["data.description: a number", bad("SubagentStop", { session_id: SID, description: 3 }), 400, "data.description"],
  ["data.agent_type: an array", bad("SubagentStop", { session_id: SID, agent_type: ["x"] }), 400, "data.agent_type"],
  ["data.subagent_type: a boolean", bad("SubagentStop", { session_id: SID, subagent_type: false }), 400, "data.subagent_type"],
  ["data.tool_input: a string", ok({ tool_input: "ls -la" }), 400, "data.tool_input"],
  ["data.tool_input: an array", ok({ tool_input: ["ls"] }), 400, "data.tool_input"],
  ["data.tool_input.prompt: a number", ok({ tool_name: "Agent", tool_input: { prompt: 1 } }), 400, "data.tool_input.prompt"],
  ["data.tool_input.description: an object", ok({ tool_name: "Agent", tool_input: { description: {} } }), 400, "data.tool_input.description"],
  ["data.tool_input.subagent_type: an array", ok({ tool_name: "Agent", tool_input: { subagent_type: [] } }), 400, "data.tool_input.subagent_type"],
  ["data.tool_input: nested 65 levels", `{"hook_type":"PreToolUse","data":{"session_id":"${SID}","tool_input":${nested(64)}}}`, 400, "data.tool_input"],
  ["data.tool_input: nested 5,000 levels", `{"hook_type":"PreToolUse","data":{"session_id":"${SID}","tool_input":${nested(5000)}}}`, 400, "data.tool_input"],
  ["data.tool_response: nested 100,000 levels", `{"hook_type":"PostToolUse","data":{"session_id":"${SID}","tool_response":${nested(100_000)}}}`, 400, "data.tool_response"],
  ["data.extra: 60,000 nested arrays", `{"hook_type":"PreToolUse","data":{"session_id":"${SID}","extra":${"[".repeat(60_000)}${"]".repeat(60_000)}}}`, 400, "data.extra"],
];

describe.each(trees())("validate-hook-input at runtime (%s)", (_label, buildTree) => {
  it("every malformed request gets 4xx (400 naming the field where the route sees it), never 500; nothing is stored; the server stays healthy; a good event afterwards is stored", async () => {
    const m = await start((await buildTree()).outDir);
    await healthy(m);
    const before = counts(m.dbPath);
    const failures: string[] = [];
    for (const [label, body, status, names] of MALFORMED) {
      const res = await postBody(m, body);
      if (res.status !== status) failures.push(`${label}: ${res.status} (expected ${status}) ${res.text.slice(0, 200)}`);
      else if (status === 400 && names !== "") {
        // upstream's error shape, a one-line message naming the field
        const err = res.json?.error;
        if (!err || !["INVALID_INPUT", "MISSING_SESSION"].includes(err.code) || typeof err.message !== "string" || !err.message.includes(names) || err.message.includes("\n")) {
          failures.push(`${label}: ${res.text.slice(0, 300)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    await healthy(m);
    expect(counts(m.dbPath)).toEqual(before);
    const stats = await m.get<{ rejectedInvalid: number }>("/api/hooks/write-queue/stats");
    // every case the route saw (the parser answers the unparseable and oversized bodies itself)
    expect(stats.rejectedInvalid).toBe(MALFORMED.filter(([, , s, names]) => s === 400 && names !== "").length);

    const good = await m.postEvent("PreToolUse", { session_id: SID, tool_name: "Bash", tool_input: { command: "ls" }, sent_at_ms: Date.now() });
    expect(good.status, JSON.stringify(good.body)).toBe(200);
    expect(storedData(m.dbPath, SID)).toHaveLength(1);
    expect(storedData(m.dbPath, SID)[0].sent_at_ms).toEqual(expect.any(Number));
  });

  it("an absurd sent_at_ms is ignored: the event is stored unstamped and counted; an enormous one no longer makes its SessionEnd final for good", async () => {
    const m = await start((await buildTree()).outDir);
    const id = `stamp-${randomUUID()}`;
    const absurd: unknown[] = [-1, 1e300, Date.now() + 2 * 86_400_000, Date.now() - 2 * 86_400_000, "1700000000000", null, { ms: 1 }, [Date.now()]];
    for (const stamp of absurd) {
      const res = await m.postEvent("PreToolUse", { session_id: id, tool_name: "Bash", tool_input: {}, sent_at_ms: stamp });
      expect(res.status, `sent_at_ms ${JSON.stringify(stamp)}: ${JSON.stringify(res.body)}`).toBe(200);
    }
    const rows = storedData(m.dbPath, id);
    expect(rows).toHaveLength(absurd.length);
    for (const row of rows) expect(row).not.toHaveProperty("sent_at_ms");
    expect((await m.get<{ ignoredStamps: number }>("/api/hooks/write-queue/stats")).ignoredStamps).toBe(absurd.length);

    // A SessionEnd "sent" in the far future used to mark the session final forever: its stamp is dropped now.
    expect((await m.postEvent("SessionEnd", { session_id: id, reason: "exit", sent_at_ms: 9e15 })).status).toBe(200);
    expect((await m.postEvent("UserPromptSubmit", { session_id: id, prompt: "again", sent_at_ms: Date.now() })).status).toBe(200);
    const db = openDatabase(m.dbPath, { readonly: true, fileMustExist: true });
    try {
      expect((db.prepare("SELECT status FROM sessions WHERE id = ?").get(id) as { status: string }).status).toBe("active");
    } finally {
      db.close();
    }
    await healthy(m);
  });

  it("a full queue answers 503 before the transcript is read: no worker parse, no cache entry for it", async () => {
    // AGENT_MONITOR_QUEUE_MAX=1 and the write lock held elsewhere: one event waits, the next is refused.
    const dir = tempDir("vhi-full-");
    const m = await start((await buildTree()).outDir, { env: { AGENT_MONITOR_QUEUE_MAX: "1", AGENT_MONITOR_BUSY_TIMEOUT_MS: "100", AGENT_MONITOR_WRITE_RETRIES: "1000", AGENT_MONITOR_WRITE_BACKOFF_MS: "20" } });
    const transcript = path.join(dir, "big.jsonl");
    copyFileSync(ensureTemplate(dir, 1_000_000, 3), transcript);
    const lock = openDatabase(m.dbPath, { timeout: 10_000 });
    lock.exec("BEGIN IMMEDIATE");
    try {
      const waiting = m.postEvent("PreToolUse", { session_id: `full-${randomUUID()}`, tool_name: "Bash" }, { timeoutMs: 60_000 });
      for (let i = 0; i < 400 && (await m.get<{ queued: number }>("/api/hooks/write-queue/stats")).queued < 1; i++) await new Promise((r) => setTimeout(r, 25));
      const refused = await m.postEvent("SessionStart", { session_id: `full-${randomUUID()}`, transcript_path: transcript, source: "resume" });
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ error: { code: "QUEUE_FULL" } });
      const prefetch = await m.get<{ workerReads: number; queued: number }>("/api/hooks/transcript-prefetch/stats");
      expect(prefetch.workerReads).toBe(0); // the 1 MB transcript was never handed to the parser
      lock.exec("COMMIT");
      expect((await waiting).status).toBe(200);
    } finally {
      if (lock.inTransaction) lock.exec("ROLLBACK");
      lock.close();
    }
    await healthy(m);
  });
});
