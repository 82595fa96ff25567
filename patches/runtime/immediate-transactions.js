"use strict";
// [patch:immediate-transactions] Added by the agent-monitor patch pipeline (not upstream code).
//
// Transactions that take SQLite's write lock up front. A deferred `BEGIN` starts as a reader and
// upgrades to a writer at its first write; when another connection wrote in between, that upgrade
// fails with SQLITE_BUSY at once (busy_timeout cannot help: waiting would not make the stale read
// snapshot valid again). `BEGIN IMMEDIATE` waits for the lock (busy_timeout) before reading.
//
// compatTransaction(db, fn)  the node:sqlite wrapper's transaction(): IMMEDIATE by default, nested
//                            calls become SAVEPOINTs, with better-sqlite3's .default/.deferred/
//                            .immediate/.exclusive variants (.default is the plain call: IMMEDIATE).
// immediateByDefault(db)     makes a better-sqlite3 connection's db.transaction(fn) IMMEDIATE by
//                            default (better-sqlite3 already nests with savepoints).

const IMMEDIATE_DEFAULT = Symbol.for("agent-monitor.immediate-transactions");

/** Open wrapper frames per node:sqlite connection (for Node versions without isTransaction). */
const depth = new WeakMap();

function isTransaction(db) {
  return db.isTransaction === true || (depth.get(db) || 0) > 0;
}

/**
 * Roll back after a failure. SQLite itself may already have rolled the whole transaction back
 * (e.g. SQLITE_FULL, SQLITE_IOERR): then there is nothing left to undo. Node versions without
 * isTransaction cannot tell, so there a failing rollback is ignored (the original error wins).
 */
function undo(db, sql) {
  if (db.isTransaction === true) {
    db.exec(sql);
  } else if (db.isTransaction === undefined) {
    try {
      db.exec(sql);
    } catch {
      /* no transaction left to roll back */
    }
  }
}

function run(db, fn, begin, self, args) {
  const level = depth.get(db) || 0;
  if (isTransaction(db)) {
    const name = `"_agent_monitor_sp_${level + 1}"`;
    db.exec(`SAVEPOINT ${name}`);
    depth.set(db, level + 1);
    try {
      const result = fn.apply(self, args);
      db.exec(`RELEASE ${name}`);
      return result;
    } catch (err) {
      // Undo only this level; the enclosing transaction goes on.
      undo(db, `ROLLBACK TO ${name}; RELEASE ${name}`);
      throw err;
    } finally {
      depth.set(db, level);
    }
  }
  db.exec(begin);
  depth.set(db, 1);
  try {
    const result = fn.apply(self, args);
    db.exec("COMMIT");
    return result;
  } catch (err) {
    undo(db, "ROLLBACK");
    throw err;
  } finally {
    depth.set(db, 0);
  }
}

/** better-sqlite3's transaction-function shape, over a node:sqlite DatabaseSync. */
function compatTransaction(db, fn) {
  if (typeof fn !== "function") throw new TypeError("Expected first argument to be a function");
  const variant = (begin) =>
    function transaction(...args) {
      return run(db, fn, begin, this, args);
    };
  const immediate = variant("BEGIN IMMEDIATE");
  const deferred = variant("BEGIN DEFERRED");
  const exclusive = variant("BEGIN EXCLUSIVE");
  const properties = {
    default: { value: immediate },
    deferred: { value: deferred },
    immediate: { value: immediate },
    exclusive: { value: exclusive },
    [IMMEDIATE_DEFAULT]: { value: true },
  };
  for (const f of [immediate, deferred, exclusive]) Object.defineProperties(f, properties);
  return immediate;
}

/** Make `db.transaction(fn)` return a function whose plain call (and .default) is `.immediate`. */
function immediateByDefault(db) {
  const original = db.transaction;
  if (typeof original !== "function" || original[IMMEDIATE_DEFAULT]) return db;
  const transaction = function transaction(fn) {
    const tx = original.call(this, fn);
    if (tx[IMMEDIATE_DEFAULT]) return tx; // the patched node:sqlite wrapper: already IMMEDIATE
    if (typeof tx.immediate !== "function") {
      throw new TypeError("[patch:immediate-transactions] db.transaction(fn) returned no .immediate variant");
    }
    const immediate = function (...args) {
      return tx.immediate.apply(this, args);
    };
    Object.defineProperties(immediate, {
      default: { value: tx.immediate },
      deferred: { value: tx.deferred },
      immediate: { value: tx.immediate },
      exclusive: { value: tx.exclusive },
      database: { value: tx.database },
      [IMMEDIATE_DEFAULT]: { value: true },
    });
    return immediate;
  };
  Object.defineProperty(transaction, IMMEDIATE_DEFAULT, { value: true });
  db.transaction = transaction;
  return db;
}

module.exports = { compatTransaction, immediateByDefault, IMMEDIATE_DEFAULT };
