// The simulated agents' driver, shared by the bench (harness/workload.ts, `npm run demo`, the history
// maker) and the runtime tests: N agents (harness/agent.ts) spread over a few worker processes
// (harness/agent-worker.ts), each with its own session and transcript.
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { cacheDir } from "../scripts/lib/paths.ts";
import { forkTs, nextMessage } from "./children.ts";
import type { AgentSpec, AgentSummary, EventRecord, Mode, ProgressCounts, SpoolClient, WorkerConfig, WorkerToParent } from "./protocol.ts";
import { ensureTemplate } from "./transcript.ts";

export type PhaseConfig = Omit<WorkerConfig, "agents" | "mode" | "thinkMs" | "runTag">;

export function phaseConfig(
  port: number,
  o: { durationMs: number; eventsPerAgent?: number; timeoutMs?: number; deliveryJitterMs?: number; progressMs?: number; spool?: SpoolClient },
): PhaseConfig {
  return {
    port,
    eventsPerAgent: o.eventsPerAgent ?? 1_000_000,
    durationMs: o.durationMs,
    hardStopMs: o.durationMs + 30_000,
    timeoutMs: o.timeoutMs ?? 3000,
    observeMs: 15_000,
    deliveryJitterMs: o.deliveryJitterMs ?? 50,
    progressMs: o.progressMs,
    ...(o.spool ? { spool: o.spool } : {}),
  };
}

export async function runPhase(
  cfgBase: PhaseConfig,
  mode: Mode,
  agentSpecs: AgentSpec[],
  workers: number,
  thinkMs: number,
  runTag: string,
  onProgress?: (counts: ProgressCounts) => void,
): Promise<{ events: EventRecord[]; agents: AgentSummary[] }> {
  const nWorkers = Math.max(1, Math.min(workers, agentSpecs.length));
  const children: ChildProcess[] = [];
  const perWorker: ProgressCounts[] = [];
  try {
    const groups: AgentSpec[][] = Array.from({ length: nWorkers }, () => []);
    agentSpecs.forEach((a, i) => groups[i % nWorkers]!.push(a));
    for (const group of groups) {
      const child = forkTs("harness/agent-worker.ts");
      children.push(child);
      if (onProgress) {
        const slot = perWorker.push({ sent: 0, settled: 0, ok: 0 }) - 1;
        child.on("message", (m: WorkerToParent) => {
          if (m.type !== "progress") return;
          perWorker[slot] = m.counts;
          onProgress(perWorker.reduce((a, c) => ({ sent: a.sent + c.sent, settled: a.settled + c.settled, ok: a.ok + c.ok }), { sent: 0, settled: 0, ok: 0 }));
        });
      }
      const config: WorkerConfig = { ...cfgBase, mode, agents: group, thinkMs: mode === "saturation" ? 0 : thinkMs, runTag };
      const ready = nextMessage(child, (m) => ((m as WorkerToParent).type === "ready" ? true : undefined), "worker ready");
      child.send({ type: "config", config });
      await ready;
    }
    const startAt = Date.now() + 300;
    const results = children.map((child) =>
      nextMessage(
        child,
        (m) => {
          const msg = m as WorkerToParent;
          return msg.type === "result" ? msg : undefined;
        },
        "worker result",
        cfgBase.hardStopMs + cfgBase.observeMs + 60_000,
      ),
    );
    for (const child of children) child.send({ type: "go", startAt });
    const done = await Promise.all(results);
    return { events: done.flatMap((d) => d.events), agents: done.flatMap((d) => d.agents).sort((a, b) => a.index - b.index) };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  }
}

/** N agents of one phase: own session, cwd and transcript path under workDir; every bigEvery-th resumes the history template. */
export function agentSpecs(o: { workDir: string; runTag: string; agents: number; phase: number; bigEvery: number; template: string | null; bigTurns: number }): AgentSpec[] {
  const specs: AgentSpec[] = Array.from({ length: o.agents }, (_, i) => {
    const sessionId = randomUUID();
    const big = o.bigEvery > 0 && i % o.bigEvery === 0;
    const cwd = `/home/dev/bench-${o.runTag}-agent-${i}`;
    return {
      index: i,
      sessionId,
      cwd,
      transcriptPath: path.join(o.workDir, "transcripts", cwd.replace(/[/.]/g, "-"), `${sessionId}.jsonl`),
      template: big ? o.template : null,
      templateTurns: big ? o.bigTurns : 0,
      seed: 1000 * (o.phase + 1) + i,
    };
  });
  for (const s of specs) mkdirSync(path.dirname(s.transcriptPath), { recursive: true });
  return specs;
}

export interface DriveOptions {
  /** Port of a running dashboard on 127.0.0.1. */
  port: number;
  agents: number;
  mode: Mode;
  durationMs: number;
  thinkMs?: number;
  workers?: number;
  bigEvery?: number;
  bigBytes?: number;
  bigTurns?: number;
  /** Where the agents' transcripts go (the server reads them by path). */
  workDir: string;
  progressMs?: number;
  onProgress?: (counts: ProgressCounts) => void;
  /** Cap on hook events per agent (default: none, the phase is time-bound). */
  eventsPerAgent?: number;
  /** Fire-and-forget: write each request 0..this many ms after stamping it (default 50). */
  deliveryJitterMs?: number;
  /** The patched hook client's spool: every event is appended to it before it is sent (spool-hook-events). */
  spool?: SpoolClient;
}

/**
 * One phase of N agents against a dashboard someone else runs (`npm run demo`): the same agents,
 * workers and hook clients as runWorkload, without its server, companion or database checks.
 */
export async function driveAgents(o: DriveOptions): Promise<{ events: EventRecord[]; agents: AgentSummary[] }> {
  const bigEvery = o.bigEvery ?? 4;
  const bigTurns = o.bigTurns ?? 8;
  const template = bigEvery > 0 ? ensureTemplate(path.join(cacheDir, "bench", "transcripts"), o.bigBytes ?? 4 * 1024 * 1024, bigTurns) : null;
  const runTag = `demo-${randomUUID().slice(0, 8)}`;
  const specs = agentSpecs({ workDir: o.workDir, runTag, agents: o.agents, phase: 0, bigEvery, template, bigTurns });
  const cfg = phaseConfig(o.port, {
    durationMs: o.durationMs,
    eventsPerAgent: o.eventsPerAgent,
    deliveryJitterMs: o.deliveryJitterMs,
    progressMs: o.onProgress ? (o.progressMs ?? 500) : undefined,
    spool: o.spool,
  });
  return runPhase(cfg, o.mode, specs, o.workers ?? 3, o.thinkMs ?? 100, runTag, o.onProgress);
}
