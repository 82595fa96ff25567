/** A patch could not find (exactly one of) the code it targets. Carries what a reviewer needs. */
export class PatchTargetError extends Error {
  constructor(
    readonly patchId: string,
    readonly file: string,
    readonly expected: string,
    readonly found: number,
    readonly detail: string,
  ) {
    super(`[${patchId}] ${file}: expected 1 ${expected} but found ${found}. ${detail}`.trim());
    this.name = "PatchTargetError";
  }
}
