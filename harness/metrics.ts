// Pure aggregation of what the agents saw (event records) and what the database holds.
import type { AgentSummary, CompanionCounts, EventRecord, Mode } from "./protocol.ts";
import type { DbPhaseFacts } from "./verify.ts";

/** Nearest-rank percentile of an unsorted list (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export interface WriteQueueStats {
  batches: number;
  events: number;
  transactions: number;
  lockHeldMs: { p50: number; p99: number; max: number };
}

/** What harness/server-probe.cjs measured in the server process over one phase. */
export interface ServerProbeSnapshot {
  windowMs: number;
  cpuMs: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number; samples: number; resolutionMs: number };
  gc: { count: number; totalMs: number; maxMs: number };
  /** POST /api/hooks/event inside the server: from the request event to the response's finish. */
  hookServerMs?: { count: number; p50: number; p99: number; max: number };
  /** The longest main-thread stalls (ms since the phase's window opened, length). */
  stalls: Array<{ atMs: number; ms: number }>;
}

export interface PhaseMetrics {
  mode: Mode;
  agents: number;
  eventsSent: number;
  /** Wall time of the phase: from the common start to the last answer/give-up. */
  wallMs: number;
  /** Events answered 200 per second of wall time. */
  eventsPerSec: number;
  ok200: number;
  non200: number;
  /** blocking/saturation: client gave up at its timeout; fire-and-forget: no answer within the observation window. */
  timeouts: number;
  /** fire-and-forget: the server closed the half-closed connection without answering (the client never waits). */
  closedUnanswered: number;
  connectionErrors: number;
  /** Answers by HTTP status ("0" = none). */
  statusCounts: Record<string, number>;
  /** First non-200 answer body or connection error seen (diagnostics). */
  sampleError: string | null;
  latencyMs: { p50: number; p99: number; max: number };
  /** fire-and-forget only: p99 of the time the hook process spends flushing its request. */
  sendP99Ms: number | null;
  missingAcked: number;
  missingSent: number;
  duplicateHookRows: number;
  /** Rows in the events table for this phase's sessions. */
  dbRows: number;
  rowsPerEvent: number;
  turnDurationRows: number;
  turnsExpected: number;
  sessionsEnded: number;
  sessionsActiveAfterEnd: number;
  sessionsNotCompleted: number;
  companionBusy: number;
  companionBusyCodes: Record<string, number>;
  companionTransactions: number;
  companionOtherErrors: number;
  companionLastError: string | null;
  /** null when the tree has no write-queue stats route (unpatched: 1 transaction per event). */
  writeQueue: { batches: number; events: number; transactions: number; transactionsPerEvent: number; lockHeldMs: WriteQueueStats["lockHeldMs"] } | null;
  agentsAborted: number;
  /** The server process over the phase (harness/server-probe.cjs); null when the probe did not report. */
  server: (ServerProbeSnapshot & { storedEvents: number; cpuMsPerStoredEvent: number }) | null;
}

export function diffCompanion(a: CompanionCounts, b: CompanionCounts): CompanionCounts {
  return {
    transactions: b.transactions - a.transactions,
    committed: b.committed - a.committed,
    busy: b.busy - a.busy,
    busyCodes: Object.fromEntries(
      Object.entries(b.busyCodes)
        .map(([code, n]) => [code, n - (a.busyCodes[code] ?? 0)] as const)
        .filter(([, n]) => n > 0),
    ),
    otherErrors: b.otherErrors - a.otherErrors,
    lastError: b.lastError !== a.lastError ? b.lastError : null,
    maxTxMs: b.maxTxMs,
  };
}

function sampleError(events: readonly EventRecord[]): string | null {
  const e = events.find((x) => x.status !== 200 && x.error);
  if (!e?.error) return null;
  const pre = /<pre>([\s\S]*?)<\/pre>/.exec(e.error);
  const text = (pre ? pre[1]! : e.error).replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim();
  return `${e.status || "no answer"}: ${text}`.slice(0, 200);
}

/** Distinct error messages in the server's stderr ("Error: database is locked" ×12), most frequent first. */
export function serverErrorSummary(stderr: string, limit = 5): Array<{ message: string; count: number }> {
  const counts = new Map<string, number>();
  for (const line of stderr.split("\n")) {
    const m = /^\s*(?:\w+:\s*)?((?:[A-Z]\w*)?Error(?: \[\w+\])?: .+)$/.exec(line);
    if (m) counts.set(m[1]!.slice(0, 160), (counts.get(m[1]!.slice(0, 160)) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([message, count]) => ({ message, count }));
}

export function summarizePhase(input: {
  mode: Mode;
  events: readonly EventRecord[];
  agents: readonly AgentSummary[];
  db: DbPhaseFacts;
  companion: CompanionCounts;
  writeQueueBefore: WriteQueueStats | null;
  writeQueueAfter: WriteQueueStats | null;
  server?: ServerProbeSnapshot | null;
}): PhaseMetrics {
  const { events, agents, db } = input;
  const ok = events.filter((e) => e.status === 200);
  const ff = input.mode === "fire-and-forget";
  // Fire-and-forget clients never wait: latency is only what could be observed on the half-closed
  // socket, and throughput is what reached the database by the time the last request was sent.
  const answeredOrGaveUp = events.filter((e) => e.status !== 0 || (e.timedOut && !ff));
  const latencies = answeredOrGaveUp.map((e) => e.latencyMs);
  const wallMs = ff
    ? events.reduce((m, e) => Math.max(m, e.t + (e.sendMs ?? 0)), 0)
    : events.reduce((m, e) => Math.max(m, e.t + e.latencyMs), 0);
  const throughputCount = ff ? events.filter((e) => db.presentIds.has(e.id)).length : ok.length;
  const stored = events.filter((e) => db.presentIds.has(e.id)).length;
  const missingAcked = ok.filter((e) => !db.presentIds.has(e.id)).length;
  const missingSent = events.filter((e) => !db.presentIds.has(e.id)).length;
  const sendTimes = events.filter((e) => e.sendMs !== undefined).map((e) => e.sendMs!);

  // A SessionEnd counts as acknowledged when answered 200 or, for fire-and-forget (whose client
  // never reads the answer), when it is in the database.
  const endAcked = new Set(
    events.filter((e) => e.hookType === "SessionEnd" && (e.status === 200 || (ff && db.presentIds.has(e.id)))).map((e) => e.sessionId),
  );
  const endSent = new Set(events.filter((e) => e.hookType === "SessionEnd").map((e) => e.sessionId));
  let activeAfterEnd = 0;
  let notCompleted = 0;
  for (const sid of endSent) {
    const status = db.sessionStatus.get(sid);
    if (endAcked.has(sid) && status === "active") activeAfterEnd++;
    if (status !== "completed") notCompleted++;
  }

  let writeQueue: PhaseMetrics["writeQueue"] = null;
  if (input.writeQueueAfter) {
    const b = input.writeQueueBefore ?? { batches: 0, events: 0, transactions: 0, lockHeldMs: { p50: 0, p99: 0, max: 0 } };
    const a = input.writeQueueAfter;
    const ev = a.events - b.events;
    const tx = a.transactions - b.transactions;
    writeQueue = {
      batches: a.batches - b.batches,
      events: ev,
      transactions: tx,
      transactionsPerEvent: ev > 0 ? tx / ev : Number.NaN,
      lockHeldMs: a.lockHeldMs,
    };
  }

  return {
    mode: input.mode,
    agents: agents.length,
    eventsSent: events.length,
    wallMs,
    eventsPerSec: wallMs > 0 ? throughputCount / (wallMs / 1000) : 0,
    ok200: ok.length,
    non200: events.filter((e) => e.status !== 0 && e.status !== 200).length,
    timeouts: events.filter((e) => e.timedOut).length,
    closedUnanswered: events.filter((e) => e.status === 0 && e.closedUnanswered).length,
    connectionErrors: events.filter((e) => e.status === 0 && !e.timedOut && !e.closedUnanswered).length,
    statusCounts: events.reduce<Record<string, number>>((acc, e) => ((acc[String(e.status)] = (acc[String(e.status)] ?? 0) + 1), acc), {}),
    sampleError: sampleError(events),
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.length ? Math.max(...latencies) : Number.NaN },
    sendP99Ms: sendTimes.length ? percentile(sendTimes, 99) : null,
    missingAcked,
    missingSent,
    duplicateHookRows: db.duplicateHookRows,
    dbRows: db.rows,
    rowsPerEvent: events.length ? db.rows / events.length : Number.NaN,
    turnDurationRows: db.turnDurationRows,
    turnsExpected: agents.reduce((s, a) => s + a.turnDurationLines, 0),
    sessionsEnded: endSent.size,
    sessionsActiveAfterEnd: activeAfterEnd,
    sessionsNotCompleted: notCompleted,
    companionBusy: input.companion.busy,
    companionBusyCodes: input.companion.busyCodes,
    companionTransactions: input.companion.transactions,
    companionOtherErrors: input.companion.otherErrors,
    companionLastError: input.companion.lastError,
    writeQueue,
    agentsAborted: agents.filter((a) => a.aborted).length,
    server: input.server ? { ...input.server, storedEvents: stored, cpuMsPerStoredEvent: stored > 0 ? input.server.cpuMs / stored : Number.NaN } : null,
  };
}
