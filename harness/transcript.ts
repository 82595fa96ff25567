// Claude-Code-style JSONL transcript lines, written the way Claude Code writes them:
// one JSON object per line — user prompts, assistant messages carrying message.model and
// message.usage, tool results (often large), and a
// {"type":"system","subtype":"turn_duration","durationMs":N,"timestamp":...} line at the end of
// each turn. Everything is deterministic for a given seed so runs are comparable.
import { randomUUID } from "node:crypto";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, renameSync, statSync, writeSync } from "node:fs";
import path from "node:path";

export const MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001"] as const;
const CC_VERSION = "2.0.14";

/** Small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  "the a function returns value error test file module import export const let await async request response database session agent token cache event handler server client build config path".split(
    " ",
  );

function filler(rand: () => number, bytes: number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const w = WORDS[Math.floor(rand() * WORDS.length)]!;
    parts.push(w);
    n += w.length + 1;
    if (rand() < 0.08) {
      parts.push("\n");
      n += 1;
    }
  }
  return parts.join(" ");
}

export interface TranscriptContext {
  sessionId: string;
  cwd: string;
  rand: () => number;
  /** uuid of the previous line (Claude Code chains lines via parentUuid). */
  parentUuid: string | null;
  /** Model used for this session's assistant lines (switches occasionally, like /model). */
  model: string;
  /** Clock for the lines' timestamps (ms since epoch). */
  clock: () => number;
}

function base(ctx: TranscriptContext, type: string): Record<string, unknown> {
  const uuid = randomUUID();
  const line = {
    parentUuid: ctx.parentUuid,
    isSidechain: false,
    userType: "external",
    cwd: ctx.cwd,
    sessionId: ctx.sessionId,
    version: CC_VERSION,
    gitBranch: "main",
    type,
    uuid,
    timestamp: new Date(ctx.clock()).toISOString(),
  };
  ctx.parentUuid = uuid;
  return line;
}

function usage(rand: () => number, outputTokens: number): Record<string, unknown> {
  const cacheWrite = Math.floor(rand() * 3000);
  return {
    input_tokens: 3 + Math.floor(rand() * 40),
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: 10_000 + Math.floor(rand() * 60_000),
    cache_creation: { ephemeral_5m_input_tokens: cacheWrite, ephemeral_1h_input_tokens: 0 },
    output_tokens: outputTokens,
    service_tier: "standard",
  };
}

export function userPromptLine(ctx: TranscriptContext, prompt: string): string {
  return JSON.stringify({ ...base(ctx, "user"), message: { role: "user", content: prompt } });
}

export function assistantToolUseLine(
  ctx: TranscriptContext,
  toolUseId: string,
  toolName: string,
  input: Record<string, unknown>,
): string {
  const withThinking = ctx.rand() < 0.3;
  const content: unknown[] = [];
  if (withThinking) content.push({ type: "thinking", thinking: filler(ctx.rand, 200), signature: "sig" });
  content.push({ type: "tool_use", id: toolUseId, name: toolName, input });
  return assistantLine(ctx, content, "tool_use", 40 + Math.floor(ctx.rand() * 400));
}

export function toolResultLine(ctx: TranscriptContext, toolUseId: string, outputBytes: number): string {
  const out = filler(ctx.rand, outputBytes);
  return JSON.stringify({
    ...base(ctx, "user"),
    message: { role: "user", content: [{ tool_use_id: toolUseId, type: "tool_result", content: out, is_error: false }] },
    toolUseResult: { stdout: out.slice(0, 200), stderr: "", interrupted: false, isImage: false },
  });
}

export function assistantTextLine(ctx: TranscriptContext, text: string): string {
  return assistantLine(ctx, [{ type: "text", text }], "end_turn", 100 + Math.floor(ctx.rand() * 900));
}

/** An assistant message line as Claude Code writes it, with a `message.usage` block. */
function assistantLine(ctx: TranscriptContext, content: unknown[], stopReason: string, outputTokens: number): string {
  return JSON.stringify({
    ...base(ctx, "assistant"),
    message: {
      id: `msg_${randomUUID().replace(/-/g, "").slice(0, 24)}`,
      type: "message",
      role: "assistant",
      model: ctx.model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: usage(ctx.rand, outputTokens),
    },
    requestId: `req_${randomUUID().replace(/-/g, "").slice(0, 24)}`,
  });
}

export function turnDurationLine(ctx: TranscriptContext, durationMs: number): string {
  return JSON.stringify({
    ...base(ctx, "system"),
    subtype: "turn_duration",
    durationMs,
    isMeta: false,
  });
}

export const TOOLS: ReadonlyArray<{ name: string; input: (rand: () => number) => Record<string, unknown> }> = [
  { name: "Read", input: (r) => ({ file_path: `/src/module${Math.floor(r() * 50)}.ts` }) },
  { name: "Bash", input: (r) => ({ command: `npm test -- --grep case${Math.floor(r() * 20)}`, description: "Run tests" }) },
  { name: "Edit", input: (r) => ({ file_path: `/src/module${Math.floor(r() * 50)}.ts`, old_string: "a", new_string: "b" }) },
  { name: "Grep", input: (r) => ({ pattern: `handler${Math.floor(r() * 9)}`, path: "/src" }) },
  { name: "Glob", input: () => ({ pattern: "**/*.ts" }) },
  { name: "Write", input: (r) => ({ file_path: `/src/new${Math.floor(r() * 50)}.ts`, content: "export {};" }) },
];

/**
 * Write (once) a template transcript of about `bytes` bytes holding `turns` finished turns of
 * history, dated an hour back. Agents that "start big" copy it, so every such agent's first
 * hook makes the server parse several MB. Cached by size/turns under `dir`.
 */
export function ensureTemplate(dir: string, bytes: number, turns: number, seed = 42): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `history-${bytes}-${turns}-${seed}.jsonl`);
  if (existsSync(file) && statSync(file).size >= bytes * 0.9) return file;
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w");
  let t = Date.now() - 3_600_000;
  const ctx: TranscriptContext = {
    sessionId: randomUUID(),
    cwd: "/home/dev/project",
    rand: rng(seed),
    parentUuid: null,
    model: MODELS[0],
    clock: () => (t += 1500),
  };
  let written = 0;
  const w = (line: string) => {
    written += writeSync(fd, line + "\n");
  };
  const perTurn = bytes / Math.max(1, turns);
  for (let turn = 0; turn < turns; turn++) {
    const turnStart = t;
    w(userPromptLine(ctx, `Earlier request number ${turn + 1}: ${filler(ctx.rand, 80)}`));
    const goal = written + perTurn;
    while (written < goal) {
      const tool = TOOLS[Math.floor(ctx.rand() * TOOLS.length)]!;
      const id = `toolu_${randomUUID().replace(/-/g, "").slice(0, 24)}`;
      w(assistantToolUseLine(ctx, id, tool.name, tool.input(ctx.rand)));
      w(toolResultLine(ctx, id, 4000 + Math.floor(ctx.rand() * 28_000)));
    }
    w(assistantTextLine(ctx, filler(ctx.rand, 300)));
    w(turnDurationLine(ctx, t - turnStart));
  }
  closeSync(fd);
  renameSync(tmp, file);
  return file;
}

/** Start an agent's transcript: a copy of a history template, or an empty file. */
export function startTranscript(file: string, template: string | null): void {
  mkdirSync(path.dirname(file), { recursive: true });
  if (template) copyFileSync(template, file);
  else closeSync(openSync(file, "w"));
}
