// Upstream's own server test suite passes on the patched tree wherever it passes unpatched.
import { describe, expect, it } from "vitest";
import { compareSuites } from "../../scripts/upstream-suite.ts";
import { buildReal, realUpstream, SKIP_REAL } from "../support/build-once.ts";

describe.skipIf(!realUpstream)("upstream server test suite (real upstream, Node 22)", () => {
  it("no test that passes on the unpatched tree fails on the patched one", async () => {
    const built = await buildReal();
    const c = await compareSuites(built.upstream.dir, built.outDir);
    console.log(
      `upstream suite: unpatched ${JSON.stringify(c.unpatched.counts)}, patched ${JSON.stringify(c.patched.counts)}; ` +
        `fixed by the patches: ${c.fixed.length}`,
    );
    expect(c.unpatched.counts.passed).toBeGreaterThan(800);
    expect(c.regressions).toEqual([]);
  }, 900_000);
});

if (!realUpstream) describe("upstream server test suite (real upstream, Node 22)", () => it.skip(SKIP_REAL, () => {}));
