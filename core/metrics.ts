/**
 * Metrics, as Prosody's OpenMetrics statistics: a registry of metric
 * families (counter, gauge, histogram, summary), each with a name, a unit,
 * a help text and label keys. `family.with(...labelValues)` returns the
 * metric for one label set, made once and cached: keep it and call
 * `add`/`set`/`sample` on it in hot paths (no allocation there).
 * `render()` gives the OpenMetrics text exposition. Each server has its own
 * registry, so several servers in one process do not mix.
 *
 * @example
 * ```ts
 * const registry = new MetricRegistry();
 * const stanzas = registry.family("counter", "cadence_stanzas", {
 *   help: "Stanzas routed",
 *   labels: ["kind"],
 * });
 * const messages = stanzas.with("message"); // keep it
 * messages.add(1);
 * registry.render(); // "# TYPE cadence_stanzas counter\n…cadence_stanzas_total{kind=\"message\"} 1\n…# EOF\n"
 * ```
 * @module
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary";

/** What a family is declared with. */
export interface MetricOptions {
  /** The unit (`seconds`, `bytes`): the name gets it as a suffix when it lacks it. */
  unit?: string;
  help?: string;
  /** Label keys, in the order `with()` takes their values. */
  labels?: readonly string[];
  /** A histogram's bucket upper bounds (`+Inf` is added). */
  buckets?: readonly number[];
}

/** Default histogram buckets, for durations in seconds (1 ms … 10 s). */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/**
 * One metric: a family's value for one label set. Counters `add`, gauges
 * `set` (or `add`), histograms and summaries `sample`.
 *
 * @example
 * ```ts
 * const m = new MetricRegistry().family("histogram", "t", { unit: "seconds" }).with();
 * m.sample(0.003);
 * ```
 */
export class Metric {
  /** A counter's or gauge's value; a histogram's or summary's sum. */
  value = 0;
  /** How many samples (histogram, summary). */
  count = 0;
  /** Samples per bucket (not cumulative); the last is `+Inf`. */
  readonly buckets: Float64Array | undefined;

  constructor(
    /** `key="value",…` for this label set, escaped (rendered as is). */
    readonly labelText: string,
    readonly labelValues: readonly string[],
    private bounds: readonly number[] | undefined,
  ) {
    this.buckets = bounds ? new Float64Array(bounds.length + 1) : undefined;
  }

  add(n = 1): void {
    this.value += n;
  }

  set(v: number): void {
    this.value = v;
  }

  sample(v: number): void {
    this.value += v;
    this.count++;
    const bounds = this.bounds;
    if (!bounds) return;
    let i = 0;
    while (i < bounds.length && v > bounds[i]) i++;
    this.buckets![i]++;
  }
}

/**
 * A metric family: one name, one type, its label keys, a metric per label set.
 *
 * @example
 * ```ts
 * const f = new MetricRegistry().family("gauge", "cadence_connections", { labels: ["type"] });
 * f.with("c2s").set(3);
 * ```
 */
export class MetricFamily {
  private children = new Map<string, Metric>();
  private single: Metric | undefined;
  /** @internal how many module instances declared it (it goes with the last). */
  users = 0;

  constructor(
    readonly type: MetricType,
    readonly name: string,
    readonly unit: string,
    readonly help: string,
    readonly labels: readonly string[],
    readonly buckets: readonly number[] | undefined,
  ) {}

  /** The metric for these label values (one per label key), made on first use. */
  with(...values: string[]): Metric {
    if (values.length === 0 && this.single) return this.single;
    if (values.length !== this.labels.length) {
      throw new Error(
        `metric ${this.name} has labels (${this.labels.join(", ")}), got ${values.length} values`,
      );
    }
    const key = values.join("\u0000");
    let m = this.children.get(key);
    if (!m) {
      const text = this.labels.map((k, i) => `${k}="${escape(String(values[i]))}"`).join(",");
      m = new Metric(text, values.map(String), this.buckets);
      this.children.set(key, m);
      if (values.length === 0) this.single = m;
    }
    return m;
  }

  /** The metrics made so far. */
  metrics(): IterableIterator<Metric> {
    return this.children.values();
  }

  /** Forgets every label set (gauges recomputed at each collection). */
  clear(): void {
    this.children.clear();
    this.single = undefined;
  }

  /** Forgets the label sets whose label `index` has `value` (a host that goes). */
  removeWhere(index: number, value: string): void {
    for (const [key, m] of this.children) {
      if (m.labelValues[index] === value) this.children.delete(key);
    }
  }

  /** This family in OpenMetrics text (no `# EOF`). */
  render(): string {
    const n = this.name;
    let out = `# TYPE ${n} ${this.type}\n`;
    if (this.unit) out += `# UNIT ${n} ${this.unit}\n`;
    if (this.help) out += `# HELP ${n} ${escape(this.help)}\n`;
    for (const m of this.children.values()) {
      const l = m.labelText;
      const braces = l ? `{${l}}` : "";
      switch (this.type) {
        case "counter":
          out += `${n}_total${braces} ${num(m.value)}\n`;
          break;
        case "gauge":
          out += `${n}${braces} ${num(m.value)}\n`;
          break;
        case "histogram": {
          const sep = l ? l + "," : "";
          let cumulative = 0;
          const bounds = this.buckets!;
          for (let i = 0; i <= bounds.length; i++) {
            cumulative += m.buckets![i];
            const le = i < bounds.length ? leText(bounds[i]) : "+Inf";
            out += `${n}_bucket{${sep}le="${le}"} ${num(cumulative)}\n`;
          }
          out += `${n}_count${braces} ${num(m.count)}\n${n}_sum${braces} ${num(m.value)}\n`;
          break;
        }
        case "summary":
          out += `${n}_count${braces} ${num(m.count)}\n${n}_sum${braces} ${num(m.value)}\n`;
          break;
      }
    }
    return out;
  }
}

/** Counts stanzas by kind, one increment each and no allocation. */
export class StanzaCounter {
  constructor(
    private message: Metric,
    private presence: Metric,
    private iq: Metric,
  ) {}

  /** One stanza with this element name (anything but message/presence/iq is ignored). */
  count(name: string): void {
    if (name === "message") this.message.value++;
    else if (name === "presence") this.presence.value++;
    else if (name === "iq") this.iq.value++;
  }
}

/**
 * The metric families of one server, and the functions that set gauges
 * just before each collection.
 *
 * @example
 * ```ts
 * const registry = new MetricRegistry();
 * const up = registry.family("gauge", "cadence_up").with();
 * registry.addCollector(() => up.set(1));
 * const text = registry.render();
 * ```
 */
export class MetricRegistry {
  private families = new Map<string, MetricFamily>();
  private collectors = new Set<() => void>();

  /**
   * Declares a family, or returns the one of that name declared already
   * (same type and labels, else an error). `name` is made OpenMetrics-safe,
   * and gets `_<unit>` when it does not end with it (and no `_total`).
   */
  family(type: MetricType, name: string, opts: MetricOptions = {}): MetricFamily {
    const unit = opts.unit ? safeName(opts.unit) : "";
    let full = safeName(name);
    if (type === "counter") full = full.replace(/_total$/, "");
    if (unit && !full.endsWith("_" + unit)) full += "_" + unit;
    const labels = (opts.labels ?? []).map(String);
    for (const l of labels) {
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(l) || (type === "histogram" && l === "le")) {
        throw new Error(`metric ${full}: invalid label name ${JSON.stringify(l)}`);
      }
    }
    const existing = this.families.get(full);
    if (existing) {
      if (existing.type !== type || existing.labels.join() !== labels.join()) {
        throw new Error(
          `metric ${full} exists already as a ${existing.type} (${existing.labels.join(", ")})`,
        );
      }
      return existing;
    }
    let buckets: number[] | undefined;
    if (type === "histogram") {
      buckets = [...(opts.buckets ?? DEFAULT_BUCKETS)].filter((b) => b !== Infinity)
        .sort((a, b) => a - b);
    }
    const f = new MetricFamily(type, full, unit, opts.help ?? "", labels, buckets);
    this.families.set(full, f);
    return f;
  }

  /** A family by its full name. */
  get(name: string): MetricFamily | undefined {
    return this.families.get(name);
  }

  /** The families' names, in declaration order. */
  names(): string[] {
    return [...this.families.keys()];
  }

  remove(name: string): void {
    this.families.delete(name);
  }

  /** Runs `fn` before each collection (to set gauges); returns what removes it. */
  addCollector(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }

  /** Runs the collectors, then renders every family in OpenMetrics text with `# EOF`. */
  render(): string {
    for (const fn of this.collectors) fn();
    let out = "";
    for (const f of this.families.values()) out += f.render();
    return out + "# EOF\n";
  }
}

/** A name with only OpenMetrics' characters (`[a-zA-Z_:][a-zA-Z0-9_:]*`). */
export function safeName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_:]/g, "_");
  return /^[0-9]/.test(s) ? "_" + s : s;
}

/** Escapes a label value or help text: backslash, double quote, newline. */
export function escape(s: string): string {
  return s.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : "\\" + c);
}

function num(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** Bucket bounds as floats ("1.0", "0.25"), as other exposers write them. */
function leText(v: number): string {
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}
