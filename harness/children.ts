// Spawning TypeScript child processes (the agent workers, the bench's companion) on the machine's
// Node 20 through the tsx loader, with an IPC channel.
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { repoRoot } from "../scripts/lib/paths.ts";

const stderrTails = new WeakMap<ChildProcess, { text: string }>();

/** `script`: a TypeScript file's path from the repository root (e.g. "harness/agent-worker.ts"). */
export function forkTs(script: string, args: string[] = []): ChildProcess {
  const child = fork(path.join(repoRoot, script), args, {
    cwd: repoRoot,
    execPath: process.execPath,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "pipe", "ipc"],
    serialization: "advanced",
  });
  const tail = { text: "" };
  stderrTails.set(child, tail);
  child.stderr?.on("data", (d: Buffer) => (tail.text = (tail.text + d.toString()).slice(-8000)));
  return child;
}

export function stderrTail(child: ChildProcess): string {
  return stderrTails.get(child)?.text ?? "";
}

/** Resolve with the first IPC message that `pick` accepts; reject if the child exits first. */
export function nextMessage<T>(child: ChildProcess, pick: (msg: unknown) => T | undefined, what: string, timeoutMs = 120_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      child.off("message", onMsg);
      child.off("exit", onExit);
    };
    const onMsg = (msg: unknown) => {
      const m = msg as { type?: string; message?: string };
      if (m.type === "error") {
        cleanup();
        reject(new Error(`${what}: child reported: ${m.message}`));
        return;
      }
      const got = pick(msg);
      if (got !== undefined) {
        cleanup();
        resolve(got);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${what}: child exited (${code}) before answering\n${stderrTail(child)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms\n${stderrTail(child)}`));
    }, timeoutMs);
    child.on("message", onMsg);
    child.on("exit", onExit);
  });
}
