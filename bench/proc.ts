/**
 * Reads a process's CPU time and resident memory from Linux `/proc`, and this
 * process's open-file limit. Used to measure the server from outside.
 * @module
 */

let clockTicks: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`), read once and remembered. */
export async function clockTicksPerSecond(): Promise<number> {
  if (clockTicks !== undefined) return clockTicks;
  const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
  const n = Number(new TextDecoder().decode(out.stdout).trim());
  clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  return clockTicks;
}

/**
 * CPU time of `pid` in clock ticks: utime + stime + cutime + cstime
 * (fields 14–17 of `/proc/PID/stat`), so waited-for children count too.
 */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // The command name (field 2) is in parentheses and may contain spaces:
  // count fields from after its closing parenthesis, where field 3 starts.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const field = (n: number) => Number(rest[n - 3]);
  return field(14) + field(15) + field(16) + field(17);
}

/** CPU time of `pid` in milliseconds (see {@link cpuTicks}). */
export async function cpuMs(pid: number): Promise<number> {
  return (await cpuTicks(pid)) * 1000 / await clockTicksPerSecond();
}

/** Resident set size of `pid` in KiB (`VmRSS` in `/proc/PID/status`). */
export async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]);
}

/** This process's soft limit on open files (`Max open files` in `/proc/self/limits`). */
export async function openFileLimit(): Promise<number> {
  const limits = await Deno.readTextFile("/proc/self/limits");
  const m = limits.match(/^Max open files\s+(\d+|unlimited)/m);
  if (!m) return 1024;
  return m[1] === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

/** Parent pid (field 4 of `/proc/PID/stat`), or undefined if the process is gone. */
async function parentOf(pid: number): Promise<number | undefined> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/**
 * `pid` and every live descendant of it (a scan of `/proc`): a server's
 * whole process tree, such as beam.smp with erl_child_setup and its ports.
 */
export async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const p = Number(entry.name);
    const parent = await parentOf(p);
    if (parent !== undefined) parents.set(p, parent);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

/** The system (kernel) part of {@link cpuTicks}: stime + cstime (fields 15 and 17). */
export async function systemTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[15 - 3]) + Number(rest[17 - 3]);
}

/** System (kernel) CPU time (ms) of `pid` and its live descendants together. */
export async function treeSystemMs(pid: number): Promise<number> {
  let ticks = 0;
  for (const p of await processTree(pid)) ticks += await systemTicks(p).catch(() => 0);
  return ticks * 1000 / await clockTicksPerSecond();
}

/** CPU time (ms, see {@link cpuTicks}) of `pid` and its live descendants together. */
export async function treeCpuMs(pid: number): Promise<number> {
  let ticks = 0;
  for (const p of await processTree(pid)) ticks += await cpuTicks(p).catch(() => 0);
  return ticks * 1000 / await clockTicksPerSecond();
}

/** Resident set size (KiB) of `pid` and its live descendants together. */
export async function treeRssKiB(pid: number): Promise<number> {
  let kib = await rssKiB(pid);
  for (const p of (await processTree(pid)).slice(1)) kib += await rssKiB(p).catch(() => 0);
  return kib;
}

/** A process's start time (field 22 of `/proc/PID/stat`), to tell it from a later one with its pid. */
export async function startTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[22 - 3];
  } catch {
    return undefined;
  }
}
