"use strict";
// [patch:parse-transcripts-off-loop] Added by the agent-monitor patch pipeline (not upstream code).
//
// Upstream's TranscriptCache parses a transcript synchronously on the event loop. The first read of
// a multi-MB transcript (a resumed or imported session) stalls every other request for tens of ms;
// several at once stall the server for half a second. This module does those first reads in a
// worker thread with its own TranscriptCache and hands the parsed entry to the main cache, so the
// main thread's extract() is a cache hit (or an incremental read of what was appended since).
//
// run(path, fn): calls fn() at once when nothing is pending for `path` and the transcript is
// already cached or small; otherwise after the worker has parsed it (a throw from a deferred fn is
// logged: fn must answer its own errors, as the hook route's promise chain does). Calls for one path run in
// the order they were made (a hook's events keep their arrival order), other paths are not held up.
// Any worker failure falls back to upstream's behaviour: fn() runs and the main thread reads.

const fs = require("fs");
const { Worker, isMainThread, parentPort, workerData } = require("worker_threads");

/** Worker side: parse with a TranscriptCache of its own, post the cache entry back. */
function serveWorker() {
  const TranscriptCache = require(workerData.cacheModule);
  const cache = new TranscriptCache();
  parentPort.on("message", ({ id, path }) => {
    let entry = null;
    try {
      cache.extract(path);
      entry = cache._cache.get(path) || null;
      cache._cache.delete(path); // the main thread keeps it; do not hold two copies
    } catch {
      entry = null;
    }
    parentPort.postMessage({ id, entry });
  });
}

const DEFAULT_MIN_BYTES = 256 * 1024;

function createTranscriptPrefetcher({ cache, cacheModule, minBytes = DEFAULT_MIN_BYTES, log = console }) {
  const pendingByPath = new Map();
  const waiting = new Map();
  const counters = { workerReads: 0, injected: 0, fallbacks: 0, direct: 0, queued: 0 };
  let worker = null;
  let broken = false;
  let closed = false;
  let nextId = 1;

  function startWorker() {
    if (worker || broken) return worker;
    try {
      worker = new Worker(__filename, { workerData: { agentMonitorTranscriptPrefetch: true, cacheModule } });
      worker.unref();
      worker.on("message", ({ id, entry }) => {
        const done = waiting.get(id);
        waiting.delete(id);
        if (done) done(entry);
      });
      const fail = (err) => {
        if (!broken && !closed) log.warn("[transcript-prefetch] worker unavailable, reading on the main thread:", err && err.message ? err.message : err);
        broken = true;
        worker = null;
        for (const done of waiting.values()) done(null);
        waiting.clear();
      };
      worker.on("error", fail);
      worker.on("exit", (code) => code !== 0 && fail(new Error(`worker exited with ${code}`)));
    } catch (err) {
      broken = true;
      log.warn("[transcript-prefetch] cannot start a worker, reading on the main thread:", err && err.message ? err.message : err);
    }
    return worker;
  }

  function needsWorker(path) {
    if (broken || !cache || !cache._cache || cache._cache.has(path)) return false;
    try {
      return fs.statSync(path).size >= minBytes;
    } catch {
      return false;
    }
  }

  function parseInWorker(path) {
    const w = startWorker();
    if (!w) return Promise.resolve();
    counters.workerReads++;
    return new Promise((resolve) => {
      const id = nextId++;
      waiting.set(id, (entry) => {
        // A read the main thread did meanwhile wins; otherwise hand over the worker's entry.
        if (entry && !cache._cache.has(path)) {
          if (typeof cache._set === "function") cache._set(path, entry);
          else cache._cache.set(path, entry);
          counters.injected++;
        } else if (!entry) {
          counters.fallbacks++;
        }
        resolve();
      });
      w.postMessage({ id, path });
    });
  }

  function run(path, fn) {
    if (typeof path !== "string" || path === "") return fn();
    const before = pendingByPath.get(path);
    if (!before && !needsWorker(path)) {
      counters.direct++;
      return fn();
    }
    counters.queued++;
    // Decided at its turn: an earlier call for the same path may have filled the cache by then.
    const turn = (before || Promise.resolve()).then(() => (needsWorker(path) ? parseInWorker(path) : undefined));
    pendingByPath.set(path, turn);
    turn.then(() => {
      if (pendingByPath.get(path) === turn) pendingByPath.delete(path);
    });
    return turn.then(fn).catch((err) => log.error("[transcript-prefetch]", err));
  }

  function stats() {
    return { ...counters, pending: pendingByPath.size, workerAvailable: !broken };
  }

  function close() {
    closed = true;
    broken = true;
    if (worker) worker.terminate().catch(() => {});
    worker = null;
  }

  return { run, stats, close };
}

if (!isMainThread && workerData && workerData.agentMonitorTranscriptPrefetch) serveWorker();

module.exports = { createTranscriptPrefetcher, DEFAULT_MIN_BYTES };
