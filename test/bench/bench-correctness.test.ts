// The bench workload as a correctness check of the patched tree: 32 agents, blocking hook
// client, ~10 events each, a companion connection on the same database. Only what does not
// depend on speed is asserted (no timing figures).
import { describe, expect, it } from "vitest";
import { runWorkload } from "../../harness/workload.ts";
import { trees } from "../support/build-once.ts";

const AGENTS = 32;
const EVENTS_PER_AGENT = 10;

describe.each(trees())("bench workload on the patched %s", (_label, buildPatched) => {
  it(
    `${AGENTS} agents, blocking: nothing acknowledged is lost, DB intact, no SQLITE_BUSY next door, API counts right`,
    async () => {
      const { outDir } = await buildPatched();
      const result = await runWorkload({
        treeDir: outDir,
        agents: AGENTS,
        mode: "blocking",
        eventsPerAgent: EVENTS_PER_AGENT,
        durationMs: 60_000, // bounded by the event count, not by time
        thinkMs: 20,
        bigEvery: 8,
        bigBytes: 2 * 1024 * 1024,
        apiEventCounts: true,
      });
      const [phase] = result.phases;
      expect(phase).toBeDefined();
      const { events, agents, metrics, api } = phase!;

      // The workload really ran: every agent opened and closed its session.
      expect(agents).toHaveLength(AGENTS);
      expect(agents.every((a) => a.sessionEndId !== null && !a.aborted)).toBe(true);
      const acked = events.filter((e) => e.status === 200);
      expect(acked.length).toBeGreaterThan(AGENTS * 5);

      // Every event answered 200 is in the events table.
      // Independent checks: report every one that fails, not just the first.
      expect.soft(phase!.missingAckedIds, "acknowledged 200 but not in the events table").toEqual([]);

      expect.soft(result.integrity).toBe("ok");

      // The second connection (BEGIN IMMEDIATE read-then-write every 20 ms, busy_timeout 1000 ms) never got SQLITE_BUSY.
      expect(metrics.companionTransactions).toBeGreaterThan(0);
      expect.soft(metrics.companionBusy, `companion errors: ${JSON.stringify(metrics.companionBusyCodes)}`).toBe(0);

      // GET /api/sessions lists every session, each with as many hook events as were acknowledged.
      const ackedPerSession = new Map<string, number>();
      for (const e of acked) ackedPerSession.set(e.sessionId, (ackedPerSession.get(e.sessionId) ?? 0) + 1);
      const wrong: string[] = [];
      for (const a of agents) {
        const view = api.get(a.sessionId);
        if (!view?.listed) wrong.push(`${a.sessionId}: not listed`);
        else if (view.hookEvents !== (ackedPerSession.get(a.sessionId) ?? 0)) {
          wrong.push(`${a.sessionId}: API ${view.hookEvents} hook events, acknowledged ${ackedPerSession.get(a.sessionId) ?? 0}`);
        }
      }
      expect.soft(wrong).toEqual([]);
    },
    240_000,
  );
});
