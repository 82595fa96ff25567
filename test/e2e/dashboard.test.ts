// The dashboard page in a real browser: after 22 simulated agents (fire-and-forget hook client,
// every 4th resuming a multi-MB transcript, a companion connection on the same database) have
// finished, headless Chromium goes through the first-run screens, pages through the Sessions list,
// compares a session's event count with the database, and sees a new hook event arrive over the
// WebSocket. The fixture tree always (CI); the real upstream with AGENT_MONITOR_UPSTREAM.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import { runWorkload, type AfterPhase } from "../../harness/workload.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import {
  chromiumMissing,
  completeFirstRun,
  eventTotalShown,
  listAllSessions,
  openBrowser,
  openSessions,
  screenshot,
  waitForSessionRow,
} from "../../harness/browser.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const AGENTS = 22;
const missing = chromiumMissing();
if (missing) console.warn(`skipping the browser test: ${missing}`);
if (!realUpstream) console.warn(`browser test: ${SKIP_REAL}`);

/** Hook event rows of each session, read from the database file while the server runs. */
function eventCounts(dbPath: string): Map<string, number> {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    const rows = db.prepare("SELECT session_id AS id, COUNT(*) AS n FROM events GROUP BY session_id").all() as Array<{ id: string; n: number }>;
    return new Map(rows.map((r) => [r.id, r.n]));
  } finally {
    db.close();
  }
}

/** Wait until the database stops changing (the last fire-and-forget events are committed). */
async function settledCounts(dbPath: string): Promise<Map<string, number>> {
  let prev = "";
  for (let i = 0; i < 50; i++) {
    const counts = eventCounts(dbPath);
    const key = JSON.stringify([...counts].sort());
    if (key === prev) return counts;
    prev = key;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error("the events table kept changing for 15 s after the agents finished");
}

describe.skipIf(!!missing).each(trees())("the dashboard page of the patched %s, in Chromium", (label, buildPatched) => {
  it(
    `${AGENTS} agents finished: first run, every session listed completed, event count = database, no errors, live update over the WebSocket`,
    async () => {
      const { outDir } = await buildPatched();
      expect(existsSync(path.join(outDir, "client", "dist", "index.html")), `${outDir}/client/dist/index.html (the built client)`).toBe(true);
      let checked = false;

      const checkPage = async ({ url, dbPath, sessionIds, agents }: AfterPhase) => {
        expect(agents.every((a) => a.sessionEndId !== null && !a.aborted)).toBe(true);
        const counts = await settledCounts(dbPath);
        const browser = await openBrowser();
        try {
          const { page } = browser;
          await page.goto(url);
          await completeFirstRun(page);
          await openSessions(page);
          await expect.poll(() => page.getByText("Live", { exact: true }).first().isVisible(), { timeout: 10_000 }).toBe(true);
          // (upstream prints "22 session recorded": its plural key is the pre-v21 i18next one)
          await page.getByText(new RegExp(`^${AGENTS} sessions? recorded`)).waitFor();
          const shot = await screenshot(page, `e2e/dashboard-${label.replace(/\s+/g, "-")}`);
          console.log(`screenshot of the Sessions page (${label}): ${path.relative(repoRoot, shot)}`);

          // Every session, once, with status Completed (10 a page, Previous / Next).
          const listed = await listAllSessions(page, AGENTS);
          const byPrefix = new Map(listed.map((l) => [l.idPrefix, l]));
          expect(listed).toHaveLength(AGENTS);
          const wrong = sessionIds
            .map((id) => ({ id, row: byPrefix.get(id.slice(0, 12)) }))
            .filter(({ row }) => !row || !/\bCompleted\b/.test(row.text))
            .map(({ id, row }) => `${id}: ${row ? `row "${row.text.replace(/\s+/g, " ")}"` : "not listed"}`);
          expect(wrong).toEqual([]);

          // A session on the last page (now shown), with a multi-MB history when there is one there.
          const lastPage = listed.filter((l) => l.page === listed[listed.length - 1]!.page);
          const target = sessionIds.find((id) => id.slice(0, 12) === lastPage[0]!.idPrefix)!;
          const shown = await eventTotalShown(page, target.slice(0, 12));
          expect(shown, `events of ${target}: page vs database`).toBe(counts.get(target));

          // A hook event posted now reaches the open Sessions page without a reload.
          await openSessions(page);
          await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
          const fresh = randomUUID();
          const res = await fetch(`${url}/api/hooks/event`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ hook_type: "SessionStart", data: { session_id: fresh, cwd: "/home/dev/e2e-live", hook_event_name: "SessionStart", source: "startup" } }),
          });
          expect(res.status).toBe(200);
          await waitForSessionRow(page, fresh.slice(0, 12), 5000);
          expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);

          expect(browser.errors).toEqual([]);
          checked = true;
        } finally {
          if (!checked) {
            const shot = await screenshot(browser.page, `e2e/dashboard-${label.replace(/\s+/g, "-")}-failure`).catch(() => null);
            if (shot) console.log(`page at the failure: ${path.relative(repoRoot, shot)}; errors it logged: ${JSON.stringify(browser.errors)}`);
          }
          await browser.close();
        }
      };

      const result = await runWorkload({
        treeDir: outDir,
        agents: AGENTS,
        mode: "fire-and-forget",
        durationMs: 3000,
        thinkMs: 60,
        bigEvery: 4,
        bigBytes: 2 * 1024 * 1024,
        afterPhase: checkPage,
      });
      expect(checked).toBe(true);
      expect(result.integrity).toBe("ok");
      expect(result.phases[0]!.metrics.companionBusy).toBe(0);
    },
    300_000,
  );
});
