// Upstream's hook client (`scripts/hook-handler.js` of a generated tree) run as Claude Code runs it:
// one Node 22 process per hook event, the event's JSON on stdin.
import { spawn } from "node:child_process";
import path from "node:path";
import { ensureNode22 } from "../scripts/lib/node22.ts";

export interface HookRun {
  /** The process's exit code (null when a signal ended it). */
  code: number | null;
  /** Wall time from spawn to exit, ms. */
  ms: number;
}

/** Run `<treeDir>/scripts/hook-handler.js <hookType>` once with `event` on stdin and `env` as its whole environment. */
export function runHookHandler(treeDir: string, env: NodeJS.ProcessEnv, event: object, hookType = "PreToolUse"): Promise<HookRun> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(ensureNode22(), [path.join(treeDir, "scripts", "hook-handler.js"), hookType], { env, stdio: ["pipe", "ignore", "ignore"] });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, ms: performance.now() - t }));
    child.stdin.end(JSON.stringify(event));
  });
}
