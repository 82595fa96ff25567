// Runtime check of atomic-watchdog: a Node 22 child process requires the generated
// server/routes/hooks.js against a real SQLite file (DASHBOARD_DB_PATH) and calls
// router.watchdogCheck() in-process. A fake WebSocket client records every frame together with what a
// SECOND connection can see at that moment (i.e. what is committed), so "broadcast after COMMIT" is
// observed, not assumed. A second session gets a hook written while the watchdog parses its
// transcript; its decision must follow the state read inside the transaction.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ensureNode22 } from "../../scripts/lib/node22.ts";
import type { BuildOutcome } from "../../scripts/pipeline/build.ts";
import { buildFixtureUnpatched, realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import { monitorEnv } from "../../harness/monitor.ts";
import { runtimeNodePath, useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[atomic-watchdog runtime] ${SKIP_REAL}`);

const { tempDir } = useRuntimeScratch();

/** Runs inside the monitor tree (cwd) on Node 22. Prints one JSON line. */
const CHILD = String.raw`
"use strict";
const fs = require("fs");
const path = require("path");
const http = require("http");
const { DatabaseSync } = require("node:sqlite");
const cfg = JSON.parse(process.argv[2]);
const tree = process.cwd();

const { db, stmts } = require(path.join(tree, "server/db"));
const ws = require(path.join(tree, "server/websocket"));
const wss = ws.initWebSocket(http.createServer());
const observer = new DatabaseSync(cfg.dbPath, { readOnly: true });
const frames = [];
// A client that records each frame with what another connection sees when it is sent.
wss.clients.add({
  readyState: 1,
  send(message) {
    const m = JSON.parse(message);
    const seen = {};
    for (const id of cfg.sessions.map((s) => s.id)) {
      seen[id] = {
        status: observer.prepare("SELECT status FROM sessions WHERE id = ?").get(id)?.status ?? null,
        apiErrors: Number(observer.prepare("SELECT COUNT(*) AS n FROM events WHERE session_id = ? AND event_type = 'APIError'").get(id).n),
      };
    }
    frames.push({ type: m.type, eventType: m.data && m.data.event_type, sessionId: m.data && (m.data.session_id || m.data.id), seen });
  },
  ping() {},
  terminate() {},
});

const old = new Date(Date.now() - 60_000).toISOString();
for (const s of cfg.sessions) {
  stmts.insertSession.run(s.id, "Session " + s.id.slice(0, 8), "active", cfg.cwd, "claude-test-1", null);
  stmts.insertAgent.run(s.id + "-main", s.id, "Main Agent", "main", null, "waiting", null, null, null);
  // the transcript path, where each upstream version looks for it
  db.prepare("INSERT INTO events (session_id, agent_id, event_type, tool_name, summary, data, created_at) VALUES (?, ?, 'UserPromptSubmit', NULL, 'prompt', ?, ?)")
    .run(s.id, s.id + "-main", JSON.stringify({ session_id: s.id, transcript_path: s.transcript }), old);
  try { db.prepare("UPDATE sessions SET transcript_path = ? WHERE id = ?").run(s.transcript, s.id); } catch {}
  db.prepare("UPDATE sessions SET updated_at = ? WHERE id = ?").run(old, s.id);
}

const hooks = require(path.join(tree, "server/routes/hooks"));
// While the watchdog parses the "busy" session's transcript, that session's user resumes: a hook
// lands (written and committed by someone else) between the watchdog's read and its decisions.
const extract = hooks.transcriptCache.extract.bind(hooks.transcriptCache);
hooks.transcriptCache.extract = (p) => {
  const result = extract(p);
  const busy = cfg.sessions.find((s) => s.hookDuringRead && s.transcript === p);
  if (busy) {
    stmts.touchSession.run(busy.id);
    stmts.updateAgent.run(null, "working", null, null, null, null, busy.id + "-main");
  }
  return result;
};

hooks.watchdogCheck();

const out = { frames, sessions: {} };
for (const s of cfg.sessions) {
  out.sessions[s.id] = {
    status: stmts.getSession.get(s.id).status,
    agent: stmts.getAgent.get(s.id + "-main").status,
    apiErrors: db.prepare("SELECT created_at, summary FROM events WHERE session_id = ? AND event_type = 'APIError'").all(s.id),
  };
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
`;

interface Seen {
  status: string | null;
  apiErrors: number;
}
interface ChildOut {
  frames: { type: string; eventType?: string; sessionId?: string; seen: Record<string, Seen> }[];
  sessions: Record<string, { status: string; agent: string; apiErrors: { created_at: string; summary: string }[] }>;
}

const ERRORED = "a7d0e000-0000-4000-8000-00000000e001";
const BUSY = "a7d0e000-0000-4000-8000-00000000b002";

function transcript(file: string, errorAt: string): void {
  const t0 = new Date(Date.parse(errorAt) - 5000).toISOString();
  const t1 = new Date(Date.parse(errorAt) - 4000).toISOString();
  const lines = [
    { type: "user", timestamp: t0, message: { role: "user", content: "run the build" } },
    {
      type: "assistant",
      timestamp: t1,
      message: { model: "claude-test-1", role: "assistant", content: [{ type: "text", text: "Building." }], usage: { input_tokens: 5, output_tokens: 2 } },
    },
    // an API error after the last turn: unrecovered at the tail
    { type: "error", timestamp: errorAt, error: { type: "overloaded_error", message: "Overloaded" } },
  ];
  writeFileSync(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
}

async function runWatchdog(outcome: BuildOutcome): Promise<ChildOut> {
  const work = tempDir("aw-run-");
  const errorAt = new Date(Date.now() - 20_000).toISOString();
  const sessions = [
    { id: ERRORED, transcript: path.join(work, `${ERRORED}.jsonl`), hookDuringRead: false },
    { id: BUSY, transcript: path.join(work, `${BUSY}.jsonl`), hookDuringRead: true },
  ];
  for (const s of sessions) transcript(s.transcript, errorAt);
  const script = path.join(work, "watchdog-child.cjs");
  writeFileSync(script, CHILD);
  const dbPath = path.join(work, "monitor.db");
  const nodePath = await runtimeNodePath(outcome.outDir);
  const home = path.join(work, "home");
  const env = monitorEnv({ port: 0, dbPath, homeDir: home, extra: { NODE_PATH: nodePath } });
  const stdout = execFileSync(ensureNode22(), [script, JSON.stringify({ dbPath, cwd: work, sessions })], {
    cwd: outcome.outDir,
    env,
    encoding: "utf8",
    timeout: 60_000,
  });
  const line = stdout.trim().split("\n").filter((l) => l.startsWith("{")).at(-1);
  if (!line) throw new Error(`child printed no result:\n${stdout}`);
  return JSON.parse(line) as ChildOut;
}

describe.each(trees())("atomic-watchdog at runtime (%s)", (_label, buildTree) => {
  it("records the transcript's API error once, flips the session, and sends every frame only after COMMIT", async () => {
    const out = await runWatchdog(await buildTree());
    const s = out.sessions[ERRORED];
    expect(s.apiErrors.map((e) => e.summary)).toEqual(["overloaded_error: Overloaded"]);
    expect(s.status).toBe("error");
    expect(s.agent).toBe("error");

    const mine = out.frames.filter((f) => f.sessionId === ERRORED || f.sessionId === `${ERRORED}-main`);
    expect(mine.some((f) => f.type === "new_event" && f.eventType === "APIError")).toBe(true);
    expect(mine.some((f) => f.type === "session_updated")).toBe(true);
    // When each frame left, another connection already saw the tick's final, committed state.
    for (const f of out.frames) expect(f.seen[ERRORED], `${f.type} ${f.eventType ?? ""}`).toEqual({ status: "error", apiErrors: 1 });
  });

  it("a hook that lands while the watchdog reads the transcript wins: the stale decision is not written", async () => {
    const out = await runWatchdog(await buildTree());
    expect(out.sessions[BUSY]).toEqual({ status: "active", agent: "working", apiErrors: [] });
    expect(out.frames.filter((f) => f.sessionId === BUSY || f.sessionId === `${BUSY}-main`)).toEqual([]);
  });
});

describe("the same scenario on the unpatched fixture (the test tells the difference)", () => {
  it("unpatched: frames go out before the tick committed, and the stale decision overwrites the fresh hook", async () => {
    const out = await runWatchdog(await buildFixtureUnpatched());
    expect(out.frames.some((f) => f.seen[ERRORED].status !== "error")).toBe(true);
    expect(out.sessions[BUSY].status).toBe("error");
    expect(out.sessions[BUSY].apiErrors).toHaveLength(1);
  });
});
