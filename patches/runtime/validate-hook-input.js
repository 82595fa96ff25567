"use strict";
// [patch:validate-hook-input] Added by the agent-monitor patch pipeline (not upstream code).
//
// POST /api/hooks/event trusted the shape of its body: a numeric hook_type was stored as an event
// type, an object session_id or hook_type and a tool_input nested thousands of levels deep threw
// inside the write (500: a client cannot tell a bad request from a broken server), and any
// sent_at_ms was believed (an enormous one on a SessionEnd made that session final for good).
// check(body) looks at exactly what the route and processEvent read, before anything is read or
// enqueued, and returns a 400 problem naming the field; a malformed sent_at_ms is dropped instead
// (the event is kept, unstamped) and counted.

const LIMITS = Object.freeze({
  hookTypeMax: 64, // Claude Code hook names: PreToolUse, SubagentStop, ...
  sessionIdMax: 256, // a UUID is 36
  pathMax: 4096, // PATH_MAX on Linux
  depthMax: 64, // data is level 1; real hook payloads nest a handful of levels
  stampSkewMs: 24 * 60 * 60 * 1000, // sent_at_ms more than a day away from our clock is not a send time
});

// Fields of data the server reads as a file path (fs calls, stored as the session's cwd).
const PATH_FIELDS = ["transcript_path", "cwd"];
// Fields of data it reads as text (.slice, .split, string comparisons, stored as names/summaries).
const STRING_FIELDS = ["tool_name", "session_name", "model", "source", "stop_reason", "message", "prompt", "description", "agent_type", "subagent_type"];
// Fields of data.tool_input it reads as text when a subagent is spawned.
const TOOL_INPUT_STRINGS = ["prompt", "description", "subagent_type"];
const STAMP = "sent_at_ms";

function kindOf(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `a string of ${v.length} characters`;
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function isPlainObject(v) {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const absent = (v) => v === undefined || v === null;
const problem = (field, message, code = "INVALID_INPUT") => ({ code, field, message });

/** The top-level key of `data` under which nesting exceeds `max` levels, or null. Iterative: never recurses. */
function tooDeep(data, max) {
  const stack = [];
  for (const key of Object.keys(data)) {
    const v = data[key];
    if (v !== null && typeof v === "object") stack.push([v, 2, key]);
  }
  while (stack.length > 0) {
    const [value, depth, top] = stack.pop();
    if (depth > max) return top;
    for (const key of Object.keys(value)) {
      const v = value[key];
      if (v !== null && typeof v === "object") stack.push([v, depth + 1, top]);
    }
  }
  return null;
}

/** True when `v` is a send time we can believe (ms since epoch, within a day of `now`). */
function plausibleStamp(v, now) {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && Math.abs(v - now) <= LIMITS.stampSkewMs;
}

/**
 * The first problem with a hook request body, or null when the route may go on. Drops a malformed
 * data.sent_at_ms in place (the event is then unstamped) and reports it through onIgnoredStamp.
 */
function checkHookBody(body, { now = Date.now(), onIgnoredStamp } = {}) {
  if (!isPlainObject(body)) return problem("body", `the request body must be a JSON object { hook_type, data }, got ${kindOf(body)}`);
  const { hook_type: hookType, data } = body;
  if (absent(hookType) || hookType === "") return problem("hook_type", 'hook_type is required (the hook event name, e.g. "PreToolUse")');
  if (typeof hookType !== "string" || hookType.length > LIMITS.hookTypeMax || !/^[A-Za-z]+$/.test(hookType)) {
    const got = typeof hookType === "string" ? JSON.stringify(hookType.slice(0, 40)) + (hookType.length > 40 ? "…" : "") : kindOf(hookType);
    return problem("hook_type", `hook_type must be a hook event name of 1-${LIMITS.hookTypeMax} letters (e.g. "PreToolUse"), got ${got}`);
  }
  if (absent(data)) return problem("data", "data is required (the hook's JSON payload, an object)");
  if (!isPlainObject(data)) return problem("data", `data must be a JSON object, got ${kindOf(data)}`);

  const sessionId = data.session_id;
  if (absent(sessionId) || sessionId === "") return problem("data.session_id", "session_id is required in data (a non-empty string)", "MISSING_SESSION");
  if (typeof sessionId !== "string" || sessionId.length > LIMITS.sessionIdMax) {
    return problem("data.session_id", `data.session_id must be a non-empty string of at most ${LIMITS.sessionIdMax} characters, got ${kindOf(sessionId)}`);
  }
  for (const field of PATH_FIELDS) {
    const v = data[field];
    if (absent(v)) continue;
    if (typeof v !== "string" || v.length > LIMITS.pathMax || v.includes("\0")) {
      return problem(`data.${field}`, `data.${field} must be a file path (a string of at most ${LIMITS.pathMax} characters without NUL), got ${kindOf(v)}`);
    }
  }
  for (const field of STRING_FIELDS) {
    if (!absent(data[field]) && typeof data[field] !== "string") return problem(`data.${field}`, `data.${field} must be a string, got ${kindOf(data[field])}`);
  }
  const toolInput = data.tool_input;
  if (!absent(toolInput)) {
    if (!isPlainObject(toolInput)) return problem("data.tool_input", `data.tool_input must be a JSON object, got ${kindOf(toolInput)}`);
    for (const field of TOOL_INPUT_STRINGS) {
      const v = toolInput[field];
      if (!absent(v) && typeof v !== "string") return problem(`data.tool_input.${field}`, `data.tool_input.${field} must be a string, got ${kindOf(v)}`);
    }
  }
  const deep = tooDeep(data, LIMITS.depthMax);
  if (deep !== null) return problem(`data.${deep}`, `data.${deep} is nested more than ${LIMITS.depthMax} levels deep; flatten it or leave it out`);

  if (STAMP in data && !plausibleStamp(data[STAMP], now)) {
    // Not a send time we can order by: treat the event as unstamped (upstream's behaviour) and keep it.
    delete data[STAMP];
    if (onIgnoredStamp) onIgnoredStamp();
  }
  return null;
}

/**
 * The route's door: rejected(req, res) answers a bad request 400 with upstream's error shape
 * ({ error: { code, message } }, plus the field) and returns true; otherwise returns false (having
 * dropped a malformed stamp). `count(name)` (the write queue's) tallies ignoredStamps and
 * rejectedInvalid for GET /api/hooks/write-queue/stats.
 */
function createHookInputCheck({ count = () => {}, now = Date.now } = {}) {
  count("ignoredStamps", 0);
  count("rejectedInvalid", 0);
  return {
    rejected(req, res) {
      const p = checkHookBody(req.body, { now: now(), onIgnoredStamp: () => count("ignoredStamps") });
      if (!p) return false;
      count("rejectedInvalid");
      res.status(400).json({ error: { code: p.code, message: p.message, field: p.field } });
      return true;
    },
  };
}

module.exports = { createHookInputCheck, checkHookBody, LIMITS };
