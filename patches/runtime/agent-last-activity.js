"use strict";
// [patch:agents-by-last-activity] Added by the agent-monitor patch pipeline (not upstream code).
//
// Each agent's last activity exactly as upstream computes it,
//   COALESCE((SELECT MAX(e.created_at) FROM events e WHERE e.agent_id = a.id), a.ended_at, a.started_at),
// kept in a side table (event_max, fallback) by triggers, with an index on COALESCE(event_max, fallback):
// the agent lists walk that index newest first and stop at their LIMIT instead of computing the
// expression for every agent and sorting them all. A side table, not a column of `agents`, so
// `SELECT a.*` answers keep upstream's columns.
//
// ensureAgentLastActivity(db) runs at startup: when the table or any trigger is missing or differs
// from ours (a new database, an existing one the first time, a table rebuild that dropped the agents
// triggers), it (re)creates them and backfills the table in one transaction, and logs the time.

const TABLE = "agent_last_activity";

/** The sort key; the lists must spell it exactly so for the index to serve their ORDER BY. */
const KEY = "COALESCE(event_max, fallback)";

const maxOf = (agentId) => `(SELECT MAX(created_at) FROM events WHERE agent_id = ${agentId})`;
const upsert = (agent) =>
  `INSERT INTO ${TABLE} (agent_id, event_max, fallback) VALUES (${agent}.id, ${maxOf(`${agent}.id`)}, COALESCE(${agent}.ended_at, ${agent}.started_at))
     ON CONFLICT(agent_id) DO UPDATE SET event_max = excluded.event_max, fallback = excluded.fallback;`;
const recompute = (agentId) => `UPDATE ${TABLE} SET event_max = ${maxOf(agentId)} WHERE agent_id = ${agentId};`;

/** [name, body]: each trigger keeps the row of every agent it touches equal to upstream's expression. */
const TRIGGERS = [
  // A new event raises its agent's maximum (no read of events: the row holds the maximum so far).
  ["ala_events_insert", `AFTER INSERT ON events WHEN NEW.agent_id IS NOT NULL BEGIN
    UPDATE ${TABLE} SET event_max = NEW.created_at
     WHERE agent_id = NEW.agent_id AND (event_max IS NULL OR NEW.created_at > event_max);
  END`],
  // A deleted event can only lower the maximum it held: recompute then (one seek on events(agent_id, created_at)).
  ["ala_events_delete", `AFTER DELETE ON events WHEN OLD.agent_id IS NOT NULL BEGIN
    UPDATE ${TABLE} SET event_max = ${maxOf("OLD.agent_id")} WHERE agent_id = OLD.agent_id AND event_max = OLD.created_at;
  END`],
  // Also fires for ON DELETE SET NULL of events.agent_id when an agent goes.
  ["ala_events_update", `AFTER UPDATE OF agent_id, created_at ON events BEGIN
    ${recompute("OLD.agent_id")}
    ${recompute("NEW.agent_id")}
  END`],
  ["ala_agents_insert", `AFTER INSERT ON agents BEGIN
    ${upsert("NEW")}
  END`],
  // updateAgent names ended_at on every call: write only when a key column really changed.
  ["ala_agents_update", `AFTER UPDATE OF id, started_at, ended_at ON agents
    WHEN NEW.id IS NOT OLD.id OR NEW.started_at IS NOT OLD.started_at OR NEW.ended_at IS NOT OLD.ended_at BEGIN
    DELETE FROM ${TABLE} WHERE agent_id = OLD.id;
    ${upsert("NEW")}
  END`],
  ["ala_agents_delete", `AFTER DELETE ON agents BEGIN
    DELETE FROM ${TABLE} WHERE agent_id = OLD.id;
  END`],
];

const triggerSql = (name, body) => `CREATE TRIGGER ${name} ${body}`;

function ensureAgentLastActivity(db) {
  const startedAt = Date.now();
  const stored = new Map(
    db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('events', 'agents')").all().map((r) => [r.name, r.sql])
  );
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(TABLE);
  const current = table && TRIGGERS.every(([name, body]) => stored.get(name) === triggerSql(name, body));
  if (current) {
    console.log(`[agents-by-last-activity] agent last-activity table ready in ${Date.now() - startedAt} ms`);
    return;
  }
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${TABLE} (agent_id TEXT PRIMARY KEY, event_max TEXT, fallback TEXT);
      CREATE INDEX IF NOT EXISTS idx_${TABLE} ON ${TABLE}(${KEY});
    `);
    for (const [name] of TRIGGERS) db.exec(`DROP TRIGGER IF EXISTS ${name}`);
    for (const [name, body] of TRIGGERS) db.exec(triggerSql(name, body));
    // Backfill: one pass over events grouped by agent (no index needed), joined to every agent.
    db.exec(`
      DELETE FROM ${TABLE};
      INSERT INTO ${TABLE} (agent_id, event_max, fallback)
        SELECT a.id, m.event_max, COALESCE(a.ended_at, a.started_at)
        FROM agents a LEFT JOIN (
          SELECT agent_id, MAX(created_at) AS event_max FROM events WHERE agent_id IS NOT NULL GROUP BY agent_id
        ) m ON m.agent_id = a.id;
    `);
  })();
  const agents = db.prepare(`SELECT COUNT(*) AS n FROM ${TABLE}`).get().n;
  console.log(`[agents-by-last-activity] agent last-activity table backfilled (${agents} agents) and ready in ${Date.now() - startedAt} ms`);
}

module.exports = { ensureAgentLastActivity };
