/** An error whose message is the one line the user sees (no stack): what is wrong and what to do. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}
