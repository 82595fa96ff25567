// scripts/lib/cli.ts: the declarations give the values, the generated --help and the one-line errors.
import { describe, expect, it } from "vitest";
import { flag, helpText, intList, listOf, number, oneOf, option, parseCli } from "../../scripts/lib/cli.ts";
import { UserError } from "../../scripts/lib/errors.ts";

const cmd = {
  command: "npm run toy --",
  positionals: "[ref ...]",
  description: "A toy command.",
  options: {
    agents: option("<list>", "agent counts", intList, [1, 8]),
    seconds: option("<s>", "how long", number({ min: 0.5 })),
    workers: option("<n>", "workers\nper phase", number({ min: 1, max: 9, whole: true }), 3),
    mode: option("<m>", "client", oneOf(["blocking", "fire-and-forget"]), "blocking"),
    trees: option("<list>", "which trees", listOf(["unpatched", "patched"])),
    out: option("<dir>", "results folder"),
    quick: flag("short run", "q"),
  },
  examples: ["npm run toy -- --quick"],
};

const errorOf = (argv: string[]): string => {
  try {
    parseCli(cmd, argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error(`no error for ${argv.join(" ")}`);
};

describe("scripts/lib/cli.ts", () => {
  it("absent flags take their declared defaults; given ones are validated and converted", () => {
    expect(parseCli(cmd, []).values).toEqual({ agents: [1, 8], seconds: undefined, workers: 3, mode: "blocking", trees: undefined, out: undefined, quick: false });
    const p = parseCli(cmd, ["--agents", "3,5,3", "--seconds=2.5", "-q", "--trees", "patched", "v2.0.3", "--out", "x"]);
    expect(p.values).toMatchObject({ agents: [3, 5], seconds: 2.5, quick: true, trees: ["patched"], out: "x" });
    expect(p.positionals).toEqual(["v2.0.3"]);
    expect(p.help).toBe(false);
  });

  it("--help wins over bad flags and the help is generated from every declaration", () => {
    expect(parseCli(cmd, ["--nope", "-h"]).help).toBe(true);
    const help = helpText(cmd);
    expect(help.split("\n").slice(0, 5)).toEqual(["Usage: npm run toy -- [flags] [ref ...]", "", "A toy command.", "", "Flags:"]);
    expect(help).toContain("  --agents <list>   agent counts (default 1,8)\n");
    expect(help).toContain("  --workers <n>     workers (default 3)\n                    per phase\n");
    expect(help).toContain("  -q, --quick       short run\n");
    expect(help).toContain("  -h, --help        show this help\n");
    expect(help.endsWith("Examples:\n  npm run toy -- --quick")).toBe(true);
  });

  it("each bad input is one line naming the flag and what it wants", () => {
    expect(errorOf(["--frob"])).toBe("unknown flag --frob; see npm run toy -- --help");
    expect(errorOf(["--out"])).toBe("--out needs a value (<dir>); see npm run toy -- --help");
    expect(errorOf(["--out", "--quick"])).toBe("--out needs a value (<dir>); see npm run toy -- --help");
    expect(errorOf(["--quick=1"])).toBe("--quick takes no value; see npm run toy -- --help");
    expect(errorOf(["--agents", "1,x"])).toBe('--agents wants positive integers separated by commas, got "1,x"');
    expect(errorOf(["--agents", "0"])).toBe('--agents wants positive integers separated by commas, got "0"');
    expect(errorOf(["--seconds", "0.1"])).toBe('--seconds wants a number >= 0.5, got "0.1"');
    expect(errorOf(["--workers", "2.5"])).toBe('--workers wants a whole number 1-9, got "2.5"');
    expect(errorOf(["--workers", "10"])).toBe('--workers wants a whole number 1-9, got "10"');
    expect(errorOf(["--mode", "turbo"])).toBe('--mode wants blocking or fire-and-forget, got "turbo"');
    expect(errorOf(["--trees", "both"])).toBe('--trees wants a comma-separated list of unpatched, patched, got "both"');
  });

  it("a command without positionals refuses a stray argument", () => {
    expect(() => parseCli({ ...cmd, positionals: undefined }, ["stray"])).toThrow('unexpected argument "stray"; see npm run toy -- --help');
  });
});
