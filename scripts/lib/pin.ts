import { readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "./paths.ts";

/** The one place the upstream is pinned: repository URL, release tag, full commit SHA. */
export interface Pin {
  repository: string;
  tag: string;
  commit: string;
  /** Release tags the pipeline supports and the commits they must resolve to. */
  releases: Record<string, string>;
}

/** A full 40-hex commit SHA (what a pin, --ref or --to must be when it is not a tag). */
export const isFullSha = (s: string): boolean => /^[0-9a-f]{40}$/.test(s);

export const pinFile = path.join(repoRoot, "upstream.pin.json");

export function readPin(file = pinFile): Pin {
  const pin = JSON.parse(readFileSync(file, "utf8")) as Pin;
  if (!isFullSha(pin.commit)) throw new Error(`${path.basename(file)}: "commit" must be a full 40-hex SHA`);
  if (pin.releases[pin.tag] !== pin.commit) {
    throw new Error(`${path.basename(file)}: tag ${pin.tag} is listed as ${pin.releases[pin.tag] ?? "missing"} in "releases" but pinned as ${pin.commit}; make them agree`);
  }
  return pin;
}

export const shortSha = (sha: string | null): string => (sha ? sha.slice(0, 7) : "no commit");
