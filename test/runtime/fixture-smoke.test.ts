// Smoke test: the CI fixture monitor boots on Node 22 through the shared
// harness, ingests one full hook lifecycle, and reports it over the REST API.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureUpstreamDir } from "../../scripts/lib/paths.ts";
import { startMonitor, type Monitor } from "../../harness/monitor.ts";

const SESSION_ID = "5e55a0e1-0000-4000-8000-00000000beef";

function transcriptLines(): string {
  const lines = [
    { type: "user", timestamp: "2026-01-01T10:00:00.000Z", message: { role: "user", content: "list the files" } },
    {
      type: "assistant",
      timestamp: "2026-01-01T10:00:02.000Z",
      message: {
        model: "claude-fixture-1",
        role: "assistant",
        content: [{ type: "text", text: "Running ls." }],
        usage: { input_tokens: 120, output_tokens: 30, cache_read_input_tokens: 1000, cache_creation_input_tokens: 50, service_tier: "standard" },
      },
    },
    {
      type: "assistant",
      timestamp: "2026-01-01T10:00:05.000Z",
      message: {
        model: "claude-fixture-1",
        role: "assistant",
        content: [{ type: "text", text: "Done." }],
        usage: { input_tokens: 80, output_tokens: 12, service_tier: "standard" },
      },
    },
    { type: "system", subtype: "turn_duration", durationMs: 5200, timestamp: "2026-01-01T10:00:06.000Z" },
  ];
  return lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
}

describe("fixture monitor smoke", () => {
  let monitor: Monitor;
  let workDir: string;
  let transcriptPath: string;

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(os.tmpdir(), "fixture-smoke-"));
    transcriptPath = path.join(workDir, `${SESSION_ID}.jsonl`);
    writeFileSync(transcriptPath, transcriptLines());
    monitor = await startMonitor({ treeDir: fixtureUpstreamDir });
  });

  afterAll(async () => {
    await monitor?.stop();
    if (monitor) rmSync(path.dirname(monitor.dbPath), { recursive: true, force: true });
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("ingests a full hook lifecycle and lists the completed session", async () => {
    const base = { session_id: SESSION_ID, cwd: workDir, transcript_path: transcriptPath };
    const lifecycle: Array<[string, Record<string, unknown>]> = [
      ["SessionStart", { ...base, source: "startup" }],
      ["UserPromptSubmit", { ...base, prompt: "list the files" }],
      ["PreToolUse", { ...base, tool_name: "Bash", tool_input: { command: "ls" } }],
      ["PostToolUse", { ...base, tool_name: "Bash", tool_input: { command: "ls" }, tool_response: { stdout: "a\nb" } }],
      ["Stop", { ...base }],
      ["SessionEnd", { ...base, reason: "exit" }],
    ];
    for (const [hookType, data] of lifecycle) {
      const res = await monitor.postEvent(hookType, data);
      expect(res.status, `${hookType}: ${JSON.stringify(res.body)}`).toBe(200);
      expect(res.body).toMatchObject({ ok: true, event: { session_id: SESSION_ID, event_type: hookType } });
    }

    const list = await monitor.get<{ sessions: Array<Record<string, unknown>>; total: number }>("/api/sessions");
    expect(list.total).toBe(1);
    const session = list.sessions.find((s) => s.id === SESSION_ID);
    expect(session).toBeDefined();
    expect(session).toMatchObject({ status: "completed", model: "claude-fixture-1", agent_count: 1 });
    expect(session?.ended_at).toEqual(expect.any(String));

    const detail = await monitor.get<{ events: Array<{ event_type: string }> }>(`/api/sessions/${SESSION_ID}`);
    const hookEvents = detail.events.filter((e) => e.event_type !== "TurnDuration");
    // Exactly the six posted hook events, no more, no less.
    expect(hookEvents.map((e) => e.event_type).sort()).toEqual(lifecycle.map(([h]) => h).sort());
    // The transcript's system/turn_duration line produced TurnDuration events
    // (the monitor's created_at-based dedupe never matches, so one per hook event).
    const turnDurations = detail.events.filter((e) => e.event_type === "TurnDuration");
    expect(turnDurations.length).toBe(lifecycle.length);

    const stats = await monitor.get<{ total_events: number; tokens: Record<string, number> }>(
      `/api/sessions/${SESSION_ID}/stats`,
    );
    expect(stats.total_events).toBe(detail.events.length);
    // Token usage summed per model from the transcript's assistant lines.
    expect(stats.tokens).toEqual({ input_tokens: 200, output_tokens: 42, cache_read_tokens: 1000, cache_write_tokens: 50 });
  });

  it("rejects an event without a session id", async () => {
    const res = await monitor.postEvent("Stop", { cwd: "/" });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: "MISSING_SESSION" } });
  });
});
