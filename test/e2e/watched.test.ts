// Somebody watching during the load: the Sessions and Dashboard pages stay open in Chromium while 22
// simulated agents (fire-and-forget hook client, every 4th resuming a multi-MB transcript, the
// companion connection running) work, and probe sessions start and end one after the other. Asserts
// what issue #13 asks of the patched pages: no page error, at most 2 API requests a second per page
// over the load, and a probe whose SessionEnd was answered 200 reads Completed on the open Sessions
// page (its Completed filter) within 3 s, without a reload (probes ended once the agents' own
// sessions began to end are left out). The fixture tree always (CI); the real upstream with
// AGENT_MONITOR_UPSTREAM.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { chromiumMissing, testOutputDir } from "../../harness/browser.ts";
import { openDatabase } from "../../harness/sqlite.ts";
import { PageWatch, type WatchedPhase } from "../../harness/watch.ts";
import { runWorkload } from "../../harness/workload.ts";
import { trees } from "../support/build-once.ts";

const AGENTS = 22;
const MAX_REQUESTS_PER_SECOND = 2;
const COMPLETED_WITHIN_MS = 3000;
const missing = chromiumMissing();
if (missing) console.warn(`skipping the watched browser test: ${missing}`);

describe.skipIf(!!missing).each(trees())("the open pages of the patched %s during a 22-agent load, in Chromium", (label, buildPatched) => {
  it(
    `no page error, ≤ ${MAX_REQUESTS_PER_SECOND} API requests/s per page, a SessionEnd reads Completed on the open Sessions page within ${COMPLETED_WITHIN_MS / 1000} s`,
    async () => {
      const { outDir } = await buildPatched();
      const tag = label.replace(/\s+/g, "-");
      // Probes one after the other. The Sessions page lists Completed sessions (its own filter): sorted by
      // last activity, an ended probe leaves a page of all sessions within ms while 22 agents work.
      const watch = new PageWatch(["sessions", "dashboard"], {
        shotBase: path.join(testOutputDir, "e2e", `watched-${tag}`),
        probeEveryMs: 300,
        probeWaitMs: COMPLETED_WITHIN_MS,
        sessionsFilter: "Completed",
      });
      let phase: WatchedPhase | null = null;
      const reloaded: Record<string, boolean> = {};
      // When the load's own sessions began to end: from then on more than a page of newer Completed
      // sessions can push a probe off the first page before it shows (a burst, not staleness).
      let agentsEndFrom = Number.POSITIVE_INFINITY;
      try {
        const result = await runWorkload({
          treeDir: outDir,
          agents: AGENTS,
          mode: "fire-and-forget",
          durationMs: 8000,
          thinkMs: 100,
          bigEvery: 4,
          bigBytes: 2 * 1024 * 1024,
          afterPhase: async ({ dbPath, sessionIds }) => {
            const db = openDatabase(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 });
            try {
              const row = db.prepare(`SELECT MIN(ended_at) AS t FROM sessions WHERE id IN (${sessionIds.map(() => "?").join(",")})`).get(...sessionIds) as { t: string | null };
              if (row.t) agentsEndFrom = Date.parse(row.t);
            } finally {
              db.close();
            }
          },
          observer: {
            serverReady: async ({ url }) => {
              await watch.start(url);
              if (watch.failure) throw new Error(`the pages did not open: ${watch.failure}`);
              // Gone after a reload: the pages must update themselves.
              for (const name of ["sessions", "dashboard"] as const) await watch.page(name)!.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
            },
            phaseStart: async () => watch.phaseStart(),
            phaseEnd: async ({ mode, index }) => {
              phase = await watch.phaseEnd(mode, index, "load");
              for (const name of ["sessions", "dashboard"] as const) {
                reloaded[name] = !(await watch.page(name)!.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload === true));
              }
            },
          },
        });
        expect(result.integrity).toBe("ok");
      } finally {
        await watch.close();
      }
      const watched = phase as WatchedPhase | null;
      expect(watched, "the load phase was measured").not.toBeNull();
      const pages = watched!.pages;
      for (const p of pages) {
        console.log(
          `${label} ${p.page}: ${p.requests.count} API requests in ${(watched!.wallMs / 1000).toFixed(1)} s = ${p.requests.perSec.toFixed(2)}/s ` +
            `(${p.requests.byPath.map((b) => `${b.path} ${b.count}`).join(", ")}); errors ${p.errors.length}; screenshot ${p.screenshot ?? p.note}`,
        );
      }
      expect(reloaded).toEqual({ sessions: false, dashboard: false });
      expect(Object.fromEntries(pages.map((p) => [p.page, p.errors]))).toEqual({ sessions: [], dashboard: [] });
      for (const p of pages) expect(p.requests.perSec, `${p.page}: API requests per second over the load`).toBeLessThanOrEqual(MAX_REQUESTS_PER_SECOND);

      // Every probe whose SessionEnd was answered: a row of it read Completed on the open Sessions page within the bound.
      const { probes, seen } = watch.lastProbes;
      const ended = probes.filter((p) => p.endedAt !== null && p.endedAt < agentsEndFrom);
      expect(ended.length, "probe sessions ended during the load").toBeGreaterThanOrEqual(2);
      const late = ended
        .map((p) => {
          const completed = (seen.sessions ?? []).find((s) => s.prefix === p.prefix && s.state === "completed");
          return { probe: p.prefix, ms: completed ? Math.max(0, completed.at - p.endedAt!) : null };
        })
        .filter((x) => x.ms === null || x.ms > COMPLETED_WITHIN_MS);
      console.log(`${label} sessions: ${ended.length} probe sessions ended before the agents' own (of ${probes.length}), ${ended.length - late.length} read Completed within ${COMPLETED_WITHIN_MS} ms`);
      expect(late).toEqual([]);
    },
    600_000,
  );
});
