/**
 * Logging adapter. Everything in Cadence logs through this file; LogTape sits
 * behind it (standing in for `@std/log`, which JSR-less machines cannot fetch),
 * so swapping the backend is a change here only.
 *
 * Categories are `["cadence", host, module]`, so one host's or module's lines
 * can be filtered.
 *
 * @example
 * ```ts
 * const log = getLogger("localhost", "ping");
 * log.info("pinged by {jid}", { jid: "juliet@localhost/balcony" });
 * ```
 * @module
 */
import {
  configure,
  getConsoleSink,
  getLogger as logtapeLogger,
  getTextFormatter,
  type LogLevel,
  reset,
  type Sink,
} from "@logtape/logtape";

export type Level = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(message: string, props?: Record<string, unknown>): void;
  info(message: string, props?: Record<string, unknown>): void;
  warn(message: string, props?: Record<string, unknown>): void;
  error(message: string, props?: Record<string, unknown>): void;
}

export interface LogOptions {
  /** Lowest level written; default "info". */
  level?: Level;
  /** Append to this file instead of (not in addition to) the console. */
  file?: string;
}

/** A logger for a category below "cadence", e.g. `getLogger(host, module)`. */
export function getLogger(...category: string[]): Logger {
  return logtapeLogger(["cadence", ...category]);
}

const LEVELS: Record<Level, LogLevel> = {
  debug: "debug",
  info: "info",
  warn: "warning",
  error: "error",
};

/** Sets up where log lines go and from which level. Call once at start-up. */
export async function setupLogging(opts: LogOptions = {}): Promise<void> {
  // Values print bare (no quotes around strings): easier to read in a terminal.
  const formatter = getTextFormatter({ timestamp: "date-time", value: "bare" });
  let sink: Sink;
  if (opts.file) {
    // Each line is written at once (a stream sink held them until shutdown here,
    // and fail2ban reads the file as it grows). Opened anew on each setup: SIGHUP
    // after logrotate moves the file starts a new one.
    const file = await Deno.open(opts.file, { create: true, append: true });
    const encoder = new TextEncoder();
    const write: Sink & Disposable = Object.assign(
      (record: Parameters<Sink>[0]) => void writeAll(file, encoder.encode(formatter(record))),
      { [Symbol.dispose]: () => file.close() },
    );
    sink = write;
  } else {
    sink = getConsoleSink({ formatter });
  }
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: ["cadence"], lowestLevel: LEVELS[opts.level ?? "info"], sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
}

/** Flushes and detaches the sinks (at shutdown, and between tests). */
export async function stopLogging(): Promise<void> {
  await reset();
}
