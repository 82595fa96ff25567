"use strict";
/**
 * [patch:spool-hook-events] Write-ahead spool for hook events (added to the tree by the build-time
 * patch `spool-hook-events`; source kept in patches/runtime/hook-spool.js of the patch repository).
 *
 * Client side (scripts/hook-handler.js): before it sends, the hook appends one framed record per
 * event to the per-user spool with ONE write() of the whole record to a file opened O_APPEND. On a
 * local filesystem one write() to a regular file lands whole relative to other appenders (PIPE_BUF
 * only bounds atomicity for pipes/FIFOs, not regular files); a crash mid-write (power loss, full
 * disk) can still leave a torn tail, which the framing detects.
 *
 * Framing: "\n<byteLength> <json>\n". A record is valid only when the line's JSON has exactly
 * <byteLength> bytes and parses. The leading "\n" ends any torn fragment before it, so a torn
 * record costs itself, never the record after it. Blank lines are skipped.
 *
 * Segments: spool/<minute bucket>.log, chosen by the writer's clock (no coordination between hook
 * processes). Only the two newest buckets may still grow; older segments are complete.
 *
 * Server side: a reader per consumer (one consumer = one database) reads past its own offsets in
 * bounded chunks. Exactly-once does not rest on the offsets: every event carries event_id and the
 * server stores ids in the same SAVEPOINT as the event, so a record read twice is a counted
 * duplicate. Offsets only keep the reader from re-reading what it already passed.
 *
 * CommonJS, Node built-ins only (the hook client runs on whatever Node runs Claude Code).
 */

const fs = require("fs");
const os = require("os");
const path = require("path");
const crypto = require("crypto");

const SEGMENT_MS = 60_000;
const DEFAULT_CAP_BYTES = 256 * 1024 * 1024;
const DEFAULT_GRACE_MS = 7 * 24 * 3600_000;
const CONSUMERS = "consumers";

/** The spool directory: AGENT_MONITOR_SPOOL_DIR, else ~/.claude/agent-monitor-spool (no dashboard needed to find it). */
function spoolDir(env = process.env) {
  const override = env.AGENT_MONITOR_SPOOL_DIR;
  if (override) return path.resolve(override);
  return path.join(os.homedir(), ".claude", "agent-monitor-spool");
}

function segmentName(nowMs) {
  return `${String(Math.floor(nowMs / SEGMENT_MS)).padStart(12, "0")}.log`;
}

function frame(record) {
  const json = JSON.stringify(record);
  return `\n${Buffer.byteLength(json)} ${json}\n`;
}

function newEventId() {
  return typeof crypto.randomUUID === "function" ? crypto.randomUUID() : crypto.randomBytes(16).toString("hex");
}

/**
 * Client: append { event_id, sent_at_ms, hook_type, data } to the spool. Returns the event id, or
 * null when the spool cannot be written (the hook then sends as before: the spool never blocks it).
 * AGENT_MONITOR_SPOOL_FSYNC=1 also fsyncs (survives power loss; costs the hook a disk flush).
 */
function spoolAppend(payload, env = process.env) {
  if (env.AGENT_MONITOR_SPOOL === "0") return null;
  try {
    const dir = spoolDir(env);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const record = { event_id: newEventId(), sent_at_ms: Date.now(), ...payload };
    const fd = fs.openSync(path.join(dir, segmentName(record.sent_at_ms)), "a", 0o600);
    try {
      const bytes = fs.writeSync(fd, frame(record));
      if (env.AGENT_MONITOR_SPOOL_FSYNC === "1") {
        fs.fsyncSync(fd);
        // A segment this write created is reachable after power loss only once its directory entry is synced too.
        if (fs.fstatSync(fd).size === bytes) syncDir(dir);
      }
    } finally {
      fs.closeSync(fd);
    }
    return record;
  } catch {
    return null;
  }
}

function syncDir(dir) {
  let dfd = null;
  try {
    dfd = fs.openSync(dir, "r");
    fs.fsyncSync(dfd);
  } catch {
    // not supported here (e.g. some platforms cannot fsync a directory): the file's own fsync stands
  } finally {
    if (dfd !== null) fs.closeSync(dfd);
  }
}

/**
 * Client: give the event its id, spool it, and return the data to post (with event_id), so the
 * server stores it once whether it arrives by POST, by replay or both. Never throws.
 */
function spoolHookEvent(hookType, data, env = process.env) {
  if (!data || typeof data !== "object" || Array.isArray(data)) return data;
  const out = { ...data, event_id: newEventId() };
  const sentAt = typeof out.sent_at_ms === "number" ? out.sent_at_ms : Date.now();
  // A hook run for one dashboard (CLAUDE_DASHBOARD_PORT, upstream's override) is addressed to it, so
  // other dashboards of the same user do not replay it; an unaddressed event (the usual fan-out, or no
  // dashboard running) is replayed by every dashboard, each into its own database once.
  // When that dashboard has registered in the spool (consumers/<id>.json, written by its replay), the
  // record also names its database (`db`: the consumer id), so a record for a database that no longer
  // exists can be told from one for a dashboard that is merely down.
  const to = String(env.CLAUDE_DASHBOARD_PORT || "").trim();
  const db = to ? consumerOnPort(spoolDir(env), to) : null;
  spoolAppend({ event_id: out.event_id, sent_at_ms: sentAt, hook_type: hookType, data: out, ...(to ? { to } : {}), ...(db ? { db } : {}) }, env);
  return out;
}

/** The consumer (database) id of the dashboard last registered on `port`, or null. Never throws. */
function consumerOnPort(dir, port) {
  let best = null;
  for (const v of readConsumers(path.join(dir, CONSUMERS))) {
    if (String(v.port) === port && typeof v.consumerId === "string" && (!best || v.at > best.at)) best = v;
  }
  return best ? best.consumerId : null;
}

/** Registered consumers: { consumerId, dbPath?, port?, passed, at } per consumers/<id>.json. */
function readConsumers(cdir) {
  const out = [];
  let names = [];
  try {
    names = fs.readdirSync(cdir);
  } catch {
    return out;
  }
  for (const f of names) {
    if (!f.endsWith(".json")) continue;
    try {
      const v = JSON.parse(fs.readFileSync(path.join(cdir, f), "utf8"));
      if (Array.isArray(v.passed)) out.push({ ...v, file: f });
    } catch {
      // a consumer file being replaced: ignore this round
    }
  }
  return out;
}

/** A consumer whose database file is gone (deleted data directory): it will never read again. */
function vanished(v) {
  return typeof v.dbPath === "string" && v.dbPath !== "" && !fs.existsSync(v.dbPath);
}

/**
 * Parse the complete records of `buf` (bytes of one segment from some offset). Returns the records
 * with their end offsets (relative to buf), the number of torn lines, and `consumed`: bytes up to
 * the last newline (an unterminated tail is left for the next read unless `final`). With `limit`, it
 * stops after that many records (`consumed` then ends at the last one): a chunk parses only itself.
 */
function parseRecords(buf, final, limit = Infinity) {
  const records = [];
  let torn = 0;
  let pos = 0;
  const last = buf.lastIndexOf(0x0a);
  const end = final ? buf.length : last + 1;
  while (pos < end) {
    let nl = buf.indexOf(0x0a, pos);
    if (nl === -1 || nl >= end) nl = end;
    if (nl > pos) {
      const line = buf.subarray(pos, nl);
      const sp = line.indexOf(0x20);
      const len = sp > 0 ? Number(line.subarray(0, sp).toString("latin1")) : NaN;
      let record = null;
      if (Number.isInteger(len) && len === line.length - sp - 1) {
        try {
          record = JSON.parse(line.subarray(sp + 1).toString("utf8"));
        } catch {
          record = null;
        }
      }
      if (record && typeof record === "object" && typeof record.event_id === "string") records.push({ record, end: nl + 1 });
      else torn++;
    }
    pos = nl + 1;
    if (records.length >= limit) return { records, torn, consumed: Math.min(pos, buf.length) };
  }
  return { records, torn, consumed: Math.max(0, Math.min(end, buf.length)) };
}

/**
 * Server: reads the spool for one consumer.
 * @param {object} o
 * @param {string} o.dir spool directory
 * @param {string} o.consumerId stable id of this consumer (e.g. a hash of its database path)
 * @param {(segment: string) => number} o.offsetOf this consumer's committed offset in a segment (from ITS database)
 * @param {number} [o.maxRecords] records per chunk
 * @param {number} [o.capBytes] spool size cap; the oldest segments are dropped (counted) beyond it
 * @param {number} [o.graceMs] a segment older than this is removed even if a registered consumer has not passed it
 * @param {string} [o.dbPath] this consumer's database file and [o.port] its dashboard's port (published for hook clients and cleanup)
 */
function createSpoolReader(o) {
  const dir = o.dir;
  const maxRecords = o.maxRecords || 500;
  const capBytes = o.capBytes || DEFAULT_CAP_BYTES;
  const graceMs = o.graceMs || DEFAULT_GRACE_MS;
  const counters = { torn: 0, droppedSegments: 0, droppedBytes: 0, removedSegments: 0, vanishedConsumers: 0 };

  function segments() {
    try {
      return fs.readdirSync(dir).filter((f) => /^\d{12}\.log$/.test(f)).sort();
    } catch {
      return [];
    }
  }

  /** A segment two buckets old can no longer grow (writers use their clock's current bucket). */
  function isClosed(name, nowMs) {
    return Number(name.slice(0, 12)) < Math.floor(nowMs / SEGMENT_MS) - 1;
  }

  /**
   * The next chunk past the consumer's offsets: { segment, records: [{ record, offset }], torn } where
   * offset is the segment offset after that record; null when nothing new. Offsets are advanced by the
   * caller, in its database, after it stored the records.
   */
  function nextChunk(nowMs = Date.now()) {
    for (const name of segments()) {
      const file = path.join(dir, name);
      let size;
      try {
        size = fs.statSync(file).size;
      } catch {
        continue;
      }
      const from = o.offsetOf(name);
      if (from >= size) continue;
      const fd = fs.openSync(file, "r");
      try {
        // Read and parse only this chunk (a 10,000-record backlog read whole per chunk cost O(n²) and
        // stalled live hooks): 256 KB, or 4 MB when not one whole record fits in that.
        let parsed = null;
        let got = 0;
        for (const cap of [256 * 1024, 4 * 1024 * 1024]) {
          const want = Math.min(size - from, cap);
          const buf = Buffer.alloc(want);
          got = fs.readSync(fd, buf, 0, want, from);
          const final = isClosed(name, nowMs) && from + got >= size;
          parsed = parseRecords(buf.subarray(0, got), final, maxRecords);
          if (parsed.records.length > 0 || from + got >= size) break;
        }
        counters.torn += parsed.torn;
        const records = parsed.records.map((r) => ({ record: r.record, offset: from + r.end }));
        const endOffset = from + parsed.consumed;
        if (records.length === 0 && endOffset === from) continue; // an unterminated tail still being written
        return { segment: name, records, endOffset, torn: parsed.torn };
      } finally {
        fs.closeSync(fd);
      }
    }
    return null;
  }

  /** Publish this consumer's position (for other consumers' cleanup), then remove passed segments. */
  function cleanup(nowMs = Date.now()) {
    const names = segments();
    const cdir = path.join(dir, CONSUMERS);
    try {
      fs.mkdirSync(cdir, { recursive: true });
      const passed = names.filter((n) => isClosed(n, nowMs) && o.offsetOf(n) >= fileSize(n));
      const tmp = path.join(cdir, `.${o.consumerId}.${process.pid}.tmp`);
      fs.writeFileSync(tmp, JSON.stringify({ consumerId: o.consumerId, dbPath: o.dbPath, port: o.port, passed, at: nowMs }));
      fs.renameSync(tmp, path.join(cdir, `${o.consumerId}.json`));
    } catch {
      return;
    }
    // A consumer whose database no longer exists never passes anything: forget it (counted) rather
    // than keep every segment for the grace period.
    const views = readConsumers(cdir).filter((v) => {
      if (!vanished(v)) return true;
      try {
        fs.unlinkSync(path.join(cdir, v.file));
        counters.vanishedConsumers++;
      } catch {
        // another dashboard removed it first
      }
      return false;
    });
    let total = 0;
    const live = [];
    for (const n of names) {
      const age = nowMs - Number(n.slice(0, 12)) * SEGMENT_MS;
      const everyonePassed = views.length > 0 && views.every((v) => v.passed.includes(n));
      if (isClosed(n, nowMs) && (everyonePassed || age > graceMs)) {
        if (removeSegment(n)) counters.removedSegments++;
      } else {
        live.push(n);
        total += fileSize(n);
      }
    }
    // size cap: drop the oldest closed segments, counted
    for (const n of live) {
      if (total <= capBytes || !isClosed(n, nowMs)) break;
      const sz = fileSize(n);
      if (removeSegment(n)) {
        counters.droppedSegments++;
        counters.droppedBytes += sz;
        total -= sz;
      }
    }
  }

  function fileSize(n) {
    try {
      return fs.statSync(path.join(dir, n)).size;
    } catch {
      return 0;
    }
  }

  function removeSegment(n) {
    try {
      fs.unlinkSync(path.join(dir, n));
      return true;
    } catch {
      return false;
    }
  }

  /** Whether records addressed to database `id` can still be stored by someone: its consumer is registered and its file exists. */
  function databaseExists(id) {
    const v = readConsumers(path.join(dir, CONSUMERS)).find((c) => c.consumerId === id);
    return !!v && !vanished(v);
  }

  function spoolBytes() {
    return segments().reduce((s, n) => s + fileSize(n), 0);
  }

  return { nextChunk, cleanup, databaseExists, stats: () => ({ ...counters, spoolBytes: spoolBytes(), segments: segments().length }) };
}

// ── server: stored event ids (exactly once) ─────────────────────────────────

const ID_RE = /^[0-9A-Za-z-]{8,64}$/;

/**
 * Event ids stored in this database, inserted in the event's own SAVEPOINT (run() of the write
 * queue runs inside it): an event rolled back takes its id with it; a second copy (POST and replay,
 * or two replays) is acknowledged 200 and counted, not stored again.
 */
function createEventIds(db, count) {
  db.exec("CREATE TABLE IF NOT EXISTS hook_event_ids (event_id TEXT PRIMARY KEY, stored_at_ms INTEGER NOT NULL) WITHOUT ROWID");
  let insert = null;
  const has = db.prepare("SELECT 1 AS one FROM hook_event_ids WHERE event_id = ?");
  function claim(id) {
    if (!insert) insert = db.prepare("INSERT OR IGNORE INTO hook_event_ids (event_id, stored_at_ms) VALUES (?, ?)");
    return Number(insert.run(id, Date.now()).changes) > 0;
  }
  // Replayed events whose processing threw (rolled back to their savepoint, answered 500): the
  // progress record may pass them (replaying them again would fail again).
  const failing = new Set();
  let progressWriter = null;
  return {
    /**
     * Wraps the write queue's run: a known event id is a duplicate ({ duplicate: true }), else run.
     * A replay progress item ({ spoolProgress }) writes the spool offset in the SAME transaction as
     * the chunk's events (it is queued right after them, so it runs after them in their batch).
     */
    run(inner) {
      return (item) => {
        if (item && item.spoolProgress) {
          if (progressWriter) progressWriter(item.spoolProgress);
          return null; // wrote no event (a no-op in the write-queue stats); no post-commit work
        }
        const id = item && item.data ? item.data.event_id : undefined;
        if (typeof id === "string" && ID_RE.test(id) && !claim(id)) {
          count("spoolDuplicates");
          return { duplicate: true, event_id: id };
        }
        try {
          return inner(item);
        } catch (err) {
          if (item && item.replayed && typeof id === "string") failing.add(id);
          throw err;
        }
      };
    },
    /** Wraps afterCommit: a duplicate and a progress record have no post-commit work. */
    afterCommit(inner) {
      return (item, result) => (!result || result.duplicate || (item && item.spoolProgress) ? undefined : inner(item, result));
    },
    /** Read outside any transaction: lets replay skip an event POST already stored, without queueing it. Inside one it sees the transaction's own writes. */
    stored: (id) => !!has.get(id),
    /** A replayed event that failed (500): not stored, not to be replayed again by this process. */
    failed: (id) => failing.has(id),
    /** createSpoolReplay registers the writer of its progress record. */
    onProgress(fn) {
      progressWriter = fn;
    },
  };
}

/** Replay counters, kept in the write-queue stats (count). */
const COUNTERS = ["spoolReplayed", "spoolDuplicates", "spoolAlreadyStored", "spoolInvalid", "spoolFailed", "spoolForOtherDashboard", "spoolForVanishedDatabase"];

// ── server: replay ───────────────────────────────────────────────────────────

/**
 * Replays the spool into this server's database through its write queue, in bounded chunks.
 * @param {object} o
 * @param {any} o.db the server's connection
 * @param {any} o.writeQueue the write queue (enqueue, refusal, runExclusive, count)
 * @param {string} o.dbPath this database's file: the consumer id is a hash of it
 * @param {(hookType: string, data: object) => any} o.transcriptFor the route's transcript read
 * @param {ReturnType<typeof createEventIds>} o.eventIds
 * @param {(name: string) => void} o.count counts into the write-queue stats
 * @param {(body: object, opts: object) => object | null} [o.check] POST /event's validation (validate-hook-input's checkHookBody)
 */
function createSpoolReplay(o) {
  const env = o.env || process.env;
  const log = o.log || console;
  const count = o.count;
  const totals = { read: 0, replayed: 0 };
  const dir = o.dir || spoolDir(env);
  const consumerId = crypto.createHash("sha256").update(path.resolve(o.dbPath)).digest("hex").slice(0, 16);
  const intervalMs = Number(env.AGENT_MONITOR_SPOOL_REPLAY_MS) > 0 ? Number(env.AGENT_MONITOR_SPOOL_REPLAY_MS) : 3000;
  o.db.exec("CREATE TABLE IF NOT EXISTS hook_spool_offsets (segment TEXT PRIMARY KEY, byte_offset INTEGER NOT NULL)");
  const getOffset = o.db.prepare("SELECT byte_offset FROM hook_spool_offsets WHERE segment = ?");
  const putOffset = o.db.prepare(
    "INSERT INTO hook_spool_offsets (segment, byte_offset) VALUES (?, ?) ON CONFLICT(segment) DO UPDATE SET byte_offset = MAX(byte_offset, excluded.byte_offset)",
  );
  const offsets = new Map();
  const offsetOf = (seg) => {
    if (!offsets.has(seg)) {
      const row = getOffset.get(seg);
      offsets.set(seg, row ? Number(row.byte_offset) : 0);
    }
    return offsets.get(seg);
  };
  // This server's port as the hook client names it (upstream: DASHBOARD_PORT, default 4820).
  const ownPort = String(env.DASHBOARD_PORT || "4820").trim();
  const reader = createSpoolReader({ dir, consumerId, dbPath: path.resolve(o.dbPath), port: ownPort, offsetOf, maxRecords: Number(env.AGENT_MONITOR_SPOOL_CHUNK) || 50, capBytes: Number(env.AGENT_MONITOR_SPOOL_CAP_BYTES) || undefined });
  let timer = null;
  let running = false;
  let stopped = false;
  let backlogLogged = false;


  /**
   * The progress record, run by the write queue inside the transaction that holds the chunk's last
   * events (the item is queued right after them; orderBySentAt leaves an item without data in place).
   * It advances the offset only when every event the chunk queued is stored (by this transaction or
   * an earlier one) or failed: an event refused with 503 in an earlier batch keeps the offset where
   * it was, so the next round reads it again. A crash therefore never leaves the offset past an
   * event that is not stored, nor events stored past the offset (both commit or neither).
   */
  function writeProgress(p) {
    p.written = p.ids.every((id) => o.eventIds.stored(id) || o.eventIds.failed(id));
    if (p.written) putOffset.run(p.segment, p.endOffset);
  }
  o.eventIds.onProgress(writeProgress);

  async function replayChunk(chunk) {
    const pending = [];
    const ids = [];
    const exists = new Map(); // database id -> still there (one look per chunk)
    for (const { record } of chunk.records) {
      const data = record.data;
      if (typeof record.db === "string" && record.db !== consumerId) {
        if (!exists.has(record.db)) exists.set(record.db, reader.databaseExists(record.db));
        // For another database: its dashboard stores it (or has, by POST); if that database is gone, nobody will.
        count(exists.get(record.db) ? "spoolForOtherDashboard" : "spoolForVanishedDatabase");
        continue;
      }
      if (record.db === undefined && record.to !== undefined && String(record.to) !== ownPort) {
        count("spoolForOtherDashboard"); // addressed to another dashboard (CLAUDE_DASHBOARD_PORT)
        continue;
      }
      if (!data || typeof data !== "object" || Array.isArray(data)) {
        count("spoolInvalid");
        continue;
      }
      const stamped = { ...data, event_id: record.event_id, sent_at_ms: record.sent_at_ms };
      // The same door as POST /event (validate-hook-input): a record the route would answer 400 is
      // skipped and counted; a send stamp it would not believe is dropped (counted as ignoredStamps),
      // judged against the time its segment was written, so an old backlog keeps its stamps.
      const problem = o.check
        ? o.check({ hook_type: record.hook_type, data: stamped }, { now: Number(chunk.segment.slice(0, 12)) * SEGMENT_MS, onIgnoredStamp: () => count("ignoredStamps") })
        : typeof record.hook_type !== "string" || !data.session_id;
      if (problem) {
        count("spoolInvalid");
        continue;
      }
      if (o.eventIds.stored(record.event_id)) {
        count("spoolAlreadyStored"); // POST stored it: no queue, no transaction
        continue;
      }
      if (o.eventIds.failed(record.event_id)) continue; // failed (500) when replayed earlier: counted then
      ids.push(record.event_id);
      pending.push(
        o.writeQueue.enqueue({ hookType: record.hook_type, data: stamped, transcriptData: o.transcriptFor(record.hook_type, stamped), replayed: true }).then(
          (r) => {
            if (r && !r.duplicate) {
              totals.replayed++;
              count("spoolReplayed");
            }
          },
          (err) => {
            if (err && err.status === 503) throw err; // not stored: keep the offset, retry next round
            count("spoolFailed"); // 500: the event itself fails; replaying it again would fail again
          },
        ),
      );
    }
    const progress = { segment: chunk.segment, endOffset: chunk.endOffset, ids, written: false };
    if (ids.length === 0) {
      // Nothing to store: the offset has no events to share a transaction with.
      await o.writeQueue.runExclusive(() => putOffset.run(chunk.segment, chunk.endOffset));
      progress.written = true;
    } else {
      // Refused (the queue is full of live events): written after the events, in its own transaction, with the same check.
      pending.push(o.writeQueue.enqueue({ spoolProgress: progress }).catch((err) => {
        if (!(err && err.status === 503)) throw err;
        progress.refused = true;
      }));
    }
    await Promise.all(pending);
    if (progress.refused) await o.writeQueue.runExclusive(() => writeProgress(progress));
    if (progress.written) offsets.set(chunk.segment, chunk.endOffset); // committed: the reader may move on
    return progress.written;
  }

  let maxQueue = null; // the queue's limit (fixed at its creation): read once
  function queueRoom() {
    if (maxQueue === null) {
      const st = o.writeQueue.stats ? o.writeQueue.stats() : null;
      maxQueue = st && st.limits && st.limits.maxQueue > 0 ? st.limits.maxQueue : Infinity;
    }
    return maxQueue - (o.writeQueue.size ? o.writeQueue.size() : 0);
  }

  async function round() {
    if (running || stopped) return;
    running = true;
    let n = 0;
    try {
      for (let chunk = reader.nextChunk(); chunk && !stopped; chunk = reader.nextChunk()) {
        // Live hooks first: a chunk is queued only behind an empty queue (waiting at most 250 ms, so a
        // steady live load cannot starve the replay)...
        for (let waited = 0; o.writeQueue.size && o.writeQueue.size() > 0 && waited < 250 && !stopped; waited += 5) await new Promise((r) => setTimeout(r, 5));
        if (!backlogLogged && chunk.records.length > 0) {
          backlogLogged = true;
          log.log(`[spool] replaying hook events spooled while this dashboard was not storing them (${dir})`);
        }
        // Never more than the queue has room for (live hooks first): a
        // replay that overfilled the queue would be refused (503) over and over.
        const room = queueRoom();
        if (room < 1) break; // the queue is full of live events: next round
        if (chunk.records.length > room) chunk = { ...chunk, records: chunk.records.slice(0, room), endOffset: chunk.records[room - 1].offset };
        const started = performance.now();
        const advanced = await replayChunk(chunk);
        n += chunk.records.length;
        if (!advanced) break; // an event of the chunk is not stored yet: the next round reads it again
        // ...and the replay takes at most half of the server's time: after a chunk, as long a pause
        // (measured: replaying 10,000 events at full speed held live hooks' p99 at 38x its usual).
        await new Promise((r) => setTimeout(r, Math.min(250, performance.now() - started)));
      }
      reader.cleanup();
      if (n > 0) log.log(`[spool] replay round done: ${n} record(s) read, ${totals.replayed} replayed since start`);
    } catch (err) {
      if (!(err && err.status === 503)) log.warn(`[spool] replay failed: ${err && err.message ? err.message : err}`);
    } finally {
      running = false;
      backlogLogged = n > 0 ? backlogLogged : false;
      if (!stopped) timer = setTimeout(round, intervalMs);
      if (timer && typeof timer.unref === "function") timer.unref();
    }
  }

  return {
    start() {
      if (env.AGENT_MONITOR_SPOOL === "0") return;
      timer = setTimeout(round, 0);
      if (typeof timer.unref === "function") timer.unref();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    round,
    consumerId,
    // Zeros for the counters kept in the write-queue stats (the route spreads those over these).
    stats: () => ({ ...Object.fromEntries(COUNTERS.map((name) => [name, 0])), ...reader.stats(), dir }),
  };
}

module.exports = { readConsumers, spoolHookEvent, createEventIds, createSpoolReplay, spoolDir, spoolAppend, parseRecords, createSpoolReader, frame, segmentName, SEGMENT_MS };
