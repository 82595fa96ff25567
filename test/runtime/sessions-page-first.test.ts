// sessions-page-first at runtime: on copies of one history database (harness/history.ts, `small`), the patched
// and the unpatched monitor answer GET /api/sessions alike, for the pages and filters the Sessions page and the
// Dashboard send (several pages, both orders, a status and a search filter): the same total, the same sort key
// at each position, each session the same bytes. Only sessions whose sort key ties may trade places: SQL leaves
// the order of ties to the plan (upstream's own order among them changes with its plan, indexes included).
import { copyFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { historyDatabase } from "../../harness/history.ts";
import type { BuildOutcome } from "../../scripts/pipeline/build.ts";
import { buildFixture, buildFixtureUnpatched, buildReal, buildRealUnpatched, realUpstream, SKIP_REAL } from "../support/build-once.ts";
import { useRuntimeScratch } from "../support/runtime.ts";
import { samePage, type Row } from "../support/same-page.ts";

const scratch = useRuntimeScratch();

const PAGE = "limit=10&sort_by=time&include_transient=true&include_task_progress=true&providers=claude";
const REQUESTS = [
  "/api/sessions?limit=10",
  `/api/sessions?${PAGE}&offset=0&sort_desc=true`,
  `/api/sessions?${PAGE}&offset=10&sort_desc=true`,
  `/api/sessions?${PAGE}&offset=120&sort_desc=true`,
  `/api/sessions?${PAGE}&offset=0&sort_desc=false`,
  `/api/sessions?${PAGE}&offset=0&status=completed`,
  `/api/sessions?${PAGE}&offset=0&q=a`,
  "/api/sessions?limit=10&sort_by=duration&status=completed&offset=20",
  "/api/sessions?limit=10&offset=100000",
];

// The fixture orders by last activity whatever sort_by says; upstream honours sort_by=duration.
const duration = (r: Row) => (r.ended_at ? String(Date.parse(String(r.ended_at)) - Date.parse(String(r.started_at))) : `open ${String(r.started_at)}`);

const variants: [string, () => Promise<BuildOutcome>, () => Promise<BuildOutcome>, boolean][] = [
  ["fixture", buildFixture, buildFixtureUnpatched, false],
  ["real upstream", () => buildReal(), () => buildRealUnpatched(), !realUpstream],
];

describe.each(variants)("GET /api/sessions, page ids first (%s): the same answer as unpatched", (label, patched, unpatched, skip) => {
  it.skipIf(skip)(skip ? SKIP_REAL : "on copies of one history, for every page and filter the pages send", async () => {
    const [{ outDir }, { outDir: plainDir }] = await Promise.all([patched(), unpatched()]);
    const h = await historyDatabase({ treeDir: outDir, size: "small" });
    const dir = scratch.tempDir("sessions-page-first-");
    const [a, b] = ["patched.db", "unpatched.db"].map((n) => path.join(dir, n));
    copyFileSync(h.dbPath, a);
    copyFileSync(h.dbPath, b);
    const [mine, theirs] = await Promise.all([scratch.start(outDir, { dbPath: a }), scratch.start(plainDir, { dbPath: b })]);
    let nonEmpty = 0;
    for (const url of REQUESTS) {
      const [x, y] = await Promise.all([fetch(`${mine.url}${url}`), fetch(`${theirs.url}${url}`)]);
      expect([x.status, y.status], url).toEqual([200, 200]);
      const [px, py] = [(await x.json()) as Record<string, unknown>, (await y.json()) as Record<string, unknown>];
      expect(samePage(px, py, "sessions", url.includes("sort_by=duration") && label !== "fixture" ? duration : (r) => String(r.last_activity)), url).toEqual([]);
      if ((px.sessions as Row[]).length > 0) nonEmpty++;
    }
    // The comparison is about real pages, not empty ones (the last request is past the end on purpose).
    expect(nonEmpty).toBeGreaterThanOrEqual(REQUESTS.length - 2);
  }, 600_000);
});
