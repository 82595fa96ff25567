// Mutation tests of atomic-watchdog's gate: upstream gives watchdogCheck a helper that writes,
// called outside the one transaction (before it, in the read-only pre-pass, or after it). The
// patch still applies; the gate follows the helper chain and fails naming the line.
import { describe, expect, it } from "vitest";
import { before, buildMutant, mutateFixture } from "../support/mutation.ts";

const HOOKS = "server/routes/hooks.js";

// A "last checked" stamp: a helper that writes through a second helper.
const STAMP_HELPERS =
  "function noteChecked(id) {\n  stampCheck(id, new Date().toISOString());\n}\n\n" +
  'const stampCheck = (id, at) => db.prepare("UPDATE sessions SET updated_at = updated_at WHERE id = ? AND ? IS NOT NULL").run(id, at);\n\n';

describe("atomic-watchdog mutation: a writing helper called in the pre-pass, before the transaction", () => {
  it("fails the build naming the patch, the call's line and the chain to the write", async () => {
    const dir = mutateFixture("helper-before-tx", {
      [HOOKS]: (t) => before("function watchdogCheck() {", STAMP_HELPERS)(t).replace("      if (!tPath) continue;\n\n      const result = transcriptCache.extract(tPath);", "      if (!tPath) continue;\n      noteChecked(sess.id);\n\n      const result = transcriptCache.extract(tPath);"),
    });
    const built = await buildMutant(dir);
    expect(built.problems).toMatch(/^\[atomic-watchdog\] server\/routes\/hooks\.js: applied, but verify still fails: line \d+ \(upstream line \d+\): noteChecked\(…\) writes outside watchdogCheck's transaction \(noteChecked → stampCheck → line \d+ \(upstream line \d+\): db\.prepare\("UPDATE sessions SET updated_at/m);
  });
});

describe("atomic-watchdog mutation: a writing helper called after the transaction", () => {
  it("fails the build naming the patch and the line", async () => {
    const dir = mutateFixture("helper-after-tx", {
      [HOOKS]: (t) => before("function watchdogCheck() {", "function pruneStale() {\n  db.exec(\"DELETE FROM events WHERE event_type = 'Heartbeat'\");\n}\n\n")(t).replace("    livenessReap();\n  } catch", "    pruneStale();\n    livenessReap();\n  } catch"),
    });
    const built = await buildMutant(dir);
    expect(built.problems).toMatch(/\[atomic-watchdog\] server\/routes\/hooks\.js: applied, but verify still fails: line \d+ \(upstream line \d+\): pruneStale\(…\) writes outside watchdogCheck's transaction \(pruneStale → line \d+ \(upstream line \d+\): db\.exec\("DELETE FROM events/);
  });

  it("a direct write after the transaction is named as well", async () => {
    const dir = mutateFixture("write-after-tx", {
      [HOOKS]: (t) => t.replace("    livenessReap();\n  } catch", "    stmts.touchWatchdog && stmts.touchWatchdog.run();\n    livenessReap();\n  } catch"),
    });
    const built = await buildMutant(dir);
    expect(built.problems).toMatch(/\[atomic-watchdog\] server\/routes\/hooks\.js: applied, but verify still fails: line \d+ \(upstream line \d+\): stmts\.touchWatchdog\.run\(\) writes outside watchdogCheck's transaction/);
  });
});
