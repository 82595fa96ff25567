// The patches, in the order they are applied. Each later patch sees the output of the earlier ones.
import type { Patch } from "./define-patch.ts";

export const patches: Patch[] = [];
