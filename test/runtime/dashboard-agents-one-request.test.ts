// GET /api/agents on the patched tree takes lists: ?session_id=a,b answers what the per-session
// requests answer together, ?status=working,waiting what the two status requests answer together
// (the Dashboard's one request per reload). Fixture always; the real upstream with AGENT_MONITOR_UPSTREAM.
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { startMonitor } from "../../harness/monitor.ts";
import { trees } from "../support/build-once.ts";

type Agents = { agents: Array<{ id: string; session_id: string; status: string }> };
const ids = (r: Agents) => r.agents.map((a) => a.id).sort();

describe.each(trees())("GET /api/agents takes lists on the patched %s", (_label, build) => {
  it("a list of sessions or of statuses answers the union of one request each", async () => {
    const { outDir } = await build();
    const monitor = await startMonitor({ treeDir: outDir });
    try {
      const sessions = [randomUUID(), randomUUID(), randomUUID()];
      for (const [i, session_id] of sessions.entries()) {
        const data = { session_id, cwd: `/home/dev/agents-list-${i}`, transcript_path: "" };
        expect((await monitor.postEvent("SessionStart", { ...data, source: "startup" })).status).toBe(200);
        // One working (a prompt), one waiting (a turn that stopped), one left as it started.
        if (i < 2) expect((await monitor.postEvent("UserPromptSubmit", { ...data, prompt: "go" })).status).toBe(200);
        if (i === 1) expect((await monitor.postEvent("Stop", { ...data, stop_hook_active: false })).status).toBe(200);
      }
      const [a, b] = sessions;
      const one = await Promise.all([a, b].map((s) => monitor.get<Agents>(`/api/agents?session_id=${s}&limit=100`)));
      const both = await monitor.get<Agents>(`/api/agents?session_id=${a},${b}&limit=200`);
      expect(ids(both)).toEqual(one.flatMap(ids).sort());
      expect(ids(both).length).toBeGreaterThanOrEqual(2);

      const working = await monitor.get<Agents>("/api/agents?status=working&limit=20");
      const waiting = await monitor.get<Agents>("/api/agents?status=waiting&limit=20&include_transient=1");
      const list = await monitor.get<Agents>("/api/agents?status=working,waiting&limit=40&include_transient=1");
      expect(ids(list)).toEqual([...ids(working), ...ids(waiting)].sort());
      expect(new Set(list.agents.map((x) => x.status))).toEqual(new Set([...working.agents, ...waiting.agents].map((x) => x.status)));
      expect(working.agents.length + waiting.agents.length).toBeGreaterThanOrEqual(1);
    } finally {
      await monitor.stop();
      rmSync(path.dirname(monitor.dbPath), { recursive: true, force: true });
    }
  }, 180_000);
});
