"use strict";
/**
 * [patch:task-progress-appends] Task progress of a growing transcript from its new lines only (added
 * to the tree by the build-time patch `task-progress-appends`; source kept in
 * patches/runtime/task-progress-appends.js of the patch repository).
 *
 * Upstream's parseTranscript (server/lib/task-progress.js) caches a transcript's observations by
 * size and mtime. A live agent's transcript grows with every hook event, so every Sessions and
 * Dashboard reload read and JSON-parsed each active session's whole transcript again (up to 32 MB,
 * synchronously on the event loop). This keeps, per (file, owner), the observations and the tool
 * calls still waiting for their results up to the last complete line, and parses only what was
 * appended since. The result is what upstream's full parse returns for the same bytes:
 *   - lines are numbered from the file's start, empty lines skipped, a trailing "\r" dropped;
 *   - a trailing line without its "\n" is parsed as upstream does, but not kept: it is parsed again
 *     once complete;
 *   - a file that is not the same file grown (another inode, shorter, or different bytes before
 *     the kept offset) is parsed from its start;
 *   - where upstream reads only a window (a file over its scan limit, a line over its line limit),
 *     this returns null and upstream's own parse runs.
 * The per-line work is upstream's: its observationsFromEntry and toolObservation, passed in.
 */

const fs = require("fs");

const READ_CHUNK_BYTES = 1024 * 1024;
const CHECK_BYTES = 64;

/**
 * @param {object} upstream
 * @param {(entry: any, line: number, owner: any) => any[]} upstream.observationsFromEntry
 * @param {(tool: any, input: any, output: any, context: object) => any} upstream.toolObservation
 * @param {number} upstream.maxScanBytes files larger than this: null (upstream reads a tail window)
 * @param {number} upstream.maxLineBytes a line longer than this: null (upstream drops part of it)
 * @param {number} upstream.maxEntries transcripts kept (least recently used dropped)
 */
function createTaskProgressAppends(upstream) {
  const { observationsFromEntry, toolObservation, maxScanBytes, maxLineBytes, maxEntries } = upstream;
  /** key -> { dev, ino, size, mtimeMs, offset, lineNumber, check, observations, pendingCalls, result } */
  const states = new Map();
  const counters = { full: 0, appended: 0, unchanged: 0, upstream: 0 };

  // Upstream's line handler, over a state: results matched to their calls, tool calls remembered.
  function onLine(state, line, lineNumber, owner) {
    if (!line) return;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    for (const observation of observationsFromEntry(entry, lineNumber, owner)) {
      if (observation.kind === "result") {
        const call = state.pendingCalls.get(observation.task.callId);
        if (!call) continue;
        const enriched = toolObservation(call.tool, call.input, observation.task.output, {
          timestamp: observation.timestamp || call.timestamp,
          line: observation.line,
          ownerId: owner.id,
          ownerType: owner.type,
        });
        if (enriched) state.observations.push(enriched);
        state.pendingCalls.delete(observation.task.callId);
        continue;
      }
      state.observations.push(observation);
    }
    const blocks = entry?.message?.content;
    if (!Array.isArray(blocks)) return;
    for (const block of blocks) {
      if (block?.type === "tool_use" && block.id) {
        state.pendingCalls.set(block.id, { tool: block.name, input: block.input, timestamp: entry.timestamp || null });
      }
    }
  }

  function readAt(fd, position, length) {
    const buffer = Buffer.allocUnsafe(length);
    let read = 0;
    while (read < length) {
      const n = fs.readSync(fd, buffer, read, length - read, position + read);
      if (n <= 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  }

  /** The kept state still describes this file's first `offset` bytes (same file, grown in place). */
  function stillPrefix(fd, state, stat) {
    if (stat.dev !== state.dev || stat.ino !== state.ino || stat.size < state.offset) return false;
    const at = state.offset - state.check.length;
    return readAt(fd, at, state.check.length).equals(state.check);
  }

  function keep(key, state) {
    states.delete(key);
    states.set(key, state);
    while (states.size > maxEntries) states.delete(states.keys().next().value);
  }

  /** Observations of filePath for owner (upstream's parseTranscript result), or null: let upstream parse. */
  function parse(filePath, owner) {
    let fd;
    try {
      fd = fs.openSync(filePath, "r");
    } catch {
      return null; // upstream's stat fails too and answers []
    }
    try {
      const stat = fs.fstatSync(fd);
      const key = `${filePath}:${owner.id}:${owner.type}`;
      if (stat.size > maxScanBytes) {
        states.delete(key);
        counters.upstream++;
        return null;
      }
      let state = states.get(key);
      if (state && state.size === stat.size && state.mtimeMs === stat.mtimeMs && state.ino === stat.ino) {
        keep(key, state);
        counters.unchanged++;
        return state.result;
      }
      if (state && stillPrefix(fd, state, stat)) {
        counters.appended++;
        // A list handed out before stays as it was: the new lines go into a copy.
        state.observations = state.observations.slice();
      } else {
        state = { offset: 0, lineNumber: 0, check: Buffer.alloc(0), observations: [], pendingCalls: new Map() };
        counters.full++;
      }
      // The new complete lines, in chunks; `rest` is a line still without its "\n".
      let position = state.offset;
      let rest = Buffer.alloc(0);
      while (position < stat.size) {
        const chunk = readAt(fd, position, Math.min(READ_CHUNK_BYTES, stat.size - position));
        if (chunk.length === 0) break;
        position += chunk.length;
        const bytes = rest.length ? Buffer.concat([rest, chunk]) : chunk;
        let start = 0;
        for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, start)) {
          if (i - start > maxLineBytes) return giveUp(key);
          state.lineNumber++;
          onLine(state, bytes.toString("utf8", start, i).replace(/\r$/, ""), state.lineNumber, owner);
          start = i + 1;
        }
        rest = bytes.subarray(start);
        if (rest.length > maxLineBytes) return giveUp(key);
      }
      state.offset = position - rest.length;
      state.check = Buffer.from(readAt(fd, Math.max(0, state.offset - CHECK_BYTES), Math.min(CHECK_BYTES, state.offset)));
      state.dev = stat.dev;
      state.ino = stat.ino;
      state.size = stat.size;
      state.mtimeMs = stat.mtimeMs;
      state.result = state.observations;
      if (rest.length > 0) {
        // Upstream parses a last line that has no "\n" yet; so do we, on copies, and read it again later.
        const draft = { observations: state.observations.slice(), pendingCalls: new Map(state.pendingCalls) };
        onLine(draft, rest.toString("utf8").replace(/\r$/, ""), state.lineNumber + 1, owner);
        state.result = draft.observations;
      }
      keep(key, state);
      return state.result;
    } catch {
      // Upstream's own parse answers for it (and fails the same way, if it does).
      states.delete(`${filePath}:${owner.id}:${owner.type}`);
      return null;
    } finally {
      fs.closeSync(fd);
    }
  }

  function giveUp(key) {
    states.delete(key);
    counters.upstream++;
    return null;
  }

  return {
    parse,
    clear: () => states.clear(),
    stats: () => ({ ...counters, transcripts: states.size }),
  };
}

module.exports = { createTaskProgressAppends };
