// Somebody watching: the dashboard's pages open in headless Chromium (one browser context each,
// past the first-run screens) for a whole server run, measured per phase on the page itself: its
// API requests by path and their latency, long tasks, page errors, freshness (probe sessions
// whose SessionStart / SessionEnd the page must show) and a screenshot at the end of the phase.
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { CDPSession, Page } from "playwright-core";
import { chromiumMissing, completeFirstRun, openBrowser, openSessions, type Browser } from "./browser.ts";
import { freshnessSamples, longTaskFigures, mainThreadFigures, requestsByPath, type FreshnessFigures, type LongTaskFigures, type MainThreadFigures, type PageRequest, type PerformanceMetrics, type Probe, type RequestFigures, type Seen } from "./page-metrics.ts";
import type { Mode } from "./protocol.ts";

export const WATCH_PAGES = ["sessions", "dashboard", "session"] as const;
export type WatchPage = (typeof WATCH_PAGES)[number];

export interface WatchedPagePhase {
  page: WatchPage;
  requests: RequestFigures & { byPath: Array<RequestFigures & { path: string }> };
  longTasks: LongTaskFigures;
  /** Where the page's main thread time went (null when the protocol could not read it). */
  mainThread: MainThreadFigures | null;
  freshness: FreshnessFigures;
  errors: string[];
  /** File name beside the report, or null (then note says why). */
  screenshot: string | null;
  note: string | null;
}

export interface WatchedPhase {
  mode: Mode;
  index: number;
  wallMs: number;
  /** Probe sessions posted during the phase (each: a SessionStart, then a SessionEnd). */
  probes: number;
  pages: WatchedPagePhase[];
}

// In the page from its first script on: long tasks, and for each probe session (by the first 8
// characters of its id, which both the session's name and its id line carry) when it comes onto the
// page, when it leaves it, and when a row of it first reads Completed (a MutationObserver, so the time
// is when the DOM changed). A plain string: functions compiled by tsx carry helpers the page lacks.
export const INIT_SCRIPT = `(() => {
  const w = window;
  w.__benchLongTasks = [];
  w.__benchWatch = [];
  w.__benchSeen = [];
  try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) w.__benchLongTasks.push([performance.timeOrigin + e.startTime, e.duration]); })
      .observe({ type: "longtask", buffered: true });
  } catch {}
  const present = {};
  const check = () => {
    if (!w.__benchWatch.length || !document.body) return;
    const now = Date.now();
    const text = document.body.textContent || "";
    let rows = null;
    w.__benchWatch = w.__benchWatch.filter((p) => {
      const here = text.includes(p);
      if (here !== !!present[p]) w.__benchSeen.push({ prefix: p, state: here ? "shown" : "gone", at: now });
      present[p] = here;
      if (!here) return true;
      rows = rows || document.querySelectorAll("tr, [role=row], li, a");
      for (const r of rows) {
        const t = r.textContent || "";
        // textContent runs cells together ("…ef0Completed"): no word boundaries.
        if (t.length < 2000 && t.includes(p) && t.includes("Completed")) {
          w.__benchSeen.push({ prefix: p, state: "completed", at: now });
          return false;
        }
      }
      return true;
    });
  };
  w.__benchCheck = check;
  new MutationObserver(check).observe(document, { childList: true, subtree: true, characterData: true });
})();`;

interface OpenPage {
  name: WatchPage;
  browser: Browser;
  requests: PageRequest[];
  errorsBefore: number;
}

async function navigate(page: Page, name: WatchPage, url: string, sessionsFilter?: string): Promise<void> {
  await page.goto(url);
  await completeFirstRun(page);
  if (name === "dashboard") return;
  await openSessions(page);
  await page.getByText(/\d+ sessions? recorded/).waitFor({ timeout: 30_000 });
  if (name === "sessions" && sessionsFilter) {
    // The page's own status filter (a toggle button per status), as a person narrows the list.
    const button = page.getByRole("button", { name: sessionsFilter, exact: true });
    await button.click();
    await page.locator('button[aria-pressed="true"]', { hasText: sessionsFilter }).first().waitFor({ timeout: 10_000 });
  }
  if (name === "session") {
    // The newest session's detail page.
    await page.getByRole("row").filter({ hasText: /[0-9a-f]{8}-[0-9a-f]{3}/ }).first().click();
    await page.getByText(/Timeline/).first().waitFor({ timeout: 30_000 });
  }
}

async function postHook(url: string, hookType: string, data: Record<string, unknown>): Promise<number | null> {
  try {
    const res = await fetch(`${url}/api/hooks/event`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ hook_type: hookType, data: { ...data, hook_event_name: hookType } }),
      signal: AbortSignal.timeout(15_000),
    });
    await res.arrayBuffer();
    return res.status === 200 ? Date.now() : null;
  } catch {
    return null;
  }
}

export class PageWatch {
  private open: OpenPage[] = [];
  private phaseFrom = 0;
  private probes: Probe[] = [];
  private probing: Promise<void> | null = null;
  private stopProbing = false;
  private url = "";
  private profiling: Array<Promise<CDPSession | null>> = [];
  private metricsAtStart: Array<Promise<{ cdp: CDPSession; metrics: PerformanceMetrics } | null>> = [];
  readonly phases: WatchedPhase[] = [];
  /** The last measured phase's probe sessions and what each page recorded of them (for a test's own checks). */
  lastProbes: { probes: Probe[]; seen: Partial<Record<WatchPage, Seen[]>> } = { probes: [], seen: {} };
  /** Why the pages could not be opened (no Chromium, a first-run screen that did not come). */
  failure: string | null = null;

  constructor(
    private readonly pages: readonly WatchPage[],
    private readonly opts: {
      shotBase: string;
      probeEveryMs?: number;
      probeWaitMs?: number;
      /** A status filter to select on the Sessions page (e.g. "Completed": an ended probe comes onto it, whatever the load's activity). */
      sessionsFilter?: string;
      /** Record each page's CPU profile (Chrome DevTools Protocol) per phase into <shotBase>-<tag>-<page>.cpuprofile. */
      profile?: boolean;
      log?: (l: string) => void;
    },
  ) {}

  /** Open every page on the server at url (call once, before the first phase). */
  async start(url: string): Promise<void> {
    this.url = url;
    const missing = chromiumMissing();
    if (missing) {
      this.failure = missing;
      return;
    }
    for (const name of this.pages) {
      const browser = await openBrowser();
      const entry: OpenPage = { name, browser, requests: [], errorsBefore: 0 };
      this.open.push(entry);
      const { page } = browser;
      page.setDefaultTimeout(30_000);
      await page.addInitScript({ content: INIT_SCRIPT });
      page.on("requestfinished", (req) => {
        const t = req.timing();
        // responseEnd is ms after startTime (epoch ms), -1 when unknown.
        entry.requests.push({ url: req.url(), at: t.startTime, ms: t.responseEnd >= 0 ? t.responseEnd : Number.NaN, failed: false });
      });
      page.on("requestfailed", (req) => entry.requests.push({ url: req.url(), at: req.timing().startTime || Date.now(), ms: Number.NaN, failed: true }));
      try {
        await navigate(page, name, url, this.opts.sessionsFilter);
      } catch (err) {
        this.failure = `the ${name} page did not open: ${(err as Error).message.split("\n")[0]}`;
        this.opts.log?.(`    ${this.failure}`);
        return;
      }
    }
  }

  phaseStart(): void {
    this.phaseFrom = Date.now();
    for (const o of this.open) {
      o.requests = o.requests.filter((r) => r.at >= this.phaseFrom);
      o.errorsBefore = o.browser.errors.length;
    }
    this.probes = [];
    this.stopProbing = false;
    if (this.opts.profile) this.profiling = this.open.map((o) => startProfile(o.browser.page));
    this.metricsAtStart = this.open.map((o) => readMetrics(o.browser.page));
    if (this.open.length && !this.failure) this.probing = this.probeLoop();
  }

  /** Probe sessions, one after the other: SessionStart, wait, SessionEnd, wait; the pages record when they show each. */
  private async probeLoop(): Promise<void> {
    const every = this.opts.probeEveryMs ?? 1500;
    const wait = this.opts.probeWaitMs ?? 10_000;
    while (!this.stopProbing) {
      const id = randomUUID();
      const prefix = id.slice(0, 8);
      await Promise.all(this.open.map((o) => o.browser.page.evaluate((p) => (window as unknown as { __benchWatch: string[] }).__benchWatch.push(p), prefix).catch(() => {})));
      const data = { session_id: id, cwd: `/home/dev/bench-probe-${prefix}`, transcript_path: "" };
      const startedAt = await postHook(this.url, "SessionStart", { ...data, source: "startup" });
      if (startedAt === null) continue;
      const probe: Probe = { prefix, startedAt, endedAt: null };
      this.probes.push(probe);
      // A wait the phase's end cut short is no sample (nor a miss). Under load a new session can
      // leave the first page (sorted by last activity) before a reload shows it: the End comes
      // after 2 s at most and puts it back on top.
      if ((await this.waitSeen(prefix, ["shown"], 2000)) === "stopped") {
        this.probes.pop();
        break;
      }
      if (this.stopProbing) break;
      probe.endedAt = await postHook(this.url, "SessionEnd", { ...data, reason: "exit" });
      if ((await this.waitSeen(prefix, ["completed", "gone"], wait, probe.endedAt ?? 0)) === "stopped") {
        probe.endedAt = null;
        break;
      }
      await new Promise((r) => setTimeout(r, every));
    }
  }

  private async waitSeen(prefix: string, states: Array<Seen["state"]>, ms: number, after = 0): Promise<"seen" | "timeout" | "stopped"> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (Date.now() >= deadline) return "timeout";
      if (this.stopProbing) return "stopped";
      const seen = await Promise.all(this.open.map((o) => this.seen(o.browser.page)));
      // Enough once the Sessions page (or, without it, any page) shows it.
      const sessions = this.open.findIndex((o) => o.name === "sessions");
      const relevant = sessions >= 0 ? [seen[sessions]!] : seen;
      if (relevant.some((s) => s.some((x) => x.prefix === prefix && x.at >= after && states.includes(x.state)))) return "seen";
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async seen(page: Page): Promise<Seen[]> {
    return page.evaluate(() => (window as unknown as { __benchSeen: Seen[] }).__benchSeen).catch(() => []);
  }

  /** An open page by name (null when it is not open). */
  page(name: WatchPage): Page | null {
    return this.open.find((o) => o.name === name)?.browser.page ?? null;
  }

  /** Measure the phase that just ended and screenshot each page. */
  async phaseEnd(mode: Mode, index: number, shotTag: string): Promise<WatchedPhase> {
    const to = Date.now();
    // The main thread's readings at the phase's end, before the probes and profiles are wound down.
    const mainThread = this.metricsAtStart.map((p) =>
      p.then(async (start) => {
        const end = start && (await getMetrics(start.cdp));
        await start?.cdp.detach().catch(() => {});
        return start && end ? mainThreadFigures(start.metrics, end, to - this.phaseFrom) : null;
      }),
    );
    this.metricsAtStart = [];
    this.stopProbing = true;
    await this.probing;
    this.probing = null;
    const pages: WatchedPagePhase[] = [];
    this.lastProbes = { probes: [...this.probes], seen: {} };
    const sessions = await Promise.all(this.profiling);
    this.profiling = [];
    const threads = await Promise.all(mainThread);
    for (const [i, o] of this.open.entries()) {
      const { page } = o.browser;
      const cdp = sessions[i];
      // Like its start, a profile that cannot be taken (a crashed page) costs only the profile, not the phase's figures.
      if (cdp) {
        await cdp
          .send("Profiler.stop")
          .then(({ profile }) => writeFileSync(`${this.opts.shotBase}-${shotTag}-${o.name}.cpuprofile`, JSON.stringify(profile)))
          .catch((err: Error) => this.opts.log?.(`    ${o.name}: no CPU profile (${err.message.split("\n")[0]})`));
        await cdp.detach().catch(() => {});
      }
      const tasks = await page.evaluate(() => (window as unknown as { __benchLongTasks: Array<[number, number]> }).__benchLongTasks).catch(() => []);
      const seen = await this.seen(page);
      this.lastProbes.seen[o.name] = seen;
      const file = `${this.opts.shotBase}-${shotTag}-${o.name}.png`;
      let screenshot: string | null = null;
      let note: string | null = null;
      try {
        await page.screenshot({ path: file, fullPage: true, timeout: 30_000 });
        screenshot = path.basename(file);
      } catch (err) {
        note = `screenshot failed: ${(err as Error).message.split("\n")[0]}`;
      }
      pages.push({
        page: o.name,
        requests: requestsByPath(o.requests, this.phaseFrom, to),
        longTasks: longTaskFigures(tasks, this.phaseFrom, to),
        mainThread: threads[i] ?? null,
        // A page that showed none of the probes (a session's detail, a dashboard without them) has no freshness, rather than all misses.
        freshness:
          o.name === "sessions" || seen.some((x) => this.probes.some((p) => p.prefix === x.prefix)) ? freshnessSamples(this.probes, seen) : freshnessSamples([], []),
        errors: o.browser.errors.slice(o.errorsBefore),
        screenshot,
        note,
      });
    }
    const phase: WatchedPhase = { mode, index, wallMs: to - this.phaseFrom, probes: this.probes.length, pages };
    this.phases.push(phase);
    return phase;
  }

  async close(): Promise<void> {
    this.stopProbing = true;
    await this.probing;
    for (const o of this.open) await o.browser.close().catch(() => {});
    this.open = [];
  }
}

/** The page's cumulative Performance metrics through a CDP session of its own (null when the protocol refuses: the phase goes on without them). */
async function readMetrics(page: Page): Promise<{ cdp: CDPSession; metrics: PerformanceMetrics } | null> {
  try {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");
    const metrics = await getMetrics(cdp);
    return metrics ? { cdp, metrics } : null;
  } catch {
    return null;
  }
}

async function getMetrics(cdp: CDPSession): Promise<PerformanceMetrics | null> {
  try {
    const { metrics } = await cdp.send("Performance.getMetrics");
    return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
  } catch {
    return null;
  }
}

/** Starts the page's JS sampling profiler (null when the protocol refuses: the phase goes on unprofiled). */
async function startProfile(page: Page): Promise<CDPSession | null> {
  try {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: 1000 });
    await cdp.send("Profiler.start");
    return cdp;
  } catch {
    return null;
  }
}
