"use strict";
/**
 * [patch:write-queue] Group commit for hook events (added to the tree by the build-time patch
 * `write-queue`; source kept in patches/runtime/write-queue.js of the patch repository).
 *
 * Requests enqueue an item; a setImmediate drain writes every queued item in ONE
 * `BEGIN IMMEDIATE` transaction with a SAVEPOINT per item:
 *   - an item whose `run` throws is rolled back to its savepoint — entirely and alone — and its
 *     promise rejects (status 500); the other items of the batch still commit;
 *   - every promise settles only after COMMIT returned, so a resolved promise means the item's
 *     rows are durable (synchronous = FULL, see below);
 *   - when the batch cannot begin or commit (SQLITE_BUSY beyond busy_timeout, I/O error), it is
 *     rolled back and retried a bounded number of times with backoff; then its promises reject
 *     with status 503. Nothing is ever resolved for an item that is not in the database.
 *   - broadcasts made while an item runs are held (holdBroadcasts) and sent after COMMIT; an
 *     item rolled back to its savepoint drops its broadcasts.
 * Between BEGIN and COMMIT the code is synchronous (no await), so no timer can run inside a batch.
 *
 * CommonJS, no dependencies, works with better-sqlite3 and with node:sqlite (compat wrapper):
 * only `db.exec(sql)` is used for transaction control.
 */

const { performance } = require("perf_hooks");

const DEFAULTS = Object.freeze({ maxBatch: 256, maxQueue: 4096, retries: 4, backoffMs: 50, commitWindowMs: 5 });
const MAX_BACKOFF_MS = 2000;
const LOCK_SAMPLES = 65536;

class WriteQueueError extends Error {
  /**
   * @param {string} code machine-readable reason (QUEUE_FULL, WRITE_UNAVAILABLE, SHUTTING_DOWN, EVENT_FAILED)
   * @param {number} status HTTP status the route should answer with
   * @param {string} message
   * @param {{ retryAfter?: number, cause?: unknown }} [extra]
   */
  constructor(code, status, message, extra = {}) {
    super(message);
    this.name = "WriteQueueError";
    this.code = code;
    this.status = status;
    if (extra.retryAfter !== undefined) this.retryAfter = extra.retryAfter;
    if (extra.cause !== undefined) this.cause = extra.cause;
  }
}

/** Thrown inside a batch when SQLite dropped the whole transaction while one item ran. */
class BatchAborted extends Error {
  constructor(entry, cause) {
    super("transaction aborted");
    this.entry = entry;
    this.cause = cause;
  }
}

function envInt(env, name, fallback, min) {
  const raw = env && env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number.parseInt(String(raw), 10);
  return Number.isFinite(n) && n >= min ? n : fallback;
}

/** Limits from the environment: AGENT_MONITOR_BATCH_MAX, _QUEUE_MAX, _WRITE_RETRIES, _WRITE_BACKOFF_MS, _COMMIT_WINDOW_MS. */
function limitsFromEnv(env = process.env) {
  return {
    maxBatch: envInt(env, "AGENT_MONITOR_BATCH_MAX", DEFAULTS.maxBatch, 1),
    maxQueue: envInt(env, "AGENT_MONITOR_QUEUE_MAX", DEFAULTS.maxQueue, 1),
    retries: envInt(env, "AGENT_MONITOR_WRITE_RETRIES", DEFAULTS.retries, 0),
    backoffMs: envInt(env, "AGENT_MONITOR_WRITE_BACKOFF_MS", DEFAULTS.backoffMs, 1),
    commitWindowMs: envInt(env, "AGENT_MONITOR_COMMIT_WINDOW_MS", DEFAULTS.commitWindowMs, 0),
  };
}

function errorText(err) {
  if (err && typeof err === "object") {
    const code = err.code && err.code !== "ERR_SQLITE_ERROR" ? `${err.code}: ` : "";
    return `${code}${err.message || String(err)}`;
  }
  return String(err);
}

/** True/false when the driver can tell whether a transaction is open, null when it cannot. */
function inTransaction(db) {
  if (typeof db.inTransaction === "boolean") return db.inTransaction; // better-sqlite3
  const raw = db._db; // server/compat-sqlite.js wraps node:sqlite's DatabaseSync
  if (raw && typeof raw.isTransaction === "boolean") return raw.isTransaction; // Node >= 22.16
  if (typeof db.isTransaction === "boolean") return db.isTransaction; // a bare DatabaseSync
  return null;
}

/**
 * A 200 must survive power loss, not only a process crash: WAL + synchronous=FULL fsyncs the WAL
 * on every COMMIT. node:sqlite defaults to FULL; better-sqlite3 is compiled with
 * SQLITE_DEFAULT_WAL_SYNCHRONOUS=1 and quietly runs WAL databases at NORMAL. Set it explicitly.
 */
function ensureSynchronousFull(db, log) {
  try {
    db.exec("PRAGMA synchronous = FULL");
    const row = db.prepare("PRAGMA synchronous").get();
    const value = row && typeof row === "object" ? Object.values(row)[0] : row;
    if (Number(value) < 2) log.warn(`[write-queue] PRAGMA synchronous is ${value} after setting FULL; commits may not survive power loss`);
  } catch (err) {
    log.warn(`[write-queue] could not set PRAGMA synchronous = FULL: ${errorText(err)}`);
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

const round = (ms) => Math.round(ms * 1000) / 1000;

/**
 * @param {object} options
 * @param {{ exec(sql: string): unknown, prepare(sql: string): any }} options.db the shared connection
 * @param {(item: any) => any} options.run writes one item; runs inside the item's SAVEPOINT; synchronous
 * @param {(item: any, result: any) => void} [options.afterCommit] post-commit work for each item that
 *   persisted; called after COMMIT and after the item's promise resolved (setImmediate), never for a
 *   rolled-back item; errors are logged, never propagated
 * @param {(items: any[]) => any[]} [options.orderBatch] may reorder a batch before it is written
 *   (must return a permutation of its argument; anything else is ignored with a warning)
 * @param {() => { flush(): void, discard(): void }} [options.holdBroadcasts] broadcast hold buffers
 *   (server/websocket.js); without it broadcasts are not held
 * @param {number} [options.maxBatch] items per transaction (AGENT_MONITOR_BATCH_MAX, default 256)
 * @param {number} [options.maxQueue] queued items before enqueue answers QUEUE_FULL (AGENT_MONITOR_QUEUE_MAX, default 4096)
 * @param {number} [options.retries] extra attempts for a batch that cannot begin/commit (default 4)
 * @param {number} [options.backoffMs] first backoff delay, doubled per attempt, capped at max(2 s, backoffMs) (default 50)
 * @param {number} [options.commitWindowMs] under load (a commit ended less than this many ms ago), wait
 *   until this long after it before the next batch, so concurrent events share one commit; an idle
 *   queue drains at once (AGENT_MONITOR_COMMIT_WINDOW_MS, default 5, 0 = off)
 * @param {boolean} [options.synchronousFull] set PRAGMA synchronous = FULL on db (default true)
 * @param {{ warn(...a: any[]): void, error(...a: any[]): void }} [options.log]
 */
function createWriteQueue(options) {
  const { db, run, afterCommit, orderBatch, holdBroadcasts } = options;
  if (!db || typeof db.exec !== "function") throw new TypeError("createWriteQueue: options.db with exec() is required");
  if (typeof run !== "function") throw new TypeError("createWriteQueue: options.run is required");
  const log = options.log || console;
  const maxBatch = Math.max(1, options.maxBatch || DEFAULTS.maxBatch);
  const maxQueue = Math.max(1, options.maxQueue || DEFAULTS.maxQueue);
  const retries = Math.max(0, options.retries ?? DEFAULTS.retries);
  const backoffMs = Math.max(1, options.backoffMs || DEFAULTS.backoffMs);
  const commitWindowMs = Math.max(0, options.commitWindowMs ?? DEFAULTS.commitWindowMs);
  if (options.synchronousFull !== false) ensureSynchronousFull(db, log);

  /** FIFO of { kind: "event", item, resolve, reject, attempts } | { kind: "exclusive", fn, ... } */
  let queue = [];
  let queuedEvents = 0;
  let immediate = null;
  let timer = null;
  let closed = false;
  let savepointSeq = 0;
  let idleWaiters = [];
  let lastTransactionEnd = -Infinity;

  const counters = {
    batches: 0, // committed event batches
    events: 0, // events committed (run returned a result)
    noops: 0, // items committed that wrote nothing (run returned null/undefined)
    transactions: 0, // committed transactions (batches + runExclusive)
    failedEvents: 0, // events rolled back to their savepoint (answered 500)
    retries: 0, // batch/exclusive attempts that could not begin or commit and were retried
    unavailable: 0, // events answered 503 after the retries ran out (or at shutdown)
    rejectedFull: 0, // enqueue() refused because the queue was full
    rollbacks: 0, // transactions rolled back as a whole
  };
  const lockSamples = new Float64Array(LOCK_SAMPLES);
  let lockSampleCount = 0;
  let lockSampleNext = 0;
  let lockMax = 0;

  function recordLockHeld(ms) {
    lockSamples[lockSampleNext] = ms;
    lockSampleNext = (lockSampleNext + 1) % LOCK_SAMPLES;
    lockSampleCount = Math.min(lockSampleCount + 1, LOCK_SAMPLES);
    if (ms > lockMax) lockMax = ms;
  }

  // ── scheduling ────────────────────────────────────────────────────────────
  // Group commit window: right after a transaction (the server is busy), let the next batch gather
  // the events arriving over the next few ms instead of committing (and syncing) one at a time.
  // Measured at 64 agents: ~1 transaction per event without it, ~0.2 with 5 ms, and the throughput
  // nearly doubles. An idle queue (no transaction within the window) still drains at once.
  function schedule() {
    if (closed || immediate || timer || queue.length === 0) return;
    const wait = lastTransactionEnd + commitWindowMs - performance.now();
    if (wait > 0 && queuedEvents < maxBatch) timer = setTimeout(step, wait);
    else immediate = setImmediate(step);
  }

  function scheduleRetry(attempts) {
    if (closed || immediate || timer) return;
    // Doubling from backoffMs, capped at 2 s (or at backoffMs itself when that is larger).
    const base = Math.min(Math.max(MAX_BACKOFF_MS, backoffMs), backoffMs * 2 ** Math.max(0, attempts - 1));
    const delay = Math.round(base + Math.random() * Math.min(backoffMs, 100));
    timer = setTimeout(step, delay);
  }

  function notifyIdle() {
    if (queue.length > 0 || idleWaiters.length === 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  function step() {
    immediate = null;
    timer = null;
    if (queue.length === 0) return notifyIdle();
    const outcome = queue[0].kind === "exclusive" ? runExclusiveHead(false) : runBatch(false);
    lastTransactionEnd = performance.now();
    if (outcome.retry) scheduleRetry(outcome.attempts);
    else schedule();
    notifyIdle();
  }

  function removeEntries(entries) {
    const gone = new Set(entries);
    queue = queue.filter((e) => !gone.has(e));
    for (const e of entries) if (e.kind === "event") queuedEvents--;
  }

  // ── transaction helpers (all synchronous) ────────────────────────────────
  function begin() {
    db.exec("BEGIN IMMEDIATE");
    return performance.now();
  }

  function rollbackAll() {
    counters.rollbacks++;
    if (inTransaction(db) === false) return;
    try {
      db.exec("ROLLBACK");
    } catch {
      // no transaction left to roll back (SQLite already did)
    }
  }

  /** Undo one item; false when the enclosing transaction is gone. */
  function rollbackToSavepoint(name) {
    if (inTransaction(db) === false) return false;
    try {
      db.exec(`ROLLBACK TO SAVEPOINT ${name}`);
      db.exec(`RELEASE SAVEPOINT ${name}`);
      return true;
    } catch {
      return false;
    }
  }

  function orderedEntries(entries) {
    if (typeof orderBatch !== "function" || entries.length < 2) return entries;
    try {
      const items = entries.map((e) => e.item);
      const ordered = orderBatch(items.slice());
      const byItem = new Map(entries.map((e) => [e.item, e]));
      if (!Array.isArray(ordered) || ordered.length !== entries.length) throw new Error("orderBatch must return an array of the same length");
      const out = ordered.map((item) => byItem.get(item));
      if (out.some((e) => !e) || new Set(out).size !== entries.length) throw new Error("orderBatch must return a permutation of its items");
      return out;
    } catch (err) {
      log.warn(`[write-queue] orderBatch ignored: ${errorText(err)}`);
      return entries;
    }
  }

  function unavailable(attempts, cause) {
    return new WriteQueueError(
      "WRITE_UNAVAILABLE",
      503,
      `the event could not be written (database busy or failing after ${attempts} attempt(s): ${errorText(cause)}); it was not stored, retry later`,
      { retryAfter: 1, cause },
    );
  }

  function eventFailed(cause) {
    return new WriteQueueError("EVENT_FAILED", 500, `the event failed and was rolled back: ${errorText(cause)}`, { cause });
  }

  /**
   * Give up on `entries` after a failed attempt when their retries ran out (or `final`);
   * returns { retry, attempts } for the scheduler.
   */
  function afterFailedAttempt(entries, cause, final) {
    let maxAttempts = 0;
    const expired = [];
    for (const e of entries) {
      e.attempts++;
      if (final || e.attempts > retries) expired.push(e);
      else maxAttempts = Math.max(maxAttempts, e.attempts);
    }
    if (expired.length > 0) {
      removeEntries(expired);
      for (const e of expired) {
        if (e.kind === "event") counters.unavailable++;
        e.reject(unavailable(e.attempts, cause));
      }
    }
    if (expired.length < entries.length) {
      counters.retries++;
      log.warn(`[write-queue] transaction could not begin/commit (${errorText(cause)}); retry ${maxAttempts}/${retries} for ${entries.length - expired.length} queued item(s)`);
    } else {
      log.error(`[write-queue] giving up on ${expired.length} item(s) after ${retries + 1} attempt(s): ${errorText(cause)}`);
    }
    return { retry: expired.length < entries.length, attempts: maxAttempts, unavailable: cause };
  }

  // ── one batch of events ───────────────────────────────────────────────────
  function runBatch(final) {
    const entries = [];
    for (const e of queue) {
      if (e.kind !== "event" || entries.length >= maxBatch) break;
      entries.push(e);
    }
    const ordered = orderedEntries(entries);
    const outcomes = new Map();
    const batchHold = holdBroadcasts ? holdBroadcasts() : null;
    let lockedAt = null;
    try {
      lockedAt = begin();
      for (const entry of ordered) {
        const savepoint = `write_queue_${++savepointSeq}`;
        db.exec(`SAVEPOINT ${savepoint}`);
        const hold = holdBroadcasts ? holdBroadcasts() : null;
        try {
          const value = run(entry.item);
          db.exec(`RELEASE SAVEPOINT ${savepoint}`);
          if (hold) hold.flush(); // into batchHold: sent only after COMMIT
          outcomes.set(entry, { ok: true, value });
        } catch (err) {
          if (hold) hold.discard();
          if (!rollbackToSavepoint(savepoint)) throw new BatchAborted(entry, err);
          outcomes.set(entry, { ok: false, error: eventFailed(err) });
        }
      }
      db.exec("COMMIT");
    } catch (err) {
      if (batchHold) batchHold.discard();
      if (lockedAt !== null) {
        rollbackAll();
        recordLockHeld(performance.now() - lockedAt);
      }
      if (err instanceof BatchAborted) {
        // One item took the whole transaction down (e.g. SQLITE_FULL / IOERR while it ran):
        // fail that item alone and write the others again right away.
        removeEntries([err.entry]);
        counters.failedEvents++;
        err.entry.reject(eventFailed(err.cause));
        log.error(`[write-queue] an event aborted its batch and was dropped: ${errorText(err.cause)}`);
        return { retry: false, attempts: 0 };
      }
      return afterFailedAttempt(entries, err, final);
    }
    recordLockHeld(performance.now() - lockedAt);
    removeEntries(entries);
    counters.transactions++;
    counters.batches++;
    if (batchHold) batchHold.flush();
    const committed = [];
    for (const entry of ordered) {
      const outcome = outcomes.get(entry);
      if (outcome.ok) {
        // `run` returning null/undefined wrote nothing (e.g. an event without session_id, answered 400).
        if (outcome.value === null || outcome.value === undefined) counters.noops++;
        else counters.events++;
        committed.push([entry.item, outcome.value]);
        entry.resolve(outcome.value);
      } else {
        counters.failedEvents++;
        entry.reject(outcome.error);
      }
    }
    if (typeof afterCommit === "function" && committed.length > 0) {
      // After the responses: post-commit work must never delay or fail an acknowledgement.
      setImmediate(() => {
        for (const [item, value] of committed) {
          try {
            afterCommit(item, value);
          } catch (err) {
            log.warn(`[write-queue] post-commit work failed: ${errorText(err)}`);
          }
        }
      });
    }
    return { retry: false, attempts: 0 };
  }

  // ── runExclusive: one function in its own IMMEDIATE transaction ──────────
  function runExclusiveHead(final) {
    const entry = queue[0];
    const hold = holdBroadcasts ? holdBroadcasts() : null;
    let lockedAt = null;
    let value;
    let fnFailed = false;
    try {
      lockedAt = begin();
      try {
        value = entry.fn();
        if (value && typeof value.then === "function") throw new TypeError("runExclusive: fn must be synchronous (it returned a promise)");
      } catch (err) {
        fnFailed = true;
        throw err;
      }
      db.exec("COMMIT");
    } catch (err) {
      if (hold) hold.discard();
      if (lockedAt !== null) {
        rollbackAll();
        recordLockHeld(performance.now() - lockedAt);
      }
      if (fnFailed) {
        removeEntries([entry]);
        entry.reject(err);
        return { retry: false, attempts: 0 };
      }
      return afterFailedAttempt([entry], err, final);
    }
    recordLockHeld(performance.now() - lockedAt);
    removeEntries([entry]);
    counters.transactions++;
    if (hold) hold.flush();
    entry.resolve(value);
    return { retry: false, attempts: 0 };
  }

  // ── public API ────────────────────────────────────────────────────────────
  /**
   * The error enqueue() would refuse an event with right now (shutting down, queue full), or null.
   * The route asks first, so a refused request is answered before its transcript is read.
   */
  function refusal() {
    if (closed) return new WriteQueueError("SHUTTING_DOWN", 503, "the server is shutting down; the event was not stored", { retryAfter: 1 });
    if (queuedEvents >= maxQueue) {
      counters.rejectedFull++;
      return new WriteQueueError("QUEUE_FULL", 503, `write queue full (${maxQueue} events waiting); the event was not stored, retry later`, { retryAfter: 1 });
    }
    return null;
  }

  /** Counters of the route's own (e.g. validate-hook-input's ignoredStamps), shown in stats(). */
  const routeCounters = Object.create(null);
  function count(name, n = 1) {
    routeCounters[name] = (routeCounters[name] || 0) + n;
  }

  function enqueue(item) {
    const refused = refusal();
    if (refused) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      queue.push({ kind: "event", item, resolve, reject, attempts: 0 });
      queuedEvents++;
      schedule();
    });
  }

  function runExclusive(fn) {
    if (typeof fn !== "function") return Promise.reject(new TypeError("runExclusive: fn must be a function"));
    if (closed) {
      return Promise.reject(new WriteQueueError("SHUTTING_DOWN", 503, "the server is shutting down", { retryAfter: 1 }));
    }
    return new Promise((resolve, reject) => {
      queue.push({ kind: "exclusive", fn, resolve, reject, attempts: 0 });
      schedule();
    });
  }

  /** Resolves once everything queued so far (and anything queued meanwhile) has settled. */
  function drain() {
    if (queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => idleWaiters.push(resolve));
  }

  /**
   * Shutdown: write everything still queued NOW, synchronously (one attempt per batch, no
   * backoff), then refuse new items. Called from server/index.js's SIGTERM/SIGINT handler
   * before it closes the HTTP server and the database.
   */
  function close() {
    if (closed) return;
    closed = true;
    if (immediate) clearImmediate(immediate);
    if (timer) clearTimeout(timer);
    immediate = null;
    timer = null;
    while (queue.length > 0) {
      const outcome = queue[0].kind === "exclusive" ? runExclusiveHead(true) : runBatch(true);
      if (outcome.unavailable) {
        // The database cannot be written now (each attempt already waited busy_timeout): do not
        // block shutdown with one more wait per batch; everything left is answered 503.
        const rest = queue;
        queue = [];
        queuedEvents = 0;
        for (const e of rest) {
          if (e.kind === "event") counters.unavailable++;
          e.reject(unavailable(e.attempts + 1, outcome.unavailable));
        }
      }
    }
    notifyIdle();
  }

  function stats() {
    const sorted = Array.from(lockSamples.subarray(0, lockSampleCount)).sort((a, b) => a - b);
    return {
      ...counters,
      ...routeCounters,
      queued: queuedEvents,
      pending: queue.length,
      closed,
      limits: { maxBatch, maxQueue, retries, backoffMs, commitWindowMs },
      lockHeldMs: {
        p50: round(percentile(sorted, 50)),
        p99: round(percentile(sorted, 99)),
        max: round(lockMax),
        samples: lockSampleCount,
      },
    };
  }

  return { enqueue, refusal, count, runExclusive, drain, close, stats, size: () => queuedEvents };
}

/** Answer an Express request whose enqueue() rejected (or whose continuation threw). Never throws. */
function sendWriteQueueError(res, err) {
  try {
    if (res.headersSent) return;
    const status = err && Number.isInteger(err.status) ? err.status : 500;
    if (err && err.retryAfter !== undefined) res.set("Retry-After", String(err.retryAfter));
    res.status(status).json({
      error: {
        code: err instanceof WriteQueueError ? err.code : "EVENT_FAILED",
        message: err && err.message ? err.message : "event processing failed",
      },
    });
  } catch {
    // the connection is gone; nothing left to tell the client
  }
}

module.exports = { createWriteQueue, limitsFromEnv, sendWriteQueueError, WriteQueueError, DEFAULTS };
