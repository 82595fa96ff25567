// Comparison tables (terminal + Markdown), the JSON results and the Markdown report with its chart.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { BenchOptions } from "./cli-args.ts";
import type { PhaseMetrics } from "../harness/metrics.ts";
import type { Mode } from "../harness/protocol.ts";
import { spoolRows, type SpoolBenchResult } from "./spool.ts";
import { renderChart, type ChartRow } from "./svg.ts";
import { screenshotsMarkdown, type Screenshot } from "./screenshot.ts";
import type { BenchSource, BuiltTree, TreeKind } from "./trees.ts";
import type { HistorySize } from "../harness/history.ts";
import type { CommitFigures, QuietTiming } from "./observe.ts";
import type { WatchedPagePhase, WatchedPhase, WatchPage } from "../harness/watch.ts";
import type { MainThreadFigures } from "../harness/page-metrics.ts";

export interface RunRecord {
  tree: TreeKind;
  agents: number;
  integrity: string;
  serverLifetimeMs: number;
  watchdogTicks: number;
  writeQueueRoute: boolean;
  phases: PhaseMetrics[];
  serverErrors: Array<{ message: string; count: number }>;
  /** 1-minute load average of the machine when the run started and ended (other load skews figures). */
  loadAvg: [number, number];
  /** Set when the run failed; the other fields are then empty. */
  error?: string;
  /** The history the server started on ("none": an empty database; absent in older reports). */
  history?: "none" | HistorySize;
  /** Pages open during every phase (empty: nobody watching). */
  watch?: WatchPage[];
  historyInfo?: { sessions: number; events: number; bytes: number; how: string };
  /** The list endpoints on the history with no load, before anything else ran. */
  quiet?: QuietTiming[];
  /** Per phase, what the open pages measured. */
  watched?: WatchedPhase[];
  /** Fire-and-forget phases: hook send stamp → row readable by another connection. */
  commit?: Array<{ mode: Mode } & CommitFigures>;
}

/** Runs of the same kind (history, pages open) compare with each other: "none|" is today's. */
export function variantOf(run: Pick<RunRecord, "history" | "watch">): string {
  return `${run.history ?? "none"}|${(run.watch ?? []).join(",")}`;
}

export function variantLabel(variant: string): string {
  const [history, watch] = variant.split("|");
  return `${history === "none" ? "empty database" : `${history} history`}, ${watch ? `watched (${watch.replace(/,/g, " + ")})` : "nobody watching"}`;
}

/** The variants of a report's runs, in run order. */
export function variants(report: Pick<BenchReport, "runs">): string[] {
  return [...new Set(report.runs.map(variantOf))];
}

const commitOf = (run: RunRecord, mode: Mode) => run.commit?.find((c) => c.mode === mode) ?? null;

export interface BenchReport {
  version: 1;
  startedAt: string;
  finishedAt: string;
  source: BenchSource;
  trees: Partial<Record<TreeKind, BuiltTree>>;
  options: BenchOptions;
  environment: { node22: string; benchNode: string; cpus: number; platform: string };
  runs: RunRecord[];
  /** Sessions page of each tree after the fire-and-forget phase (bench/screenshot.ts). */
  screenshots?: Screenshot[];
  /** The hook spool's cost on the patched tree (`--spool`, bench/spool.ts). */
  spool?: SpoolBenchResult | { error: string };
}

type Value = number | string | null;

interface Figure {
  label: string;
  get(m: PhaseMetrics, run: RunRecord): Value;
  digits?: number;
}

const FIGURES: Figure[] = [
  { label: "events/s", get: (m) => m.eventsPerSec, digits: 1 },
  { label: "latency p50 ms", get: (m) => m.latencyMs.p50, digits: 1 },
  { label: "latency p99 ms", get: (m) => m.latencyMs.p99, digits: 1 },
  { label: "latency max ms", get: (m) => m.latencyMs.max, digits: 0 },
  { label: "events sent", get: (m) => m.eventsSent },
  { label: "timeouts", get: (m) => m.timeouts },
  { label: "closed, not awaited (f&f)", get: (m) => (m.mode === "fire-and-forget" ? m.closedUnanswered : "n/a") },
  { label: "non-200", get: (m) => m.non200 },
  { label: "200 but not in DB", get: (m) => m.missingAcked },
  { label: "sent, not in DB", get: (m) => m.missingSent },
  { label: "dup hook rows", get: (m) => m.duplicateHookRows },
  { label: "rows per hook event", get: (m) => m.rowsPerEvent, digits: 2 },
  { label: "TurnDuration rows", get: (m) => m.turnDurationRows },
  { label: "turns (expected TD)", get: (m) => m.turnsExpected },
  { label: "active after End", get: (m) => m.sessionsActiveAfterEnd },
  { label: "companion BUSY", get: (m) => m.companionBusy },
  { label: "transactions/event", get: (m) => (m.writeQueue ? m.writeQueue.transactionsPerEvent : 1), digits: 3 },
  { label: "lock held p50 ms", get: (m) => (m.writeQueue ? m.writeQueue.lockHeldMs.p50 : "n/a"), digits: 2 },
  { label: "lock held p99 ms", get: (m) => (m.writeQueue ? m.writeQueue.lockHeldMs.p99 : "n/a"), digits: 2 },
  { label: "lock held max ms", get: (m) => (m.writeQueue ? m.writeQueue.lockHeldMs.max : "n/a"), digits: 1 },
  { label: "in-server hook p50 ms", get: (m) => m.server?.hookServerMs?.p50 ?? null, digits: 1 },
  { label: "in-server hook p99 ms", get: (m) => m.server?.hookServerMs?.p99 ?? null, digits: 1 },
  { label: "event-loop delay p99 ms", get: (m) => m.server?.eventLoopDelayMs.p99 ?? null, digits: 1 },
  { label: "event-loop delay max ms", get: (m) => m.server?.eventLoopDelayMs.max ?? null, digits: 0 },
  { label: "server CPU ms/stored event", get: (m) => m.server?.cpuMsPerStoredEvent ?? null, digits: 2 },
  { label: "GC pause total ms", get: (m) => m.server?.gc.totalMs ?? null },
  { label: "f&f: until committed p50 ms", get: (m, run) => (m.mode === "fire-and-forget" ? (commitOf(run, m.mode)?.p50 ?? null) : "n/a"), digits: 0 },
  { label: "f&f: until committed p99 ms", get: (m, run) => (m.mode === "fire-and-forget" ? (commitOf(run, m.mode)?.p99 ?? null) : "n/a"), digits: 0 },
  { label: "integrity_check", get: (_m, run) => run.integrity },
];

function show(v: Value, digits = 0): string {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return v;
  if (!Number.isFinite(v)) return "–";
  if (digits === 0) return String(Math.round(v));
  return v.toFixed(digits);
}

/** `busy (script / layout / style / other)` in % of the phase, e.g. `38 (12 / 9 / 6 / 11)`. */
export function mainThreadCell(m: MainThreadFigures): string {
  return `${show(m.busy)} (${[m.script, m.layout, m.style, m.other].map((v) => show(v)).join(" / ")})`;
}

function ratio(unp: Value, pat: Value): string {
  if (typeof unp !== "number" || typeof pat !== "number" || !Number.isFinite(unp) || !Number.isFinite(pat)) {
    return typeof unp === "string" && typeof pat === "string" && unp === pat ? "=" : "";
  }
  if (unp === 0) return pat === 0 ? "=" : "∞";
  const r = pat / unp;
  return r >= 100 ? `${r.toFixed(0)}×` : r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`;
}

function phaseOf(runs: RunRecord[], tree: TreeKind, n: number, mode: Mode, variant = "none|"): { run: RunRecord; m: PhaseMetrics } | null {
  const run = runs.find((r) => r.tree === tree && r.agents === n && !r.error && variantOf(r) === variant);
  const m = run?.phases.find((p) => p.mode === mode);
  return run && m ? { run, m } : null;
}

/** Rows of one mode's comparison: header + one row per figure (cells already formatted). */
export function comparisonRows(report: BenchReport, mode: Mode, variant = variants(report)[0] ?? "none|"): string[][] {
  const ns = report.options.agents.filter((n) => report.runs.some((r) => r.agents === n && variantOf(r) === variant));
  const withBase = kindsOf(report).includes("baseline");
  const header = ["figure"];
  for (const n of ns) header.push(`N=${n} unp`, "pat", "pat/unp", ...(withBase ? ["base", "pat/base"] : []));
  const rows = [header];
  for (const f of FIGURES) {
    const row = [f.label];
    for (const n of ns) {
      const u = phaseOf(report.runs, "unpatched", n, mode, variant);
      const p = phaseOf(report.runs, "patched", n, mode, variant);
      const uv = u ? f.get(u.m, u.run) : null;
      const pv = p ? f.get(p.m, p.run) : null;
      row.push(show(uv, f.digits), show(pv, f.digits), u && p ? ratio(uv, pv) : "");
      if (withBase) {
        const b = phaseOf(report.runs, "baseline", n, mode, variant);
        const bv = b ? f.get(b.m, b.run) : null;
        row.push(show(bv, f.digits), b && p ? ratio(bv, pv) : "");
      }
    }
    rows.push(row);
  }
  return rows;
}

interface WatchedFigure {
  label: string;
  get(m: PhaseMetrics, run: RunRecord): Value;
  digits?: number;
}

const pageOf = (run: RunRecord, mode: Mode, page: WatchPage): WatchedPagePhase | null =>
  run.watched?.find((w) => w.mode === mode)?.pages.find((p) => p.page === page) ?? null;

function watchedFigures(pages: readonly WatchPage[]): WatchedFigure[] {
  const out: WatchedFigure[] = [
    { label: "hook latency p50 ms", get: (m) => m.latencyMs.p50, digits: 1 },
    { label: "hook latency p99 ms", get: (m) => m.latencyMs.p99, digits: 1 },
    { label: "hook timeouts", get: (m) => m.timeouts },
    { label: "events/s", get: (m) => m.eventsPerSec, digits: 1 },
    { label: "in-server hook p99 ms", get: (m) => m.server?.hookServerMs?.p99 ?? null, digits: 1 },
    { label: "server CPU ms/stored event", get: (m) => m.server?.cpuMsPerStoredEvent ?? null, digits: 2 },
    { label: "f&f: until committed p50 ms", get: (m, run) => (m.mode === "fire-and-forget" ? (commitOf(run, m.mode)?.p50 ?? null) : "n/a"), digits: 0 },
    { label: "f&f: until committed p99 ms", get: (m, run) => (m.mode === "fire-and-forget" ? (commitOf(run, m.mode)?.p99 ?? null) : "n/a"), digits: 0 },
  ];
  const w = (page: WatchPage, f: (p: WatchedPagePhase) => Value) => (m: PhaseMetrics, run: RunRecord) => {
    if (!run.watch?.length) return "";
    const p = pageOf(run, m.mode, page);
    return p ? f(p) : null;
  };
  for (const page of pages) {
    out.push(
      { label: `${page}: API requests/s`, get: w(page, (p) => p.requests.perSec), digits: 1 },
      { label: `${page}: API p50 ms`, get: w(page, (p) => p.requests.p50), digits: 0 },
      { label: `${page}: API p99 ms`, get: w(page, (p) => p.requests.p99), digits: 0 },
      { label: `${page}: freshness p50 ms`, get: w(page, (p) => p.freshness.p50), digits: 0 },
      { label: `${page}: freshness p99 ms`, get: w(page, (p) => p.freshness.p99), digits: 0 },
      { label: `${page}: freshness samples / missed`, get: w(page, (p) => `${p.freshness.samples.length} / ${p.freshness.missed}`) },
      { label: `${page}: new session shown p50 ms (n)`, get: w(page, (p) => `${show(p.freshness.appeared?.p50 ?? null)} (${p.freshness.appeared?.samples.length ?? 0})`) },
      { label: `${page}: long tasks % of phase`, get: w(page, (p) => p.longTasks.percent), digits: 1 },
      { label: `${page}: Total Blocking Time ms`, get: w(page, (p) => p.longTasks.tbtMs), digits: 0 },
      { label: `${page}: main thread busy % (script / layout / style / other)`, get: w(page, (p) => (p.mainThread ? mainThreadCell(p.mainThread) : "–")) },
      { label: `${page}: page errors`, get: w(page, (p) => p.errors.length) },
    );
  }
  return out;
}

/** Nobody watching vs the pages open, same history: per N, each tree unwatched then watched. */
export function watchedRows(report: BenchReport, mode: Mode): string[][] {
  const o = report.options;
  const unwatched = `${o.history}|`;
  const watched = `${o.history}|${o.watch.join(",")}`;
  const ns = o.agents.filter((n) => report.runs.some((r) => r.agents === n && variantOf(r) === watched));
  const trees = kindsOf(report);
  const short: Record<TreeKind, string> = { unpatched: "unp", patched: "pat", baseline: "base" };
  const header = ["figure"];
  for (const n of ns) header.push(...trees.flatMap((t, i) => [i === 0 ? `N=${n} ${short[t]}` : short[t], `${short[t]} watched`]));
  const rows = [header];
  for (const f of watchedFigures(o.watch)) {
    const row = [f.label];
    for (const n of ns) {
      for (const tree of trees) {
        for (const v of [unwatched, watched]) {
          const x = phaseOf(report.runs, tree, n, mode, v);
          row.push(x ? show(f.get(x.m, x.run), f.digits) : "–");
        }
      }
    }
    rows.push(row);
  }
  return rows;
}

export function textTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ");
      return i === 0 ? `${line}\n${"-".repeat(line.length)}` : line;
    })
    .join("\n");
}

export function markdownTable(rows: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const [head, ...body] = rows;
  return [
    `| ${head!.map(esc).join(" | ")} |`,
    `| ${head!.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...body.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

const COLORS: Record<TreeKind, string> = { unpatched: "#d62728", patched: "#1f77b4", baseline: "#7f7f7f" };

export function chartFor(report: BenchReport): string {
  const variant = variants(report)[0] ?? "none|";
  const rows: ChartRow[] = report.options.modes.map((mode) => ({
    mode,
    series: kindsOf(report).map((tree) => {
      const pts = report.options.agents
        .map((n) => ({ n, p: phaseOf(report.runs, tree, n, mode, variant) }))
        .filter((x): x is { n: number; p: { run: RunRecord; m: PhaseMetrics } } => x.p !== null);
      return {
        tree,
        color: COLORS[tree],
        p50: pts.map((x) => ({ n: x.n, value: x.p.m.latencyMs.p50 })),
        p99: pts.map((x) => ({ n: x.n, value: x.p.m.latencyMs.p99 })),
        throughput: pts.map((x) => ({ n: x.n, value: x.p.m.eventsPerSec })),
      };
    }),
  }));
  return renderChart(rows, report.options.agents, `Agent Monitor hook ingestion — ${report.source.kind} — ${report.startedAt}`);
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/</g, (m, i, str: string) => (str.startsWith("<br>", i) ? m : "&lt;"));

function markdown(report: BenchReport, svgName: string): string {
  const o = report.options;
  const lines: string[] = [];
  lines.push(`# Agent Monitor benchmark — ${report.startedAt}`, "");
  lines.push(`- source: **${report.source.kind}** (\`${report.source.kind === "fixture" ? "test/fixtures/upstream" : "AGENT_MONITOR_UPSTREAM"}\`)`);
  for (const [kind, t] of Object.entries(report.trees)) lines.push(`- ${kind} tree: ${t!.buildNote || "built"}`);
  lines.push(
    `- server: Node ${report.environment.node22}; bench, workers and companion: Node ${report.environment.benchNode}; ${report.environment.cpus} CPU(s), ${report.environment.platform}${o.serverCpu != null ? `; server pinned to CPU ${o.serverCpu}, everything else on the others (--server-cpu)` : ""}`,
  );
  lines.push(
    `- agents: ${o.agents.join(", ")}; modes: ${o.modes.join(", ")}; ${o.phaseSeconds} s per phase; think ${o.thinkMs} ms; fire-and-forget delivery jitter ${o.jitterMs} ms; ${o.workers} worker process(es); every ${o.bigEvery || "–"}th agent starts with a ${o.bigMb} MB transcript${o.eventsPerAgent ? `; at most ${o.eventsPerAgent} events per agent` : ""}`,
  );
  lines.push("", `![latency and throughput against N](${svgName})`, "");
  for (const variant of variants(report)) {
    for (const mode of o.modes) {
      lines.push(`## ${mode}, ${variantLabel(variant)}`, "", markdownTable(comparisonRows(report, mode, variant)), "");
    }
  }
  lines.push(...watchedMarkdown(report));
  lines.push(...screenshotsMarkdown(report.screenshots ?? []));
  lines.push(...spoolMarkdown(report.spool));
  lines.push(
    "## Runs",
    "",
    "| tree | N | load avg start→end | server lifetime s | watchdog ticks | write-queue route | integrity | answers by status | server errors (stderr) |",
    "| --- | ---: | --- | ---: | ---: | --- | --- | --- | --- |",
  );
  for (const r of report.runs) {
    if (r.error) {
      lines.push(`| ${r.tree} | ${r.agents} | – | – | – | – | – | – | run failed: ${cell(r.error.split("\n")[0]!)} |`);
      continue;
    }
    const statuses = r.phases.map((p) => `${p.mode}: ${Object.entries(p.statusCounts).map(([s, c]) => `${s === "0" ? "none" : s}×${c}`).join(" ")}`).join("<br>");
    const errs = r.serverErrors.map((e) => `${e.message} ×${e.count}`).join("<br>") || "none";
    lines.push(
      `| ${r.tree} | ${r.agents} | ${r.loadAvg[0].toFixed(1)}→${r.loadAvg[1].toFixed(1)} | ${(r.serverLifetimeMs / 1000).toFixed(1)} | ${r.watchdogTicks} | ${r.writeQueueRoute ? "yes" : "404 (1 tx/event)"} | ${r.integrity} | ${statuses} | ${cell(errs)} |`,
    );
  }
  lines.push(
    "",
    "## How to read this",
    "",
    "- One server per tree and N (fresh database); the modes run as consecutive phases against it, each phase with its own N sessions. Trees alternate per N.",
    "- **events/s**: blocking/saturation — events answered 200 per second of the phase. fire-and-forget — events found in the database per second of sending (the client never reads an answer).",
    "- **latency**: blocking/saturation — until the status line arrived; a request the client gave up on at 3000 ms counts with its 3000 ms. fire-and-forget — the hook does not wait; the figure is when the server's answer was seen on the half-closed socket, over the answers seen. **timeouts**: blocking/saturation — the client gave up at 3000 ms; fire-and-forget — no answer and no close within the 15 s observation window. **closed, not awaited (f&f)**: the server closed the half-closed connection without an answer; the v2 client has exited by then and never waits for one (the patched server answers after COMMIT, usually after Node has closed the half-closed socket), so this is not a failure; whether the event arrived is *sent, not in DB*.",
    "- **event-loop delay, server CPU, GC**: measured inside the server process by `harness/server-probe.cjs`, preloaded with `--require` into both trees alike, over each phase. Event-loop delay is `perf_hooks.monitorEventLoopDelay` (2 ms resolution, so an idle loop reads ~2 ms): how long a request arriving at a random moment waits before the main thread can look at it. **server CPU ms/stored event**: the process's CPU time (user+system, all threads including the transcript worker) over the phase, divided by the phase's events found in the database. **GC pause total**: sum of GC pauses (`PerformanceObserver` \"gc\"). **in-server hook p50/p99**: each `POST /api/hooks/event` from the server's `request` event to its response's `finish`, measured by the same probe; the gap to the client's latency is time the request spent outside the server's hands (the client processes waiting for CPU, the kernel's queues).",
    "- **200 but not in DB / sent, not in DB**: each event carries a unique `bench_event_id` in its data payload, looked up in `events.data` after the server stopped (database opened read-only).",
    "- **rows per hook event**: all events-table rows of the phase's sessions divided by hook events sent; server-generated rows (TurnDuration, …) add to it. **TurnDuration rows** should equal **turns** (the turn_duration lines in the transcripts, history included).",
    "- **active after End**: sessions whose SessionEnd was answered 200 (fire-and-forget: is in the database) but whose status is still `active` in the database at the end.",
    `- **companion BUSY**: SQLITE_BUSY* errors seen by the second connection (${report.options.companionBegin} read-then-write transaction every 20 ms, busy_timeout 1000 ms) during the phase. A deferred transaction that already read gets SQLITE_BUSY at once (no busy wait) when the server holds the write lock at the moment it writes, so this figure tracks how much of the time the server holds the lock.`,
    "- **transactions/event, lock held**: from `GET /api/hooks/write-queue/stats` (counters diffed per phase, lock-time percentiles cumulative since server start); a tree without the route (404) is reported as 1 transaction per event and n/a.",
    `- **load avg**: the machine's 1-minute load average (${report.environment.cpus} CPUs); anything else running during the bench skews the figures, so compare runs made under similar load.`,
    "- **watchdog ticks**: the server's own 15 s watchdog; ticks counted from server start. Short (`--quick`) runs may see none.",
    "",
  );
  return lines.join("\n");
}

function watchedMarkdown(report: BenchReport): string[] {
  const o = report.options;
  const lines: string[] = [];
  const withHistory = report.runs.filter((r) => r.historyInfo);
  if (withHistory.length) {
    lines.push("## History databases", "");
    const seen = new Set<string>();
    for (const r of withHistory) {
      const key = `${r.tree} ${r.history}`;
      if (seen.has(key)) continue;
      seen.add(key);
      lines.push(`- ${r.tree}, ${r.history}: ${r.historyInfo!.how}`);
    }
    lines.push("", "### The pages' list endpoints on the history, no load (median of 7 calls after a warm-up; target < 10 ms)", "");
    const quiet = kindsOf(report).map((tree) => ({ tree, q: report.runs.find((r) => r.tree === tree && r.quiet?.length)?.quiet ?? [] }));
    const paths = [...new Set(quiet.flatMap((x) => x.q.map((t) => t.path)))];
    if (paths.length) {
      lines.push(`| request | ${quiet.map((x) => `${x.tree} median ms (max)`).join(" | ")} |`, `| --- | ${quiet.map(() => "---:").join(" | ")} |`);
      for (const p of paths) {
        lines.push(`| \`GET ${p}\` | ${quiet.map((x) => { const t = x.q.find((y) => y.path === p); return t ? `${t.medianMs.toFixed(1)} (${t.maxMs.toFixed(0)})${t.status !== 200 ? ` HTTP ${t.status}` : ""}` : "–"; }).join(" | ")} |`);
      }
      lines.push("");
    }
  }
  const watchedRuns = report.runs.filter((r) => r.watched?.length);
  if (!o.watch.length || !watchedRuns.length) return lines;
  for (const mode of o.modes) {
    lines.push(`## ${mode}: nobody watching vs ${o.watch.join(" + ")} open (${o.history} history)`, "", markdownTable(watchedRows(report, mode)), "");
  }
  lines.push("### The pages' API requests by path (requests/s, p50 / p99 ms)", "");
  lines.push("| tree | N | phase | page | path | req/s | p50 | p99 | failed |", "| --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: |");
  for (const r of watchedRuns) {
    for (const w of r.watched!) {
      for (const p of w.pages) {
        for (const b of p.requests.byPath) {
          lines.push(`| ${r.tree} | ${r.agents} | ${w.mode} | ${p.page} | \`${b.path}\` | ${b.perSec.toFixed(2)} | ${show(b.p50)} | ${show(b.p99)} | ${b.failed} |`);
        }
      }
    }
  }
  lines.push("", "### Screenshots of the open pages at the end of each phase", "");
  for (const r of watchedRuns) {
    for (const w of r.watched!) {
      for (const p of w.pages) {
        lines.push(`- ${r.tree}, N=${r.agents}, ${w.mode}, ${p.page}: ${p.screenshot ? `[${p.screenshot}](${p.screenshot})` : p.note}${p.errors.length ? `; page errors: ${cell(p.errors.slice(0, 3).join("; "))}` : ""}`);
      }
    }
  }
  lines.push(
    "",
    "- **watched**: the pages stay open in headless Chromium (one browser context each, past the first-run screens) from the server's start to its stop; figures are per phase. **API requests/s, p50/p99**: the page's own requests under `/api/` (`requestfinished`, `request.timing()` from start to response end). **freshness**: during the phase probe sessions are posted one after the other (SessionStart; once the Sessions page shows it, or after 2 s, SessionEnd); a MutationObserver in each page records when the probe comes onto the page, leaves it, and when a row of it reads Completed. Each sample: from the SessionEnd's 200 until a row of it reads Completed (the Sessions page) or, on a page of active sessions, it leaves the page (missed: neither within 10 s). **new session shown**: from the SessionStart's 200 until the probe came onto the page (under load it can leave the first page, sorted by last activity, before a reload: not counted as a miss). **long tasks**: PerformanceObserver `longtask` summed over the phase, as % of its wall time; **Total Blocking Time**: the part of each beyond 50 ms. **main thread busy**: the renderer's main thread over the phase (DevTools protocol `Performance.getMetrics`: TaskDuration, and of it ScriptDuration, LayoutDuration, RecalcStyleDuration; other = the rest: paint, compositing, parsing, GC), % of wall time. **page errors**: console errors and uncaught page errors during the phase.",
    "- **f&f: until committed**: fire-and-forget phases; a read-only connection polls `events` for new rows every 25 ms (the resolution) and takes now − the hook's send stamp `sent_at_ms` (stamped before the 0..jitter delivery delay).",
    "",
  );
  return lines;
}

function kindsOf(report: BenchReport): TreeKind[] {
  return (["unpatched", "patched", "baseline"] as const).filter((k) => report.runs.some((r) => r.tree === k));
}

/** `<outDir>/bench-<start time>`: the report's files, and the screenshots beside them, start with it. */
export function reportBase(startedAt: string, outDir: string): string {
  return path.join(outDir, `bench-${startedAt.replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-")}`);
}

export function writeReport(report: BenchReport, outDir: string): { json: string; md: string; svg: string } {
  mkdirSync(outDir, { recursive: true });
  const base = reportBase(report.startedAt, outDir);
  const files = { json: `${base}.json`, md: `${base}.md`, svg: `${base}.svg` };
  writeFileSync(files.json, JSON.stringify(report, null, 2) + "\n");
  writeFileSync(files.svg, chartFor(report));
  writeFileSync(files.md, markdown(report, path.basename(files.svg)));
  return files;
}

/** The report's spool section (`--spool`): the figures beside their targets (issue #14). */
export function spoolMarkdown(spool: BenchReport["spool"]): string[] {
  if (!spool) return [];
  const head = ["## Hook spool cost (spool-hook-events, patched tree)", ""];
  if ("error" in spool) return [...head, `spool module failed: ${cell(spool.error.split("\n")[0]!)}`, ""];
  return [
    ...head,
    markdownTable(spoolRows(spool)),
    "",
    `One append: the tree's spoolHookEvent in one Node 22 process, ${spool.append.samples} calls on and off, interleaved (off = \`AGENT_MONITOR_SPOOL=0\`: the id is still added, nothing written). ` +
      `Hook process: scripts/hook-handler.js run ${spool.hookProcess.samples} times each against a running dashboard. ` +
      `Replay: ${spool.replay.backlog} spooled events written while the agents post; live p99 over the events sent until the replay finished, against the same load with no backlog. ` +
      "CPU: the server probe's CPU time over the events stored, same load, spool off (hook client and replay) vs on.",
    "",
  ];
}
