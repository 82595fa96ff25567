// `npm run bench -- --spool`: what the hook spool (spool-hook-events) costs, on the patched tree.
//  (a) the hook client's added time: one spool append (the tree's own spoolHookEvent, in a Node 22
//      process, as scripts/hook-handler.js calls it) with the spool on vs AGENT_MONITOR_SPOOL=0, and
//      the whole hook process (scripts/hook-handler.js, fire-and-forget to the dashboard) on vs off;
//  (b) live hook latency while a 10,000-event backlog is replayed, vs the same load without backlog;
//  (c) server CPU per stored event with the spool on vs off (dashboard up, same load).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { driveAgents } from "../harness/agents.ts";
import { runHookHandler } from "../harness/hook-handler.ts";
import { startMonitor, monitorEnv } from "../harness/monitor.ts";
import type { EventRecord } from "../harness/protocol.ts";
import { ensureNode22 } from "../scripts/lib/node22.ts";
import { ensureRuntimeDeps } from "../scripts/pipeline/install.ts";
import { runWorkload } from "../harness/workload.ts";

export const SPOOL_TARGETS = { appendP99Ms: 5, replayP99Ratio: 1.5, cpuRatio: 1.1 } as const;

export interface SpoolBenchResult {
  append: { on: Pct; off: Pct; addedP50Ms: number; addedP99Ms: number; samples: number };
  hookProcess: { on: Pct; off: Pct; samples: number };
  replay: { backlog: number; replayMs: number; liveP99WithoutMs: number; liveP99DuringMs: number; ratio: number; liveEvents: number };
  cpu: { offMsPerEvent: number; onMsPerEvent: number; ratio: number };
}

interface Pct {
  p50: number;
  p99: number;
}

function pct(values: number[]): Pct {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : Number.NaN);
  return { p50: at(50), p99: at(99) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** (a) in one Node 22 process: `n` spoolHookEvent calls with the spool on and off, interleaved; ms each. */
function appendTimes(treeDir: string, dir: string, n: number): { on: number[]; off: number[] } {
  const script = `
const s = require(${JSON.stringify(path.join(treeDir, "server", "patch-runtime", "hook-spool.js"))});
const { performance } = require("perf_hooks");
const on = [], off = [];
const cwd = require("os").tmpdir();
const data = { session_id: "bench-spool", cwd, tool_name: "Read", tool_input: { file_path: require("path").join(cwd, "x.ts") }, sent_at_ms: Date.now() };
const envOn = { AGENT_MONITOR_SPOOL_DIR: ${JSON.stringify(dir)} }, envOff = { ...envOn, AGENT_MONITOR_SPOOL: "0" };
for (let i = 0; i < ${n}; i++) {
  let t = performance.now(); s.spoolHookEvent("PreToolUse", data, envOn); on.push(performance.now() - t);
  t = performance.now(); s.spoolHookEvent("PreToolUse", data, envOff); off.push(performance.now() - t);
}
process.stdout.write(JSON.stringify({ on, off }));`;
  return JSON.parse(execFileSync(ensureNode22(), ["-e", script], { encoding: "utf8", maxBuffer: 64 << 20 })) as { on: number[]; off: number[] };
}

/** (a) the whole hook process (Node 22 start, stdin, spool, send) against a dashboard on `port`: wall ms. */
async function hookRun(treeDir: string, env: NodeJS.ProcessEnv): Promise<number> {
  return (await runHookHandler(treeDir, env, { session_id: "bench-spool-hook", cwd: os.tmpdir(), hook_event_name: "PreToolUse", tool_name: "Read" })).ms;
}

/** Latencies (ms) of the live events answered 200 that were sent in [from, to) (ms since the phase start). */
const liveP99 = (events: EventRecord[], from = 0, to = Infinity) => pct(events.filter((e) => e.status === 200 && e.t >= from && e.t < to).map((e) => e.latencyMs)).p99;

export async function runSpoolBench(o: { treeDir: string; agents?: number; seconds?: number; log: (line: string) => void }): Promise<SpoolBenchResult> {
  const agents = o.agents ?? 22;
  const durationMs = (o.seconds ?? 10) * 1000;
  const work = mkdtempSync(path.join(os.tmpdir(), "ccam-bench-spool-"));
  const nodePath = await ensureRuntimeDeps(o.treeDir, o.log);
  const baseEnv: Record<string, string> = nodePath ? { NODE_PATH: nodePath } : {};
  const spoolModule = path.join(o.treeDir, "server", "patch-runtime", "hook-spool.js");
  try {
    // (a) the append, then the whole hook process
    o.log("  spool (a): hook client append, on vs off…");
    const t = appendTimes(o.treeDir, path.join(work, "append-spool"), 2000);
    const on = pct(t.on);
    const off = pct(t.off);
    const m0 = await startMonitor({ treeDir: o.treeDir, env: { ...baseEnv, AGENT_MONITOR_SPOOL_DIR: path.join(work, "hook-spool") } });
    const procOn: number[] = [];
    const procOff: number[] = [];
    try {
      const env = monitorEnv({ port: m0.port, dbPath: m0.dbPath, homeDir: m0.homeDir, extra: { ...baseEnv, CLAUDE_DASHBOARD_PORT: String(m0.port), AGENT_MONITOR_SPOOL_DIR: path.join(work, "hook-spool") } });
      for (let i = 0; i < 40; i++) {
        procOn.push(await hookRun(o.treeDir, env));
        procOff.push(await hookRun(o.treeDir, { ...env, AGENT_MONITOR_SPOOL: "0" }));
      }
    } finally {
      await m0.stop();
    }

    // (b) live hooks without and during a 10,000-event replay
    const backlog = 10_000;
    const phase = async (withBacklog: boolean) => {
      const spoolDir = path.join(work, `replay-${withBacklog ? "on" : "off"}`);
      mkdirSync(spoolDir, { recursive: true });
      const m = await startMonitor({ treeDir: o.treeDir, env: { ...baseEnv, AGENT_MONITOR_SPOOL_DIR: spoolDir, AGENT_MONITOR_SPOOL_REPLAY_MS: "1000" } });
      try {
        const load = driveAgents({ port: m.port, agents, mode: "fire-and-forget", durationMs, workDir: path.join(work, `agents-${withBacklog}`), spool: { module: spoolModule, env: { AGENT_MONITOR_SPOOL_DIR: spoolDir } } });
        let from = 0;
        let replayMs = 0;
        if (withBacklog) {
          await sleep(2000);
          const spool = createRequire(import.meta.url)(spoolModule) as { frame(r: object): string; segmentName(ms: number): string };
          const now = Date.now();
          const frames: string[] = [];
          for (let i = 0; i < backlog; i++) {
            const sid = `bench-backlog-${i % 100}`;
            frames.push(spool.frame({ event_id: `b0000000-0000-4000-8000-${String(i).padStart(12, "0")}`, sent_at_ms: now - 600_000 + i, hook_type: "PreToolUse", data: { session_id: sid, cwd: os.tmpdir(), tool_name: "Read", tool_input: { n: i } } }));
          }
          writeFileSync(path.join(spoolDir, spool.segmentName(now - 10 * 60_000)), frames.join(""));
          from = 2000;
          const t0 = Date.now();
          for (;;) {
            const s = await m.get<{ spoolReplayed?: number }>("/api/hooks/spool/stats");
            if ((s.spoolReplayed ?? 0) >= backlog || Date.now() - t0 > 120_000) break;
            await sleep(100);
          }
          replayMs = Date.now() - t0;
        }
        const { events } = await load;
        return { p99: withBacklog ? liveP99(events, from, from + Math.max(replayMs, 1)) : liveP99(events), replayMs, live: events.length };
      } finally {
        await m.stop();
      }
    };
    o.log(`  spool (b): ${agents} agents, live hook p99 without a backlog…`);
    const without = await phase(false);
    o.log(`  spool (b): ${agents} agents while a ${backlog}-event backlog is replayed…`);
    const during = await phase(true);

    // (c) CPU per stored event, spool on vs off (the bench's probe in the server)
    const cpuOf = async (spoolOn: boolean) => {
      const spoolDir = path.join(work, `cpu-${spoolOn ? "on" : "off"}`);
      const res = await runWorkload({
        treeDir: o.treeDir,
        agents,
        mode: "fire-and-forget",
        durationMs,
        companion: false,
        env: spoolOn ? { AGENT_MONITOR_SPOOL_DIR: spoolDir } : { AGENT_MONITOR_SPOOL: "0", AGENT_MONITOR_SPOOL_DIR: spoolDir },
        spool: spoolOn ? { module: spoolModule, env: { AGENT_MONITOR_SPOOL_DIR: spoolDir } } : undefined,
      });
      return res.phases[0]?.metrics.server?.cpuMsPerStoredEvent ?? Number.NaN;
    };
    o.log("  spool (c): server CPU per stored event, spool off then on…");
    const cpuOff = await cpuOf(false);
    const cpuOn = await cpuOf(true);

    return {
      append: { on, off, addedP50Ms: on.p50 - off.p50, addedP99Ms: on.p99 - off.p99, samples: t.on.length },
      hookProcess: { on: pct(procOn), off: pct(procOff), samples: procOn.length },
      replay: { backlog, replayMs: during.replayMs, liveP99WithoutMs: without.p99, liveP99DuringMs: during.p99, ratio: during.p99 / without.p99, liveEvents: during.live },
      cpu: { offMsPerEvent: cpuOff, onMsPerEvent: cpuOn, ratio: cpuOn / cpuOff },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");

/** Rows of the report's spool section: figure, value, target, verdict. */
export function spoolRows(r: SpoolBenchResult): string[][] {
  return [
    ["figure", "spool on", "spool off", "target", ""],
    ["hook client: one append p50 / p99 (ms)", `${f(r.append.on.p50, 3)} / ${f(r.append.on.p99, 3)}`, `${f(r.append.off.p50, 3)} / ${f(r.append.off.p99, 3)}`, `added p99 < ${SPOOL_TARGETS.appendP99Ms} ms`, verdict(r.append.addedP99Ms < SPOOL_TARGETS.appendP99Ms)],
    ["hook process wall p50 / p99 (ms)", `${f(r.hookProcess.on.p50, 1)} / ${f(r.hookProcess.on.p99, 1)}`, `${f(r.hookProcess.off.p50, 1)} / ${f(r.hookProcess.off.p99, 1)}`, "(context: Node start dominates)", ""],
    [`live hook p99 during a ${r.replay.backlog}-event replay (ms)`, `${f(r.replay.liveP99DuringMs, 1)} (replay ${f(r.replay.replayMs / 1000, 1)} s)`, `${f(r.replay.liveP99WithoutMs, 1)} (no backlog)`, `≤ ${SPOOL_TARGETS.replayP99Ratio}× (${f(r.replay.ratio)}×)`, verdict(r.replay.ratio <= SPOOL_TARGETS.replayP99Ratio)],
    ["server CPU per stored event (ms)", f(r.cpu.onMsPerEvent, 3), f(r.cpu.offMsPerEvent, 3), `≤ ${SPOOL_TARGETS.cpuRatio}× (${f(r.cpu.ratio)}×)`, verdict(r.cpu.ratio <= SPOOL_TARGETS.cpuRatio)],
  ];
}
