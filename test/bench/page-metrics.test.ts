// The watched pages' figures (harness/page-metrics.ts, harness/watch.ts): requests by path, freshness
// samples from what the page's observer saw (the observer itself runs in Chromium), long tasks,
// and the --watch / --history flags.
import { describe, expect, it } from "vitest";
import { parseBenchArgs } from "../../bench/cli-args.ts";
import { UserError } from "../../scripts/lib/errors.ts";
import { apiPath, freshnessSamples, longTaskFigures, mainThreadFigures, requestsByPath, type PageRequest, type Seen } from "../../harness/page-metrics.ts";
import { INIT_SCRIPT } from "../../harness/watch.ts";
import { chromiumMissing, openBrowser } from "../../harness/browser.ts";

describe("the pages' API requests by path", () => {
  it("collapses ids, ignores non-API requests and those outside the window, and gives each path its own percentiles", () => {
    expect(apiPath("http://127.0.0.1:4820/api/sessions/0b7c6a7e-1111-4222-8333-944445555666/stats?x=1")).toBe("/api/sessions/:id/stats");
    expect(apiPath("http://127.0.0.1:4820/api/events?limit=15")).toBe("/api/events");
    expect(apiPath("http://127.0.0.1:4820/assets/index.js")).toBeNull();
    const reqs: PageRequest[] = [
      ...Array.from({ length: 100 }, (_, i) => ({ url: `http://h/api/sessions?limit=10&i=${i}`, at: 1000 + i * 10, ms: i + 1, failed: false })),
      { url: "http://h/api/stats", at: 1500, ms: 500, failed: false },
      { url: "http://h/api/stats", at: 1600, ms: Number.NaN, failed: true },
      { url: "http://h/api/stats", at: 5000, ms: 9999, failed: false }, // after the window
      { url: "http://h/index.html", at: 1200, ms: 3, failed: false },
    ];
    const r = requestsByPath(reqs, 1000, 3000);
    expect(r.count).toBe(102);
    expect(r.perSec).toBeCloseTo(51, 5);
    expect(r.failed).toBe(1);
    expect(r.byPath.map((b) => b.path)).toEqual(["/api/sessions", "/api/stats"]);
    const sessions = r.byPath[0]!;
    expect([sessions.count, sessions.p50, sessions.p99]).toEqual([100, 50, 99]);
    const stats = r.byPath[1]!;
    expect([stats.count, stats.failed, stats.p50, stats.p99]).toEqual([2, 1, 500, 500]);
  });
});

describe("freshness samples", () => {
  it("the end: first Completed row, else leaving the page after the End's 200; a new row against the Start's 200; no end shown is a miss", () => {
    const probes = [
      { prefix: "aaaaaaaa", startedAt: 1000, endedAt: 3000 },
      { prefix: "bbbbbbbb", startedAt: 5000, endedAt: 6000 },
      { prefix: "cccccccc", startedAt: 8000, endedAt: 9000 },
      { prefix: "dddddddd", startedAt: 10000, endedAt: null },
    ];
    const seen: Seen[] = [
      { prefix: "aaaaaaaa", state: "shown", at: 1300 },
      { prefix: "aaaaaaaa", state: "gone", at: 2000 }, // pushed off the page before the End: not its end
      { prefix: "aaaaaaaa", state: "shown", at: 3500 },
      { prefix: "aaaaaaaa", state: "completed", at: 3900 },
      { prefix: "bbbbbbbb", state: "shown", at: 5100 },
      { prefix: "bbbbbbbb", state: "gone", at: 6700 }, // a page of active sessions: the end is leaving it
      { prefix: "cccccccc", state: "shown", at: 8200 }, // never ends on the page: a miss
      { prefix: "zzzzzzzz", state: "completed", at: 1 },
    ];
    const f = freshnessSamples(probes, seen);
    expect(f.samples).toEqual([900, 700]);
    expect(f.missed).toBe(1);
    expect([f.p50, f.p99]).toEqual([700, 900]);
    expect(f.appeared.samples).toEqual([300, 100, 200]);
  });

  it.skipIf(!!chromiumMissing())("the page's observer records when a probe's row appears, leaves and reads Completed", async () => {
    const browser = await openBrowser();
    try {
      const { page } = browser;
      await page.addInitScript({ content: INIT_SCRIPT });
      await page.goto("data:text/html,<table><tbody id=b><tr><td>other</td><td>Active</td></tr></tbody></table>");
      await page.evaluate(() => (window as unknown as { __benchWatch: string[] }).__benchWatch.push("0123abcd"));
      const startedAt = Date.now();
      const body = (html: string) => page.evaluate((h) => void (document.getElementById("b")!.innerHTML = h), html);
      await body("<tr><td>Session 0123abcd</td><td>Active</td></tr><tr><td>other</td><td>Active</td></tr>");
      await body("<tr><td>other</td><td>Active</td></tr>");
      await page.waitForTimeout(100);
      const endedAt = Date.now();
      await body("<tr><td>Session 0123abcd</td><td>Completed</td></tr>");
      const seen = await page.evaluate(() => (window as unknown as { __benchSeen: Seen[] }).__benchSeen);
      expect(seen.map((s) => s.state)).toEqual(["shown", "gone", "shown", "completed"]);
      const f = freshnessSamples([{ prefix: "0123abcd", startedAt, endedAt }], seen);
      expect(f.missed).toBe(0);
      expect(f.samples).toHaveLength(1);
      expect(f.samples[0]!).toBeLessThan(1000);
      expect(f.appeared.samples).toHaveLength(1);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe("long tasks", () => {
  it("sums the tasks that started in the window, as % of it, and their Total Blocking Time", () => {
    const f = longTaskFigures([[900, 500], [1000, 60], [1500, 140], [2000, 80]], 1000, 2000);
    expect(f).toEqual({ count: 2, totalMs: 200, percent: 20, tbtMs: 100 });
  });
});

describe("main thread", () => {
  it("turns two cumulative Performance.getMetrics readings (seconds) into % of the phase, the rest as other", () => {
    const before = { TaskDuration: 10, ScriptDuration: 4, LayoutDuration: 1, RecalcStyleDuration: 0.5 };
    const after = { TaskDuration: 14, ScriptDuration: 5, LayoutDuration: 1.5, RecalcStyleDuration: 1 };
    expect(mainThreadFigures(before, after, 10_000)).toEqual({ busy: 40, script: 10, layout: 5, style: 5, other: 20 });
  });

  it("takes the window from the readings' own Timestamp when they carry one", () => {
    const before = { Timestamp: 100, TaskDuration: 10, ScriptDuration: 4, LayoutDuration: 1, RecalcStyleDuration: 0.5 };
    const after = { Timestamp: 108, TaskDuration: 14, ScriptDuration: 5, LayoutDuration: 1.5, RecalcStyleDuration: 1 };
    expect(mainThreadFigures(before, after, 10_000)).toEqual({ busy: 50, script: 12.5, layout: 6.25, style: 6.25, other: 25 });
  });
});

describe("--watch and --history", () => {
  it("default: sessions + dashboard watched at N=22 and 64 on the large history, beside today's runs; --quick watches nothing", () => {
    const o = parseBenchArgs([]);
    expect([o.watch, o.watchAgents, o.history, o.baseRuns]).toEqual([["sessions", "dashboard"], [22, 64], "large", true]);
    const q = parseBenchArgs(["--quick"]);
    expect([q.watch, q.watchAgents, q.history]).toEqual([[], [], "none"]);
  });

  it("an explicit --watch watches every N (unwatched beside it, no empty-database runs); --history and --watch none", () => {
    const o = parseBenchArgs(["--agents", "4", "--watch", "sessions,session", "--history", "small"]);
    expect([o.watch, o.watchAgents, o.history, o.baseRuns]).toEqual([["sessions", "session"], [4], "small", false]);
    const n = parseBenchArgs(["--watch", "none", "--history", "small"]);
    expect([n.watch, n.history, n.baseRuns]).toEqual([[], "small", true]);
    for (const argv of [["--watch", "settings"], ["--history", "huge"]]) expect(() => parseBenchArgs(argv)).toThrow(UserError);
  });
});
