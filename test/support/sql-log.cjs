// Preloaded into a monitor (NODE_OPTIONS=--require) by the query-plan test: every read a node:sqlite
// statement runs (all/get/iterate) is appended to AGENT_MONITOR_SQL_LOG as one JSON line { sql, params },
// so the test reads the SQL the patched tree's routes really run, not hand copies of it.
const fs = require("node:fs");
const { StatementSync } = require("node:sqlite");

const out = process.env.AGENT_MONITOR_SQL_LOG;
if (out) {
  for (const method of ["all", "get", "iterate"]) {
    const original = StatementSync.prototype[method];
    StatementSync.prototype[method] = function (...params) {
      const plain = params.map((p) => (typeof p === "bigint" ? Number(p) : p));
      fs.appendFileSync(out, `${JSON.stringify({ sql: this.sourceSQL, params: plain })}\n`);
      return original.apply(this, params);
    };
  }
}
