/**
 * The last line of defence: an error no code handled — a rejected promise
 * nobody awaited, an exception thrown from a timer or socket callback — is
 * logged with its stack and the server keeps serving, instead of Deno ending
 * the process. Every known path handles its own errors; this catches the
 * ones a module (or a bug) lets slip.
 *
 * @example
 * ```ts
 * const unguard = guardProcess(getLogger("server"));
 * // … serve …
 * unguard();
 * ```
 * @module
 */
import type { Logger } from "./log.ts";

/** Installs the process-wide handlers; returns a function that removes them. */
export function guardProcess(log: Logger): () => void {
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    log.error("unhandled rejection (the server goes on): {error}", { error: e.reason });
  };
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    log.error("uncaught exception (the server goes on): {error}", { error: e.error ?? e.message });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}
