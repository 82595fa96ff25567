// What the database holds after the server stopped, opened read-only (Node 20 + root
// better-sqlite3; the server wrote it with node:sqlite — same file format).
import { openDatabase } from "./sqlite.ts";

export interface DbPhaseFacts {
  /** bench_event_id values found in events.data. */
  presentIds: Set<string>;
  /** Rows beyond the first for a bench_event_id that appears more than once. */
  duplicateHookRows: number;
  /** All events-table rows belonging to the phase's sessions (hook rows + server-generated rows). */
  rows: number;
  turnDurationRows: number;
  rowsByType: Record<string, number>;
  sessionStatus: Map<string, string>;
}

export interface DbFacts {
  integrity: string;
  phases: DbPhaseFacts[];
}

const ID_RE = /"bench_event_id"\s*:\s*"([^"]+)"/;

interface EventRow {
  session_id: string;
  event_type: string;
  data: string | null;
}

/** One pass over the database for every phase (each phase = its own set of session ids). */
export function inspectDatabase(dbPath: string, phases: ReadonlyArray<ReadonlySet<string>>): DbFacts {
  const db = openDatabase(dbPath, { readonly: true, fileMustExist: true });
  try {
    const integrityRows = db.prepare("PRAGMA integrity_check").all() as Array<{ integrity_check: string }>;
    const integrity = integrityRows.map((r) => r.integrity_check).join("; ");
    const sessionToPhase = new Map<string, number>();
    phases.forEach((ids, i) => ids.forEach((id) => sessionToPhase.set(id, i)));
    const out: DbPhaseFacts[] = phases.map(() => ({
      presentIds: new Set<string>(),
      duplicateHookRows: 0,
      rows: 0,
      turnDurationRows: 0,
      rowsByType: {},
      sessionStatus: new Map<string, string>(),
    }));

    const stmt = db.prepare("SELECT session_id, event_type, data FROM events");
    for (const row of stmt.iterate() as IterableIterator<EventRow>) {
      const i = sessionToPhase.get(row.session_id);
      if (i === undefined) continue;
      const f = out[i]!;
      f.rows++;
      f.rowsByType[row.event_type] = (f.rowsByType[row.event_type] ?? 0) + 1;
      if (row.event_type === "TurnDuration") f.turnDurationRows++;
      const m = row.data ? ID_RE.exec(row.data) : null;
      if (m) {
        if (f.presentIds.has(m[1]!)) f.duplicateHookRows++;
        else f.presentIds.add(m[1]!);
      }
    }
    const statusStmt = db.prepare("SELECT id, status FROM sessions");
    for (const row of statusStmt.iterate() as IterableIterator<{ id: string; status: string }>) {
      const i = sessionToPhase.get(row.id);
      if (i !== undefined) out[i]!.sessionStatus.set(row.id, row.status);
    }
    return { integrity, phases: out };
  } finally {
    db.close();
  }
}
