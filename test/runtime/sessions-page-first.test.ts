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

type Row = Record<string, unknown> & { id: string };
type Page = { sessions: Row[] } & Record<string, unknown>;
// The fixture orders by last activity whatever sort_by says; upstream honours sort_by=duration.
const duration = (r: Row) => (r.ended_at ? String(Date.parse(String(r.ended_at)) - Date.parse(String(r.started_at))) : `open ${String(r.started_at)}`);

/** Where two answers differ beyond the order of tied rows: other fields, sort keys by position, rows by id, untied places. */
function samePage(mine: Page, theirs: Page, key: (r: Row) => string): string[] {
  const out: string[] = [];
  const { sessions: a, ...restA } = mine;
  const { sessions: b, ...restB } = theirs;
  if (JSON.stringify(restA) !== JSON.stringify(restB)) out.push(`fields ${JSON.stringify(restA)} vs ${JSON.stringify(restB)}`);
  if (JSON.stringify(a.map(key)) !== JSON.stringify(b.map(key))) return [...out, `sort keys ${JSON.stringify(a.map(key))} vs ${JSON.stringify(b.map(key))}`];
  const theirsById = new Map(b.map((r) => [r.id, JSON.stringify(r)]));
  const keys = a.map(key);
  a.forEach((r, i) => {
    if (theirsById.has(r.id) && theirsById.get(r.id) !== JSON.stringify(r)) out.push(`session ${r.id} differs`);
    // A row of a key no other row of the page has, and not at an edge (a tie may continue on the next page), must stay in place.
    const tied = keys.filter((k) => k === keys[i]).length > 1 || i === 0 || i === a.length - 1;
    if (r.id !== b[i].id && !tied) out.push(`position ${i}: ${r.id} vs ${b[i].id} (untied key ${keys[i]})`);
  });
  return out;
}

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
      const [px, py] = [(await x.json()) as Page, (await y.json()) as Page];
      expect(samePage(px, py, url.includes("sort_by=duration") && label !== "fixture" ? duration : (r) => String(r.last_activity)), url).toEqual([]);
      if (px.sessions.length > 0) nonEmpty++;
    }
    // The comparison is about real pages, not empty ones (the last request is past the end on purpose).
    expect(nonEmpty).toBeGreaterThanOrEqual(REQUESTS.length - 2);
  }, 600_000);
});
