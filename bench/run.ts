// `npm run bench`: build/reuse both trees, run the workload against each for every N, print the
// comparison and write bench-results/bench-<time>.{json,md,svg}. See --help.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureNode22 } from "../scripts/lib/node22.ts";
import { repoRoot } from "../scripts/lib/paths.ts";
import { benchHelp, parseBenchArgs, type BenchOptions } from "./cli-args.ts";
import { UserError } from "../scripts/lib/errors.ts";
import type { PhaseMetrics } from "../harness/metrics.ts";
import { comparisonRows, mainThreadCell, reportBase, textTable, variantLabel, variants, watchedRows, writeReport, type BenchReport, type RunRecord } from "./report.ts";
import { screenshotSessions, type Screenshot } from "./screenshot.ts";
import { ensureRuntimeDeps } from "../scripts/pipeline/install.ts";
import { buildTree, existingTree, resolveSource, type BuiltTree, type TreeKind } from "./trees.ts";
import { historyDatabase, type HistoryDatabase, type HistorySize } from "../harness/history.ts";
import { CommitWatch, quietApiTimings } from "./observe.ts";
import { pinToCpus, runWorkload, type PhaseObserver } from "../harness/workload.ts";
import { PageWatch, type WatchPage } from "../harness/watch.ts";
import { runSpoolBench, spoolRows } from "./spool.ts";

const log = (line: string) => console.log(line);

function phaseLine(m: PhaseMetrics): string {
  const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "–");
  return (
    `    ${m.mode.padEnd(15)} ${String(m.eventsSent).padStart(6)} events  ${f(m.eventsPerSec).padStart(7)}/s  ` +
    `p50 ${f(m.latencyMs.p50)} p99 ${f(m.latencyMs.p99)} max ${f(m.latencyMs.max, 0)} ms  ` +
    `timeouts ${m.timeouts}  non-200 ${m.non200}  missing ${m.missingAcked}/${m.missingSent}  ` +
    `${m.mode === "fire-and-forget" ? `closed-not-awaited ${m.closedUnanswered}  ` : ""}` +
    `TurnDuration ${m.turnDurationRows}/${m.turnsExpected}  active-after-End ${m.sessionsActiveAfterEnd}  BUSY ${m.companionBusy}` +
    (m.server
      ? `${m.server.hookServerMs ? `  in-server p99 ${f(m.server.hookServerMs.p99)} ms` : ""}  loop delay p99 ${f(m.server.eventLoopDelayMs.p99)} max ${f(m.server.eventLoopDelayMs.max, 0)} ms  CPU ${f(m.server.cpuMsPerStoredEvent, 2)} ms/event  GC ${m.server.gc.totalMs} ms`
      : "")
  );
}

/** The runs of a bench: today's (every N, unwatched) and, for the watched N, the history pair unwatched then watched. */
function runPlan(opts: BenchOptions): Array<{ agents: number; history: "none" | HistorySize; watch: WatchPage[] }> {
  const plan: Array<{ agents: number; history: "none" | HistorySize; watch: WatchPage[] }> = [];
  for (const n of opts.agents) {
    if (opts.baseRuns) plan.push({ agents: n, history: opts.watch.length ? "none" : opts.history, watch: [] });
    if (opts.watchAgents.includes(n)) plan.push({ agents: n, history: opts.history, watch: [] }, { agents: n, history: opts.history, watch: opts.watch });
  }
  return plan;
}

async function main(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseBenchArgs(argv);
  } catch (err) {
    if (err instanceof UserError) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    throw err;
  }
  if (opts.help) {
    console.log(benchHelp());
    return 0;
  }

  const cpus = os.cpus().length;
  if (opts.serverCpu !== null && (cpus < 2 || opts.serverCpu >= cpus)) {
    console.error(`error: --server-cpu ${opts.serverCpu}: this machine has CPUs 0-${cpus - 1}; pinning needs 2 or more and one of them`);
    return 1;
  }
  const startedAt = new Date().toISOString();
  const node22 = ensureNode22(log);
  const node22Version = execFileSync(node22, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
  const source = resolveSource(opts.upstream ?? undefined);
  log(`source: ${source.kind} (${path.relative(repoRoot, path.resolve(source.upstream)) || source.upstream})`);

  const trees: Partial<Record<TreeKind, BuiltTree>> = {};
  const buildErrors: string[] = [];
  for (const kind of opts.trees) {
    log(`building ${kind} tree…`);
    try {
      const t = await buildTree(source, kind, { force: opts.rebuild });
      log(`  ${path.relative(repoRoot, t.dir)}: ${t.buildNote}`);
      await ensureRuntimeDeps(t.dir, (l) => log(`  ${l}`));
      trees[kind] = t;
    } catch (err) {
      buildErrors.push((err as Error).message);
      log(`  ${(err as Error).message}`);
      log(`  skipping the ${kind} tree`);
    }
  }
  if (opts.baseline) {
    try {
      trees.baseline = existingTree(opts.baseline, "baseline");
      await ensureRuntimeDeps(trees.baseline.dir, (l) => log(`  ${l}`));
      log(`baseline tree: ${path.relative(repoRoot, trees.baseline.dir)} (run as it is)`);
    } catch (err) {
      buildErrors.push((err as Error).message);
      log(`  ${(err as Error).message}`);
    }
  }
  if (opts.serverCpu !== null) {
    // After the builds (they use every core): from here on the bench, its workers, the companion and
    // Chromium inherit the other CPUs; each server is moved to its own in runWorkload.
    const others = [...Array(cpus).keys()].filter((c) => c !== opts.serverCpu);
    pinToCpus(process.pid, others);
    log(`pinned: server on CPU ${opts.serverCpu}; bench, workers, companion and Chromium on CPU ${others.join(",")}`);
  }
  const kinds = [...opts.trees, ...(opts.baseline ? (["baseline"] as const) : [])].filter((k) => trees[k]);
  if (kinds.length === 0) {
    console.error("error: no tree could be built");
    return 1;
  }

  const runs: RunRecord[] = [];
  const screenshots: Screenshot[] = [];
  const shotAt = Math.max(...opts.agents);
  mkdirSync(path.resolve(opts.out), { recursive: true });
  const histories: Partial<Record<string, HistoryDatabase>> = {};
  const history = async (kind: TreeKind, size: "none" | HistorySize): Promise<HistoryDatabase | null> => {
    if (size === "none") return null;
    const key = `${kind}-${size}`;
    histories[key] ??= await historyDatabase({ treeDir: trees[kind]!.dir, size, log });
    return histories[key]!;
  };
  for (const spec of runPlan(opts)) {
    const n = spec.agents;
    for (const kind of kinds) {
      const tree = trees[kind]!;
      log(`[${kind}] N=${n}${spec.history !== "none" ? ` on the ${spec.history} history` : ""}${spec.watch.length ? `, watched: ${spec.watch.join(", ")}` : ""}`);
      const loadStart = os.loadavg()[0]!;
      const base = { tree: kind, agents: n, history: spec.history, watch: spec.watch } as const;
      const extra: Pick<RunRecord, "historyInfo" | "quiet" | "watched" | "commit"> = { watched: [], commit: [] };
      const watch = spec.watch.length ? new PageWatch(spec.watch, { shotBase: `${reportBase(startedAt, path.resolve(opts.out))}-${kind}-N${n}`, profile: opts.pageProfile, log }) : null;
      let commits: CommitWatch | null = null;
      const observer: PhaseObserver = {
        serverReady: async ({ url }) => {
          if (spec.history !== "none") {
            extra.quiet = await quietApiTimings(url);
            log(`    quiet API on the history: ${extra.quiet.map((q) => `${q.path} ${q.medianMs.toFixed(1)} ms`).join(", ")}`);
          }
          if (watch) {
            await watch.start(url);
            if (watch.failure) throw new Error(`watching failed: ${watch.failure}`);
          }
        },
        phaseStart: async ({ mode, dbPath }) => {
          if (mode === "fire-and-forget") (commits = new CommitWatch(dbPath)).start();
          watch?.phaseStart();
        },
        phaseEnd: async ({ mode, index }) => {
          if (commits) extra.commit!.push({ mode, ...commits.stop() });
          commits = null;
          if (watch) {
            const w = await watch.phaseEnd(mode, index, mode);
            for (const pg of w.pages) {
              log(
                `    ${pg.page}: ${pg.requests.perSec.toFixed(1)} API req/s, p50 ${pg.requests.p50.toFixed(0)} p99 ${pg.requests.p99.toFixed(0)} ms; ` +
                  `freshness p50 ${pg.freshness.p50.toFixed(0)} p99 ${pg.freshness.p99.toFixed(0)} ms (${pg.freshness.samples.length} samples, ${pg.freshness.missed} missed); ` +
                  `long tasks ${pg.longTasks.percent.toFixed(1)} %; ${pg.mainThread ? `main thread busy % (script / layout / style / other) ${mainThreadCell(pg.mainThread)}; ` : ""}errors ${pg.errors.length}; ${pg.screenshot ?? pg.note}`,
              );
            }
          }
        },
      };
      try {
        const hist = await history(kind, spec.history);
        if (hist) extra.historyInfo = { sessions: hist.sessions, events: hist.events, bytes: hist.bytes, how: hist.how };
        const res = await runWorkload({
          initialDb: hist?.dbPath,
          observer,
          treeDir: tree.dir,
          agents: n,
          mode: opts.modes,
          durationMs: opts.phaseSeconds * 1000,
          eventsPerAgent: opts.eventsPerAgent ?? undefined,
          thinkMs: opts.thinkMs,
          deliveryJitterMs: opts.jitterMs,
          workers: opts.workers,
          bigEvery: opts.bigEvery,
          bigBytes: Math.round(opts.bigMb * 1024 * 1024),
          companion: { begin: opts.companionBegin },
          serverNodeOptions: opts.serverNodeOptions ?? undefined,
          serverCpu: opts.serverCpu ?? undefined,
          log,
          afterPhase: async ({ mode, url }) => {
            if (mode !== "fire-and-forget" || n !== shotAt || spec.history !== "none" || spec.watch.length) return;
            const shot = await screenshotSessions(url, `${reportBase(startedAt, path.resolve(opts.out))}-${kind}.png`, kind, n);
            screenshots.push(shot);
            log(`    screenshot: ${shot.file ?? shot.note}`);
          },
        });
        for (const p of res.phases) log(phaseLine(p.metrics));
        log(
          `    integrity ${res.integrity}; server lived ${(res.serverLifetimeMs / 1000).toFixed(1)} s (${res.watchdogTicks} watchdog tick(s)); ` +
            `load avg ${loadStart.toFixed(1)}→${os.loadavg()[0]!.toFixed(1)} on ${cpus} CPUs`,
        );
        for (const e of res.serverErrors) log(`    server stderr: ${e.message} ×${e.count}`);
        extra.watched = watch?.phases ?? [];
        runs.push({
          ...base,
          ...extra,
          integrity: res.integrity,
          serverLifetimeMs: res.serverLifetimeMs,
          watchdogTicks: res.watchdogTicks,
          writeQueueRoute: res.writeQueueRoute,
          phases: res.phases.map((p) => p.metrics),
          serverErrors: res.serverErrors,
          loadAvg: [loadStart, os.loadavg()[0]!],
        });
      } catch (err) {
        const message = (err as Error).message;
        log(`    run failed: ${message}`);
        runs.push({ ...base, ...extra, integrity: "", serverLifetimeMs: 0, watchdogTicks: 0, writeQueueRoute: false, phases: [], serverErrors: [], loadAvg: [loadStart, os.loadavg()[0]!], error: message });
      } finally {
        (commits as CommitWatch | null)?.stop();
        await watch?.close();
      }
    }
  }

  // --spool: the hook spool's cost on the patched tree (bench/spool.ts)
  let spool: BenchReport["spool"];
  if (opts.spool) {
    if (!trees.patched) spool = { error: "--spool needs the patched tree (--trees patched)" };
    else {
      log("[patched] hook spool cost (--spool)");
      try {
        spool = await runSpoolBench({ treeDir: trees.patched.dir, agents: 22, seconds: Math.max(opts.phaseSeconds, 5), log });
      } catch (err) {
        spool = { error: err instanceof Error ? err.message : String(err) };
      }
    }
  }

  const report: BenchReport = {
    spool,
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    source,
    trees,
    options: opts,
    environment: { node22: node22Version, benchNode: process.versions.node, cpus, platform: `${os.platform()} ${os.arch()}` },
    runs,
    screenshots,
  };
  const files = writeReport(report, path.resolve(opts.out));
  for (const variant of variants(report)) {
    for (const mode of opts.modes) {
      log("");
      log(`== ${mode}, ${variantLabel(variant)} ==  (pat/unp = patched / unpatched${trees.baseline ? "; pat/base = patched / baseline" : ""})`);
      log(textTable(comparisonRows(report, mode, variant)));
    }
  }
  if (spool) {
    log("");
    log("== hook spool cost (patched tree) ==");
    log("error" in spool ? `spool module failed: ${spool.error}` : textTable(spoolRows(spool)));
  }
  if (opts.watch.length) {
    for (const mode of opts.modes) {
      log("");
      log(`== ${mode}: nobody watching vs ${opts.watch.join(" + ")} open, ${opts.history} history ==`);
      log(textTable(watchedRows(report, mode)));
    }
  }
  log("");
  log(`results: ${path.relative(process.cwd(), files.json)}`);
  log(`chart:   ${path.relative(process.cwd(), files.svg)}`);
  log(`report:  ${path.relative(process.cwd(), files.md)}`);
  return buildErrors.length > 0 || runs.some((r) => r.error) ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? `error: ${err.message}` : err);
    process.exit(1);
  },
);
