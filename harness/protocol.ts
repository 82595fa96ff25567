// Messages and records shared by the agents' driver (harness/agents.ts) and its child processes.

export const MODES = ["blocking", "fire-and-forget", "saturation"] as const;
export type Mode = (typeof MODES)[number];

export const HOOK_TYPES = [
  "SessionStart",
  "UserPromptSubmit",
  "PreToolUse",
  "PostToolUse",
  "Notification",
  "SubagentStop",
  "Stop",
  "SessionEnd",
] as const;
export type HookType = (typeof HOOK_TYPES)[number];

export interface AgentSpec {
  index: number;
  sessionId: string;
  transcriptPath: string;
  cwd: string;
  /** History template to copy as the transcript's starting content (several MB), or null. */
  template: string | null;
  /** turn_duration lines already present in the template. */
  templateTurns: number;
  seed: number;
}

export interface WorkerConfig {
  port: number;
  mode: Mode;
  agents: AgentSpec[];
  /** Upper bound of hook events one agent sends (the session is always closed within it). */
  eventsPerAgent: number;
  /** After this many ms agents start no new turn and close their session. */
  durationMs: number;
  /** Absolute bound: after this many ms agents send nothing more. */
  hardStopMs: number;
  /** Mean think time between two hook events (0 in saturation mode). */
  thinkMs: number;
  /** Blocking client timeout (upstream v1: 3000 ms). */
  timeoutMs: number;
  /** How long the fire-and-forget observer waits for an answer it does not need. */
  observeMs: number;
  /**
   * Fire-and-forget only: each request is written 0..deliveryJitterMs after it was stamped, the
   * variable delay between a hook process stamping its event and its bytes reaching the server
   * under load (separate processes, separate connections: nothing keeps them in order).
   */
  deliveryJitterMs: number;
  /** Prefix of every event id in this phase. */
  runTag: string;
  /** Report counts to the parent every this many ms (`npm run demo`'s progress line; default: never). */
  progressMs?: number;
  /** Spool each event first, as the patched hook client does (spool-hook-events); default: no spool. */
  spool?: SpoolClient;
}

/** The patched hook client's spool: `module` is a tree's server/patch-runtime/hook-spool.js, `env` its environment (AGENT_MONITOR_SPOOL_DIR, …). */
export interface SpoolClient {
  module: string;
  env: Record<string, string>;
}

export interface EventRecord {
  id: string;
  agent: number;
  sessionId: string;
  hookType: HookType;
  /** ms since the phase's common start when the request started. */
  t: number;
  status: number;
  latencyMs: number;
  timedOut: boolean;
  /** fire-and-forget only: the server closed the connection without an answer the client never waited for. */
  closedUnanswered?: boolean;
  error?: string;
  /** fire-and-forget only: ms until the bytes were flushed (what the hook process waits for). */
  sendMs?: number;
}

export interface AgentSummary {
  index: number;
  sessionId: string;
  transcriptPath: string;
  eventsSent: number;
  turnsCompleted: number;
  /** turn_duration lines in the transcript at the end (template history + this run). */
  turnDurationLines: number;
  sessionEndId: string | null;
  aborted: boolean;
}

/** Running totals of one worker (or, summed, of a phase). */
export interface ProgressCounts {
  /** Hook requests started. */
  sent: number;
  /** Requests with an outcome (an answer, a timeout or an error). */
  settled: number;
  /** Answered 200: in the patched monitor, committed to the database. */
  ok: number;
}

export type ParentToWorker = { type: "config"; config: WorkerConfig } | { type: "go"; startAt: number };

export type WorkerToParent =
  | { type: "ready" }
  | { type: "result"; events: EventRecord[]; agents: AgentSummary[] }
  | { type: "progress"; counts: ProgressCounts }
  | { type: "error"; message: string };

export interface CompanionCounts {
  transactions: number;
  committed: number;
  busy: number;
  /** busy split by extended code (SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, ...). */
  busyCodes: Record<string, number>;
  otherErrors: number;
  lastError: string | null;
  maxTxMs: number;
}

export type ParentToCompanion = { type: "snapshot" } | { type: "stop" };
export type CompanionToParent =
  | { type: "ready" }
  | { type: "counts"; counts: CompanionCounts; final: boolean }
  | { type: "error"; message: string };
