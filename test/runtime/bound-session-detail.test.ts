// Runtime check of bound-session-detail on a real monitor (Node 22, real SQLite file) built by the
// test: a session with more events than one page (created through the hook path, its events written
// into the monitor's own database file) is answered with the newest 200 and the exact total; paging
// with events_before returns every event exactly once, also while new events arrive between pages;
// events_limit is capped; bad values are a 400 naming the parameter. On the real upstream the
// Workflows drill-in's tool timeline is the newest 5000.
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import type { Monitor } from "../../harness/monitor.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

if (!realUpstream) console.info(`[bound-session-detail runtime] ${SKIP_REAL}`);

const { start } = useRuntimeScratch({ teardown: "kill" });

const SID = "b0de0000-0000-4000-8000-000000000001";
const OTHER = "b0de0000-0000-4000-8000-000000000002";
const EVENTS = 5_200; // more than a page (200), than the largest page (1000), and than the drill-in's 5000

interface Row {
  id: number;
  created_at: string;
}
interface Detail {
  session: { id: string };
  events: Row[];
  events_total: number;
  events_limit: number;
  events_next_before: number | null;
}

/**
 * `n` events of `sessionId` written into the monitor's database, in one transaction; created_at in
 * steps of 10 ms, every 4th one equal to the one before (ties are ordered by id).
 */
function addEvents(dbPath: string, sessionId: string, n: number, startMs: number): void {
  const db = openDatabase(dbPath, { timeout: 10_000 });
  try {
    const ins = db.prepare("INSERT INTO events (session_id, agent_id, event_type, tool_name, summary, data, created_at) VALUES (?, NULL, 'PreToolUse', 'Bash', ?, '{}', ?)");
    db.exec("BEGIN IMMEDIATE");
    for (let i = 0; i < n; i++) ins.run(sessionId, `event ${i}`, new Date(startMs + 10 * (i - (i % 4 === 3 ? 1 : 0))).toISOString());
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

/** The session's event ids as the page orders them: newest first, ties by id. */
function idsNewestFirst(dbPath: string, sessionId: string): number[] {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT id FROM events WHERE session_id = ? ORDER BY created_at DESC, id DESC").all(sessionId) as { id: number }[]).map((r) => r.id);
  } finally {
    db.close();
  }
}

async function getRaw(m: Monitor, urlPath: string): Promise<{ status: number; json: any; bytes: number }> {
  const res = await fetch(`${m.url}${urlPath}`, { signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text), bytes: Buffer.byteLength(text) };
}

const detail = (q = "") => `/api/sessions/${SID}${q}`;

describe.each(trees())("bound-session-detail at runtime (%s)", (label, buildTree) => {
  it("a long session: the newest 200 and the exact total; events_before pages return every event exactly once, also while events arrive; the limit is capped; bad values are a 400", async () => {
    const m = await start((await buildTree()).outDir);
    for (const sid of [SID, OTHER]) expect((await m.postEvent("SessionStart", { session_id: sid, source: "startup" })).status).toBe(200);
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    addEvents(m.dbPath, SID, EVENTS, t0);
    addEvents(m.dbPath, OTHER, 300, t0);
    const all = idsNewestFirst(m.dbPath, SID);
    expect(all.length).toBeGreaterThan(EVENTS); // the hook's own SessionStart event too

    // The default answer: the newest page, in the page's order, with the total.
    const first = await getRaw(m, detail());
    expect(first.status).toBe(200);
    const page = first.json as Detail;
    expect(page.session.id).toBe(SID);
    expect(page.events.map((e) => e.id)).toEqual(all.slice(0, 200));
    expect([page.events_total, page.events_limit, page.events_next_before]).toEqual([all.length, 200, all[199]]);

    // Paging to the end with the largest page; events that arrive meanwhile are newer than the cursor.
    const seen = [...page.events.map((e) => e.id)];
    let before = page.events_next_before;
    let pages = 0;
    while (before !== null) {
      const next = (await m.get<Detail>(detail(`?events_limit=5000&events_before=${before}`)));
      expect(next.events_limit).toBe(1000); // capped
      expect(next.events.length).toBeLessThanOrEqual(1000);
      seen.push(...next.events.map((e) => e.id));
      before = next.events_next_before;
      if (++pages === 1) addEvents(m.dbPath, SID, 50, Date.now());
    }
    expect(seen).toEqual(all); // each exactly once, in order
    expect((await m.get<Detail>(detail())).events_total).toBe(all.length + 50);

    // Bad values: a 400 with upstream's error shape, one line naming the parameter.
    const otherEvent = idsNewestFirst(m.dbPath, OTHER)[0];
    const BAD: [string, string][] = [
      ["?events_limit=0", "events_limit"],
      ["?events_limit=-5", "events_limit"],
      ["?events_limit=abc", "events_limit"],
      ["?events_limit=1.5", "events_limit"],
      ["?events_limit=10&events_limit=20", "events_limit"],
      ["?events_before=", "events_before"],
      ["?events_before=x1", "events_before"],
      [`?events_before=${otherEvent}`, "events_before"],
      ["?events_before=999999999", "events_before"],
    ];
    const failures: string[] = [];
    for (const [q, name] of BAD) {
      const r = await getRaw(m, detail(q));
      const err = r.json?.error;
      if (r.status !== 400 || err?.code !== "INVALID_INPUT" || !String(err?.message).startsWith(name) || String(err.message).includes("\n")) failures.push(`${q}: ${r.status} ${JSON.stringify(r.json)}`);
    }
    expect(failures).toEqual([]);
    expect((await getRaw(m, "/api/sessions/b0de0000-0000-4000-8000-00000000ffff")).status).toBe(404);
    console.info(`[bound-session-detail runtime] ${label}: ${all.length} events, first page ${first.bytes} bytes, ${pages + 1} pages`);
  }, 120_000);

  it.runIf(label === "real upstream")("the Workflows drill-in's tool timeline is the newest 5000 of a longer session", async () => {
    const m = await start((await buildTree()).outDir);
    expect((await m.postEvent("SessionStart", { session_id: SID, source: "startup" })).status).toBe(200);
    addEvents(m.dbPath, SID, EVENTS, Date.parse("2026-01-01T00:00:00Z"));
    // the newest 5000 events, oldest first as upstream orders the drill-in; the timeline keeps the tool events
    const db = openDatabase(m.dbPath, { readonly: true, fileMustExist: true });
    const rows = db.prepare("SELECT id, tool_name FROM events WHERE session_id = ? ORDER BY created_at DESC, id DESC LIMIT 5000").all(SID) as { id: number; tool_name: string | null }[];
    db.close();
    const newest = rows.filter((r) => r.tool_name).map((r) => r.id).reverse();
    expect(newest.length).toBeGreaterThan(4990);
    const drill = await m.get<{ toolTimeline: { id: number }[] }>(`/api/workflows/session/${SID}`);
    expect(drill.toolTimeline.map((e) => e.id)).toEqual(newest);
  }, 120_000);
});
