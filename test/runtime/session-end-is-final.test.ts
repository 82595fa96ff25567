// Runtime check of session-end-is-final on a real monitor (Node 22, real SQLite file) built by the
// test: an event stamped before an already-processed SessionEnd does not reopen the session (nor
// change any state) while a later UserPromptSubmit does; unstamped events keep upstream's behaviour;
// events that land in one write-queue batch are applied in send order; and the generated
// hook-handler.js, run as a real child process with JSON on stdin, sends its stamp.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import { runHookHandler } from "../../harness/hook-handler.ts";
import { ensureNode22 } from "../../scripts/lib/node22.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import { monitorEnv } from "../../harness/monitor.ts";
import { runtimeNodePath, useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[session-end-is-final runtime] ${SKIP_REAL}`);

// Monitors are stopped (SIGTERM) after the file's tests; each gets startMonitor's default database.
const { tempDir, start } = useRuntimeScratch({ teardown: "stop" });

interface EventRow {
  id: number;
  event_type: string;
  summary: string | null;
  data: string;
}

function read<T>(dbPath: string, fn: (db: ReturnType<typeof openDatabase>) => T): T {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}
const sessionStatus = (dbPath: string, id: string) =>
  read(dbPath, (db) => (db.prepare("SELECT status FROM sessions WHERE id = ?").get(id) as { status: string } | undefined)?.status);
const agentStatus = (dbPath: string, id: string) =>
  read(dbPath, (db) => (db.prepare("SELECT status, awaiting_input_since FROM agents WHERE id = ?").get(`${id}-main`) as { status: string; awaiting_input_since: string | null }));
const events = (dbPath: string, id: string) =>
  read(dbPath, (db) => db.prepare("SELECT id, event_type, summary, data FROM events WHERE session_id = ? ORDER BY id").all(id) as EventRow[]);

describe.each(trees())("session-end-is-final at runtime (%s)", (_label, buildTree) => {
  it("an event sent before the processed SessionEnd does not reopen the session; a later UserPromptSubmit does", async () => {
    const m = await start((await buildTree()).outDir);
    const id = "5e5e0000-0000-4000-8000-0000000000f1";
    const base = { session_id: id, cwd: os.tmpdir() };
    const t = Date.now();
    const post = async (hook: string, sentAt: number | null, extra: Record<string, unknown> = {}) => {
      const res = await m.postEvent(hook, { ...base, ...extra, ...(sentAt === null ? {} : { sent_at_ms: sentAt }) });
      expect(res.status, `${hook}: ${JSON.stringify(res.body)}`).toBe(200);
    };

    await post("SessionStart", t, { source: "startup" });
    await post("UserPromptSubmit", t + 1, { prompt: "go" });
    await post("SessionEnd", t + 10, { reason: "exit" });
    expect(sessionStatus(m.dbPath, id)).toBe("completed");
    const endedAgent = agentStatus(m.dbPath, id);

    // sent before the SessionEnd, processed after it (out of order)
    await post("PreToolUse", t + 5, { tool_name: "Bash", tool_input: { command: "ls" } });
    await post("PostToolUse", t + 6, { tool_name: "Bash", tool_input: { command: "ls" }, tool_response: {} });
    await post("Notification", t + 7, { message: "Claude needs your permission to use Bash" });
    await post("Stop", t + 8);
    expect(sessionStatus(m.dbPath, id)).toBe("completed");
    expect(agentStatus(m.dbPath, id)).toEqual(endedAgent);
    const late = events(m.dbPath, id).slice(-4);
    expect(late.map((e) => e.event_type)).toEqual(["PreToolUse", "PostToolUse", "Notification", "Stop"]);
    expect(late[0].summary).toBe("Late PreToolUse (Bash): sent before the session ended; recorded, state unchanged");
    for (const e of late) expect(e.summary).toMatch(/^Late /);

    // an older duplicate SessionEnd changes nothing either
    await post("SessionEnd", t + 9, { reason: "exit" });
    expect(sessionStatus(m.dbPath, id)).toBe("completed");

    // a genuine resume, sent after the SessionEnd
    await post("UserPromptSubmit", t + 20, { prompt: "one more thing" });
    expect(sessionStatus(m.dbPath, id)).toBe("active");
    expect(agentStatus(m.dbPath, id).status).toBe("working");
  });

  it("a Stop stamped in the same millisecond as the SessionEnd is late; a UserPromptSubmit in that millisecond resumes", async () => {
    const m = await start((await buildTree()).outDir);
    const id = "5e5e0000-0000-4000-8000-0000000000f3";
    const base = { session_id: id, cwd: os.tmpdir() };
    const t = Date.now();
    for (const [hook, sent, extra] of [
      ["SessionStart", t, { source: "startup" }],
      ["SessionEnd", t + 5, { reason: "exit" }],
      ["Stop", t + 5, {}],
    ] as const) {
      expect((await m.postEvent(hook, { ...base, ...extra, sent_at_ms: sent })).status).toBe(200);
    }
    expect(sessionStatus(m.dbPath, id)).toBe("completed");
    expect(events(m.dbPath, id).at(-1)!.summary).toMatch(/^Late Stop/);
    expect((await m.postEvent("UserPromptSubmit", { ...base, prompt: "again", sent_at_ms: t + 5 })).status).toBe(200);
    expect(sessionStatus(m.dbPath, id)).toBe("active");
  });

  it("unstamped events (older hook clients) keep upstream's behaviour: a late PreToolUse reactivates", async () => {
    const m = await start((await buildTree()).outDir);
    const id = "5e5e0000-0000-4000-8000-0000000000f2";
    const base = { session_id: id, cwd: os.tmpdir() };
    for (const [hook, extra] of [
      ["SessionStart", { source: "startup" }],
      ["SessionEnd", { reason: "exit" }],
      ["PreToolUse", { tool_name: "Bash", tool_input: {} }],
    ] as const) {
      expect((await m.postEvent(hook, { ...base, ...extra })).status).toBe(200);
    }
    expect(sessionStatus(m.dbPath, id)).toBe("active");
  });

  it("events that land in one write-queue batch are applied in send order", async () => {
    const outcome = await buildTree();
    const work = tempDir("seif-batch-");
    const dbPath = path.join(work, "monitor.db");
    const id = "5e5e0000-0000-4000-8000-0000000000f3";
    const script = path.join(work, "batch-child.cjs");
    // Calls the generated POST /event handler three times in one tick (so the three events are
    // queued before the drain runs and form one batch), arrival order: SessionEnd, PreToolUse, Stop.
    writeFileSync(
      script,
      String.raw`
"use strict";
const path = require("path");
const router = require(path.join(process.cwd(), "server/routes/hooks"));
const layer = router.stack.find((l) => l.route && l.route.path === "/event" && l.route.methods.post);
const handle = layer.route.stack[layer.route.stack.length - 1].handle;
const id = process.argv[2];
const t = Date.now();
const send = (hook_type, sent, extra) =>
  new Promise((resolve) => {
    const res = {
      statusCode: 200, headersSent: false,
      status(c) { this.statusCode = c; return this; },
      set() { return this; },
      json(body) { this.headersSent = true; resolve({ status: this.statusCode, body }); return this; },
    };
    handle({ body: { hook_type, data: { session_id: id, cwd: "/tmp", sent_at_ms: t + sent, ...extra } } }, res, (err) => resolve({ status: 500, body: String(err) }));
  });
send("SessionStart", 0, { source: "startup" }).then(() =>
  Promise.all([
    send("SessionEnd", 30, { reason: "exit" }),
    send("PreToolUse", 10, { tool_name: "Bash", tool_input: {} }),
    send("Stop", 20, {}),
  ]).then((answers) => {
    process.stdout.write(JSON.stringify({ answers, batches: router.writeQueue ? router.writeQueue.stats().batches : null }) + "\n");
    process.exit(0);
  })
);
`,
    );
    const env = monitorEnv({ port: 0, dbPath, homeDir: path.join(work, "home"), extra: { NODE_PATH: await runtimeNodePath(outcome.outDir) } });
    const out = execFileSync(ensureNode22(), [script, id], { cwd: outcome.outDir, env, encoding: "utf8", timeout: 60_000 });
    const result = JSON.parse(out.trim().split("\n").at(-1)!) as { answers: { status: number }[]; batches: number };
    expect(result.answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(result.batches).toBe(2); // SessionStart alone, then the three together

    const rows = events(dbPath, id);
    expect(rows.map((r) => r.event_type)).toEqual(["SessionStart", "PreToolUse", "Stop", "SessionEnd"]);
    // applied before the SessionEnd, so handled normally (not as late events)
    expect(rows[1].summary).toBe("Using tool: Bash");
    expect(rows.some((r) => /^Late /.test(r.summary ?? ""))).toBe(false);
    expect(sessionStatus(dbPath, id)).toBe("completed");
  });

  it("the generated hook-handler.js (a real child process, JSON on stdin) sends data.sent_at_ms", async () => {
    const outcome = await buildTree();
    const m = await start(outcome.outDir);
    const id = "5e5e0000-0000-4000-8000-0000000000f4";
    const env = monitorEnv({
      port: m.port,
      dbPath: m.dbPath,
      homeDir: tempDir("seif-hook-home-"),
      extra: { NODE_PATH: await runtimeNodePath(outcome.outDir), CLAUDE_DASHBOARD_PORT: String(m.port) },
    });
    const before = Date.now();
    const { code } = await runHookHandler(outcome.outDir, env, { session_id: id, cwd: os.tmpdir(), hook_event_name: "PreToolUse", tool_name: "Read", tool_input: {} });
    const after = Date.now();
    expect(code).toBe(0);

    // fire-and-forget: the handler exits once the request is on the wire; wait for the row
    let rows: EventRow[] = [];
    for (let i = 0; i < 100 && rows.length === 0; i++) {
      rows = events(m.dbPath, id).filter((r) => r.event_type === "PreToolUse");
      if (rows.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(rows).toHaveLength(1);
    const data = JSON.parse(rows[0].data) as { sent_at_ms?: unknown; tool_name?: string };
    expect(data.tool_name).toBe("Read");
    expect(typeof data.sent_at_ms).toBe("number");
    expect(data.sent_at_ms as number).toBeGreaterThanOrEqual(before);
    expect(data.sent_at_ms as number).toBeLessThanOrEqual(after);
  });
});
