"use strict";
// [patch:busy-timeout] Added by the agent-monitor patch pipeline (not upstream code).
//
// Every SQLite connection the monitor opens waits for a lock held by another connection (the
// server, a hook, an import script, a second server) instead of failing with SQLITE_BUSY at once.
// node:sqlite's DatabaseSync defaults to 0 ms, so without this a busy database fails immediately.
//
// withBusyTimeout(connection) sets `busy_timeout` on a freshly opened connection, before anything
// else runs on it, and returns the connection. Works for better-sqlite3, the compat wrapper
// (both have .pragma) and a raw node:sqlite DatabaseSync (.exec).
//
// AGENT_MONITOR_BUSY_TIMEOUT_MS overrides the 5000 ms default (a whole number of milliseconds,
// 0 disables waiting); an invalid value falls back to 5000 with one warning per process.

const ENV = "AGENT_MONITOR_BUSY_TIMEOUT_MS";
const DEFAULT_MS = 5000;
const MAX_MS = 2147483647; // sqlite3_busy_timeout takes a C int

let warned = false;

/** The busy timeout in ms from the environment, or 5000. */
function busyTimeoutMs(env = process.env) {
  const raw = env[ENV];
  if (raw === undefined || raw.trim() === "") return DEFAULT_MS;
  const text = raw.trim();
  const ms = /^\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isSafeInteger(ms) && ms <= MAX_MS) return ms;
  if (!warned) {
    warned = true;
    console.warn(`[busy-timeout] ignoring ${ENV}=${JSON.stringify(raw)}: expected a whole number of milliseconds (0..${MAX_MS}); using ${DEFAULT_MS}`);
  }
  return DEFAULT_MS;
}

function withBusyTimeout(connection) {
  const ms = busyTimeoutMs();
  if (typeof connection.pragma === "function") connection.pragma(`busy_timeout = ${ms}`);
  else connection.exec(`PRAGMA busy_timeout = ${ms}`);
  return connection;
}

module.exports = { withBusyTimeout, busyTimeoutMs, ENV, DEFAULT_MS };
