// One simulated Claude Code agent: its own session and transcript, a realistic hook sequence
// (SessionStart, then turns of UserPromptSubmit / PreToolUse+PostToolUse pairs / a permission
// Notification / a subagent with SubagentStop / Stop, then SessionEnd), appending to its
// transcript before each hook exactly as Claude Code does before firing it.
import { appendFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { postBlocking, postFireAndForget, type SendOutcome } from "./hook-client.ts";
import type { AgentSpec, AgentSummary, EventRecord, HookType, WorkerConfig } from "./protocol.ts";
import {
  MODELS,
  TOOLS,
  assistantTextLine,
  assistantToolUseLine,
  rng,
  startTranscript,
  toolResultLine,
  turnDurationLine,
  userPromptLine,
  type TranscriptContext,
} from "./transcript.ts";

/** Lay the agent's transcript down before the phase starts (a copy of a history template, or empty). */
export function prepareAgent(spec: AgentSpec): void {
  startTranscript(spec.transcriptPath, spec.template);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Events a turn needs at minimum (UserPromptSubmit, one tool pair, Stop) plus the closing SessionEnd. */
const MIN_TURN_EVENTS = 4;

export async function runAgent(
  spec: AgentSpec,
  cfg: WorkerConfig,
  startAt: number,
  record: (e: EventRecord) => void,
  onSend: () => void = () => {},
): Promise<AgentSummary> {
  const rand = rng(spec.seed);
  const ctx: TranscriptContext = {
    sessionId: spec.sessionId,
    cwd: spec.cwd,
    rand,
    parentUuid: null,
    model: MODELS[spec.index % MODELS.length]!,
    clock: () => Date.now(),
  };
  const pending: Promise<void>[] = [];
  // The patched hook client appends each event to its spool before sending it (spool-hook-events):
  // the tree's own runtime module, called as scripts/hook-handler.js calls it.
  const spool = cfg.spool ? (createRequire(import.meta.url)(cfg.spool.module) as { spoolHookEvent(t: string, d: object, env: NodeJS.ProcessEnv): object }) : null;
  const spoolEnv = cfg.spool ? { ...process.env, ...cfg.spool.env } : {};
  let seq = 0;
  let sent = 0;
  let aborted = false;
  let turnsCompleted = 0;
  let sessionEndId: string | null = null;
  const elapsed = () => Date.now() - startAt;
  const write = (line: string) => appendFileSync(spec.transcriptPath, line + "\n");

  const think = async () => {
    if (cfg.mode === "saturation" || cfg.thinkMs <= 0) return;
    await sleep(cfg.thinkMs * (0.3 + 1.4 * rand()));
  };

  const send = async (hookType: HookType, extra: Record<string, unknown> = {}, opts: { think?: boolean } = {}): Promise<string | null> => {
    if (elapsed() > cfg.hardStopMs) {
      aborted = true;
      return null;
    }
    const id = `${cfg.runTag}.${spec.index}.${seq++}`;
    // sent_at_ms: the send-time stamp the generated hook client (patch session-end-is-final)
    // adds; upstream's server ignores the extra field.
    const data = {
      session_id: spec.sessionId,
      transcript_path: spec.transcriptPath,
      cwd: spec.cwd,
      hook_event_name: hookType,
      permission_mode: "default",
      ...extra,
      bench_event_id: id,
      sent_at_ms: Date.now(),
    };
    const body = JSON.stringify({ hook_type: hookType, data: spool ? spool.spoolHookEvent(hookType, data, spoolEnv) : data });
    const t = elapsed();
    const base = { id, agent: spec.index, sessionId: spec.sessionId, hookType, t };
    const rec = (o: SendOutcome, sendMs?: number) =>
      record({ ...base, status: o.status, latencyMs: o.latencyMs, timedOut: o.timedOut, closedUnanswered: o.closedUnanswered, error: o.error, sendMs });
    sent++;
    onSend();
    if (cfg.mode === "fire-and-forget") {
      const deliver = async () => {
        if (cfg.deliveryJitterMs > 0) await sleep(rand() * cfg.deliveryJitterMs);
        const f = postFireAndForget(cfg.port, body, cfg.observeMs);
        const s = await f.sent;
        await f.answer.then((o) => rec(o, s.sendMs));
      };
      pending.push(deliver());
    } else {
      rec(await postBlocking(cfg.port, body, cfg.timeoutMs));
    }
    if (opts.think !== false) await think();
    return id;
  };

  await send("SessionStart", { source: "startup" });

  let turn = 0;
  const remaining = () => cfg.eventsPerAgent - sent - 1; // keep one for SessionEnd
  while (!aborted && elapsed() < cfg.durationMs && remaining() >= MIN_TURN_EVENTS - 1) {
    const turnStart = Date.now();
    if (rand() < 0.1) ctx.model = MODELS[Math.floor(rand() * MODELS.length)]!; // a /model switch
    const prompt = `Task ${turn + 1} for agent ${spec.index}: fix the failing ${TOOLS[turn % TOOLS.length]!.name} step`;
    write(userPromptLine(ctx, prompt));
    await send("UserPromptSubmit", { prompt });

    let pairs = 2 + Math.floor(rand() * 5);
    let first = true;
    // Each tool pair needs 2 events; Stop needs 1 (SessionEnd is already reserved).
    while (!aborted && pairs > 0 && remaining() >= 3) {
      pairs--;
      // First turn: spawn one subagent when the budget allows (Agent pair + one inner pair + SubagentStop).
      if (turn === 0 && first && remaining() >= 9) {
        const agentUse = `toolu_${randomUUID().replace(/-/g, "").slice(0, 24)}`;
        const input = { description: "Explore the code base", subagent_type: "Explore", prompt: "Find where sessions are written" };
        write(assistantToolUseLine(ctx, agentUse, "Agent", input));
        await send("PreToolUse", { tool_name: "Agent", tool_input: input, tool_use_id: agentUse });
        const inner = `toolu_${randomUUID().replace(/-/g, "").slice(0, 24)}`;
        await send("PreToolUse", { tool_name: "Grep", tool_input: { pattern: "INSERT INTO sessions" }, tool_use_id: inner });
        await send("PostToolUse", {
          tool_name: "Grep",
          tool_input: { pattern: "INSERT INTO sessions" },
          tool_response: { numFiles: 3 },
          tool_use_id: inner,
        });
        await send("SubagentStop", { agent_type: "Explore", stop_hook_active: false });
        write(toolResultLine(ctx, agentUse, 1500));
        await send("PostToolUse", { tool_name: "Agent", tool_input: input, tool_response: { status: "completed" }, tool_use_id: agentUse });
        first = false;
        continue;
      }
      const tool = TOOLS[Math.floor(rand() * TOOLS.length)]!;
      const input = tool.input(rand);
      const toolUseId = `toolu_${randomUUID().replace(/-/g, "").slice(0, 24)}`;
      write(assistantToolUseLine(ctx, toolUseId, tool.name, input));
      await send("PreToolUse", { tool_name: tool.name, tool_input: input, tool_use_id: toolUseId });
      // A permission prompt between PreToolUse and PostToolUse (always once per session when affordable).
      if (remaining() >= 3 && ((turn === 0 && first) || rand() < 0.12)) {
        await send("Notification", { message: `Claude needs your permission to use ${tool.name}` });
      }
      write(toolResultLine(ctx, toolUseId, 500 + Math.floor(rand() * 7500)));
      await send("PostToolUse", { tool_name: tool.name, tool_input: input, tool_response: { ok: true }, tool_use_id: toolUseId });
      first = false;
    }
    if (aborted) break;
    write(assistantTextLine(ctx, `Done with task ${turn + 1}.`));
    write(turnDurationLine(ctx, Math.max(1, Date.now() - turnStart)));
    turnsCompleted++;
    // The session's last Stop is followed at once by SessionEnd (the agent exits when done).
    const last = !(elapsed() < cfg.durationMs && remaining() - 1 >= MIN_TURN_EVENTS - 1);
    await send("Stop", { stop_hook_active: false }, { think: !last });
    turn++;
  }
  if (!aborted) sessionEndId = await send("SessionEnd", { reason: "exit" });
  await Promise.all(pending);
  return {
    index: spec.index,
    sessionId: spec.sessionId,
    transcriptPath: spec.transcriptPath,
    eventsSent: sent,
    turnsCompleted,
    turnDurationLines: spec.templateTurns + turnsCompleted,
    sessionEndId,
    aborted,
  };
}
