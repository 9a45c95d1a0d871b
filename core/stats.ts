/**
 * The server's own metrics (Prosody's statsmanager with its core
 * measures): stanzas by kind, client sessions, connections by type,
 * storage latency, event-loop lag, memory and uptime, in the server's
 * {@link MetricRegistry}. `collect()` fires `stats-update` (modules set
 * their gauges then) and renders the OpenMetrics text.
 *
 * @example
 * ```ts
 * const stats = new ServerStats({ events, sessions, startTime: Date.now() });
 * router.received = stats.received;
 * const text = await stats.collect();
 * stats.stop();
 * ```
 * @module
 */
import { type EventBus, isPromise } from "./events.ts";
import { type MetricFamily, MetricRegistry, StanzaCounter } from "./metrics.ts";
import type { SessionManager } from "./sessionmanager.ts";

export { StanzaCounter };

export interface StatsDeps {
  events: EventBus;
  sessions: SessionManager;
  /** When the server started serving, in ms since the epoch. */
  startTime: number;
}

/** How often the event loop's lag is measured. */
const LAG_INTERVAL_MS = 500;

export class ServerStats {
  readonly registry = new MetricRegistry();
  /** Stanzas received from clients, servers and components. */
  readonly received: StanzaCounter;
  /** Stanzas sent to clients. */
  readonly sent: StanzaCounter;
  /** `cadence_connections{type}`: set from the counts network modules report. */
  readonly connections: MetricFamily;
  /** `cadence_storage_operation_duration_seconds{driver,store_type,op}`. */
  readonly storage: MetricFamily;
  private connectionCounts = new Map<string, Set<() => number>>();
  private lagTimer: number | undefined;
  private maxLag = 0;

  constructor(private deps: StatsDeps) {
    const r = this.registry;
    const stanzas = r.family("counter", "cadence_stanzas", {
      help: "Stanzas received (from clients, servers, components) and sent to clients",
      labels: ["direction", "kind"],
    });
    const counter = (dir: string) =>
      new StanzaCounter(
        stanzas.with(dir, "message"),
        stanzas.with(dir, "presence"),
        stanzas.with(dir, "iq"),
      );
    this.received = counter("in");
    this.sent = counter("out");

    const sessions = r.family("gauge", "cadence_sessions", {
      help: "Client sessions with a bound resource",
      labels: ["host"],
    });
    this.connections = r.family("gauge", "cadence_connections", {
      help: "Open connections by type",
      labels: ["type"],
    });
    this.storage = r.family("histogram", "cadence_storage_operation_duration", {
      unit: "seconds",
      help: "Time taken by storage operations",
      labels: ["driver", "store_type", "op"],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    });
    const lag = r.family("gauge", "cadence_event_loop_lag", {
      unit: "seconds",
      help: "Largest event-loop delay seen since the previous collection",
    }).with();
    const rss = r.family("gauge", "process_resident_memory", {
      unit: "bytes",
      help: "Resident set size",
    }).with();
    const heap = r.family("gauge", "cadence_memory_heap_used", {
      unit: "bytes",
      help: "JavaScript heap in use",
    }).with();
    const heapTotal = r.family("gauge", "cadence_memory_heap_total", {
      unit: "bytes",
      help: "JavaScript heap reserved",
    }).with();
    const external = r.family("gauge", "cadence_memory_external", {
      unit: "bytes",
      help: "Memory outside the JavaScript heap held by JavaScript objects",
    }).with();
    r.family("gauge", "process_start_time", {
      unit: "seconds",
      help: "When the server started, in seconds since the Unix epoch",
    }).with().set(deps.startTime / 1000);
    const uptime = r.family("gauge", "cadence_uptime", {
      unit: "seconds",
      help: "Seconds since the server started",
    }).with();

    r.addCollector(() => {
      sessions.clear();
      for (const s of deps.sessions.full.values()) sessions.with(s.host).value++;
      this.connections.clear();
      for (const [type, fns] of this.connectionCounts) {
        let n = 0;
        for (const fn of fns) n += fn();
        this.connections.with(type).set(n);
      }
      const mem = Deno.memoryUsage();
      rss.set(mem.rss);
      heap.set(mem.heapUsed);
      heapTotal.set(mem.heapTotal);
      external.set(mem.external);
      uptime.set((Date.now() - deps.startTime) / 1000);
      lag.set(this.maxLag / 1000);
      this.maxLag = 0;
    });
  }

  /** A network module reports its open connections of `type`; returns what stops it. */
  reportConnections(type: string, count: () => number): () => void {
    let fns = this.connectionCounts.get(type);
    if (!fns) this.connectionCounts.set(type, fns = new Set());
    fns.add(count);
    return () => {
      fns.delete(count);
      if (fns.size === 0 && this.connectionCounts.get(type) === fns) {
        this.connectionCounts.delete(type);
      }
    };
  }

  /**
   * Fires `stats-update` on the server's bus, then renders every family.
   * The event-loop lag is measured from the first collection on.
   */
  async collect(): Promise<string> {
    this.startLagTimer();
    const r = this.deps.events.fire("stats-update", undefined);
    if (isPromise(r)) await r;
    return this.registry.render();
  }

  private startLagTimer(): void {
    if (this.lagTimer !== undefined) return;
    let expected = performance.now() + LAG_INTERVAL_MS;
    this.lagTimer = setInterval(() => {
      const now = performance.now();
      const lag = now - expected;
      if (lag > this.maxLag) this.maxLag = lag;
      expected = now + LAG_INTERVAL_MS;
    }, LAG_INTERVAL_MS) as unknown as number;
    Deno.unrefTimer(this.lagTimer);
  }

  /** Stops measuring (the server stops). */
  stop(): void {
    if (this.lagTimer !== undefined) clearInterval(this.lagTimer);
    this.lagTimer = undefined;
  }
}
