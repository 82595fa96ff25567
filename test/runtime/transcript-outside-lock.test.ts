// Runtime check of transcript-outside-lock: a real monitor (Node 22, real SQLite file) built by the
// test. The claim is structural — the transcript is read BEFORE the write transaction begins — and
// the test proves it without timing: it holds SQLite's write lock from a second connection, posts an
// event naming a 20 MB transcript, waits until the event is queued (so the request has been read
// and its transcript parsed), deletes the transcript, and only then lets the transaction begin.
// The token usage that lands in the database can only have come from a read made before BEGIN:
// a read inside the transaction (as upstream does) would find no file and record nothing.
// Lock-held times from the stats endpoint are printed for information, never asserted.
import { randomUUID } from "node:crypto";
import { createWriteStream, existsSync, statSync, unlinkSync } from "node:fs";
import path from "node:path";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import type { BuildOutcome } from "../../scripts/pipeline/build.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import type { Monitor } from "../../harness/monitor.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[transcript-outside-lock runtime] ${SKIP_REAL}`);

// Monitors a test did not stop itself are killed (SIGKILL) after the file's tests.
const scratch = useRuntimeScratch({ teardown: "kill" });
const { tempDir, forget } = scratch;

async function start(outDir: string): Promise<Monitor> {
  const dbPath = path.join(tempDir("tol-db-"), "monitor.db");
  const env = { AGENT_MONITOR_BUSY_TIMEOUT_MS: "200", AGENT_MONITOR_WRITE_BACKOFF_MS: "20", AGENT_MONITOR_WRITE_RETRIES: "500" };
  return scratch.start(outDir, { dbPath, env });
}

interface Tokens {
  input: number;
  output: number;
  cacheRead: number;
}

/** A Claude Code JSONL transcript of `lines` assistant turns padded to roughly `bytes`. */
async function writeTranscript(file: string, bytes: number, model: string): Promise<Tokens & { lines: number }> {
  const out = createWriteStream(file);
  const pad = "x".repeat(400);
  const totals = { input: 0, output: 0, cacheRead: 0, lines: 0 };
  let written = 0;
  const t0 = Date.parse("2026-01-01T00:00:00.000Z");
  for (let i = 0; written < bytes; i++) {
    const usage = { input_tokens: 3 + (i % 5), output_tokens: 7 + (i % 3), cache_read_input_tokens: i % 11, service_tier: "standard" };
    const lines = [
      { type: "user", uuid: `u-${i}`, timestamp: new Date(t0 + i * 2000).toISOString(), message: { role: "user", content: `prompt ${i} ${pad}` } },
      {
        type: "assistant",
        uuid: `a-${i}`,
        timestamp: new Date(t0 + i * 2000 + 1000).toISOString(),
        message: { id: `msg_${i}`, model, role: "assistant", content: [{ type: "text", text: `reply ${i} ${pad}` }], usage },
      },
    ];
    const chunk = lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
    if (!out.write(chunk)) await once(out, "drain");
    written += Buffer.byteLength(chunk);
    totals.input += usage.input_tokens;
    totals.output += usage.output_tokens;
    totals.cacheRead += usage.cache_read_input_tokens;
    totals.lines += 2;
  }
  out.end();
  await once(out, "finish");
  return totals;
}

function tokensOf(dbPath: string, sessionId: string): Tokens | null {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true, timeout: 5_000 });
  try {
    const row = db
      .prepare("SELECT SUM(input_tokens + baseline_input) AS input, SUM(output_tokens + baseline_output) AS output, SUM(cache_read_tokens + baseline_cache_read) AS cacheRead, COUNT(*) AS n FROM token_usage WHERE session_id = ?")
      .get(sessionId) as Tokens & { n: number };
    return row.n === 0 ? null : { input: row.input, output: row.output, cacheRead: row.cacheRead };
  } finally {
    db.close();
  }
}

interface Stats {
  queued: number;
  events: number;
  lockHeldMs: { p50: number; p99: number; max: number };
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.each(trees())("transcript-outside-lock at runtime: %s", (_label, buildTree: () => Promise<BuildOutcome>) => {
  it("the 20 MB transcript is read before BEGIN: deleting it while the event waits for the lock changes nothing", async () => {
    const m = await start((await buildTree()).outDir);
    const work = tempDir("tol-transcript-");
    const session = `big-${randomUUID()}`;
    const transcript = path.join(work, `${session}.jsonl`);
    const expected = await writeTranscript(transcript, 20 * 1024 * 1024, "claude-test-big");
    expect(statSync(transcript).size).toBeGreaterThanOrEqual(20 * 1024 * 1024);

    // Another writer holds the lock: the event can be parsed and queued, but not written.
    const lock = openDatabase(m.dbPath, { timeout: 10_000 });
    lock.exec("BEGIN IMMEDIATE");
    let released = false;
    try {
      const post = m.postEvent("PreToolUse", { session_id: session, cwd: work, transcript_path: transcript, tool_name: "Read" }, { timeoutMs: 120_000 });
      await waitFor("the event to be queued (its request and transcript already read)", async () => (await m.get<Stats>("/api/hooks/write-queue/stats")).queued === 1);
      // The transcript disappears before the transaction can begin.
      unlinkSync(transcript);
      expect(existsSync(transcript)).toBe(false);
      lock.exec("COMMIT");
      released = true;
      const res = await post;
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    } finally {
      if (!released) lock.exec("ROLLBACK");
      lock.close();
    }
    // Everything the 20 MB file said is in the database: it was read before BEGIN.
    expect(tokensOf(m.dbPath, session)).toEqual({ input: expected.input, output: expected.output, cacheRead: expected.cacheRead });
    const s = await m.get<Stats>("/api/hooks/write-queue/stats");
    console.info(`[transcript-outside-lock runtime] ${expected.lines} transcript lines (20 MB); lock held per transaction: p50 ${s.lockHeldMs.p50} ms, max ${s.lockHeldMs.max} ms (information only)`);
    await m.stop();
    forget(m);
  });

  it("events without a readable transcript still commit (the pre-read yields nothing, the core copes)", async () => {
    const m = await start((await buildTree()).outDir);
    const work = tempDir("tol-missing-");
    const session = `gone-${randomUUID()}`;
    const r1 = await m.postEvent("UserPromptSubmit", { session_id: session, cwd: work, transcript_path: path.join(work, "never-written.jsonl"), prompt: "hi" });
    expect(r1.status).toBe(200);
    const small = path.join(work, `${session}.jsonl`);
    const expected = await writeTranscript(small, 4 * 1024, "claude-test-small");
    const r2 = await m.postEvent("SessionEnd", { session_id: session, cwd: work, transcript_path: small, reason: "exit" });
    expect(r2.status).toBe(200);
    expect(tokensOf(m.dbPath, session)).toEqual({ input: expected.input, output: expected.output, cacheRead: expected.cacheRead });
    await m.stop();
    forget(m);
  });
});
