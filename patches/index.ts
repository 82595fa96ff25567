// The patches, in the order they are applied. Each later patch sees the output of the earlier ones.
import type { Patch } from "./define-patch.ts";
import immediateTransactions from "./immediate-transactions.ts";
import busyTimeout from "./busy-timeout.ts";
import turnDurationsOnce from "./turn-durations-once.ts";
import transcriptOutsideLock from "./transcript-outside-lock.ts";
import writeQueue from "./write-queue.ts";
import parseTranscriptsOffLoop from "./parse-transcripts-off-loop.ts";
import atomicWatchdog from "./atomic-watchdog.ts";
import sessionEndIsFinal from "./session-end-is-final.ts";
import validateHookInput from "./validate-hook-input.ts";
import coalesceBroadcasts from "./coalesce-broadcasts.ts";
import indexListQueries from "./index-list-queries.ts";
import listEventsByRecency from "./list-events-by-recency.ts";
import sessionsPageFirst from "./sessions-page-first.ts";
import agentsByLastActivity from "./agents-by-last-activity.ts";
import spoolHookEvents from "./spool-hook-events.ts";
import coalescePageReloads from "./coalesce-page-reloads.ts";
import dashboardAgentsOneRequest from "./dashboard-agents-one-request.ts";
import boundSessionDetail from "./bound-session-detail.ts";
import taskProgressAppends from "./task-progress-appends.ts";
import batchWsFrames from "./batch-ws-frames.ts";

export const patches: Patch[] = [
  immediateTransactions,
  busyTimeout,
  turnDurationsOnce,
  transcriptOutsideLock,
  writeQueue,
  parseTranscriptsOffLoop,
  atomicWatchdog,
  sessionEndIsFinal,
  validateHookInput,
  coalesceBroadcasts,
  indexListQueries,
  listEventsByRecency,
  sessionsPageFirst,
  agentsByLastActivity,
  spoolHookEvents,
  coalescePageReloads,
  dashboardAgentsOneRequest,
  boundSessionDetail,
  taskProgressAppends,
  batchWsFrames,
];
