// `npm run bench`: build/reuse both trees, run the workload against each for every N, print the
// comparison and write bench-results/bench-<time>.{json,md,svg}. See --help.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureNode22 } from "../scripts/lib/node22.ts";
import { repoRoot } from "../scripts/lib/paths.ts";
import { benchHelp, parseBenchArgs } from "./cli-args.ts";
import { UserError } from "../scripts/lib/errors.ts";
import type { PhaseMetrics } from "./metrics.ts";
import { comparisonRows, reportBase, textTable, writeReport, type BenchReport, type RunRecord } from "./report.ts";
import { screenshotSessions, type Screenshot } from "./screenshot.ts";
import { ensureRuntimeDeps } from "../scripts/pipeline/install.ts";
import { buildTree, resolveSource, type BuiltTree, type TreeKind } from "./trees.ts";
import { runWorkload } from "./workload.ts";

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
  const kinds = opts.trees.filter((k) => trees[k]);
  if (kinds.length === 0) {
    console.error("error: no tree could be built");
    return 1;
  }

  const runs: RunRecord[] = [];
  const screenshots: Screenshot[] = [];
  const shotAt = Math.max(...opts.agents);
  mkdirSync(path.resolve(opts.out), { recursive: true });
  for (const n of opts.agents) {
    for (const kind of kinds) {
      const tree = trees[kind]!;
      log(`[${kind}] N=${n}`);
      const loadStart = os.loadavg()[0]!;
      try {
        const res = await runWorkload({
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
          log,
          afterPhase: async ({ mode, url }) => {
            if (mode !== "fire-and-forget" || n !== shotAt) return;
            const shot = await screenshotSessions(url, `${reportBase(startedAt, path.resolve(opts.out))}-${kind}.png`, kind, n);
            screenshots.push(shot);
            log(`    screenshot: ${shot.file ?? shot.note}`);
          },
        });
        for (const p of res.phases) log(phaseLine(p.metrics));
        log(
          `    integrity ${res.integrity}; server lived ${(res.serverLifetimeMs / 1000).toFixed(1)} s (${res.watchdogTicks} watchdog tick(s)); ` +
            `load avg ${loadStart.toFixed(1)}→${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs`,
        );
        for (const e of res.serverErrors) log(`    server stderr: ${e.message} ×${e.count}`);
        runs.push({
          tree: kind,
          agents: n,
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
        runs.push({ tree: kind, agents: n, integrity: "", serverLifetimeMs: 0, watchdogTicks: 0, writeQueueRoute: false, phases: [], serverErrors: [], loadAvg: [loadStart, os.loadavg()[0]!], error: message });
      }
    }
  }

  const report: BenchReport = {
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    source,
    trees,
    options: opts,
    environment: { node22: node22Version, benchNode: process.versions.node, cpus: os.cpus().length, platform: `${os.platform()} ${os.arch()}` },
    runs,
    screenshots,
  };
  const files = writeReport(report, path.resolve(opts.out));
  for (const mode of opts.modes) {
    log("");
    log(`== ${mode} ==  (pat/unp = patched / unpatched)`);
    log(textTable(comparisonRows(report, mode)));
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
