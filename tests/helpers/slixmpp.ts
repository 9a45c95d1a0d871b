/**
 * Whether Debian's python3-slixmpp can run the interop scripts: false (with
 * a warning) on a developer machine without it; in CI, where `.ci/run`
 * installs it, its absence is an error rather than a silent skip.
 *
 * @example
 * ```ts
 * if (!await slixmppReady()) return;
 * ```
 */
export async function slixmppReady(): Promise<boolean> {
  const r = await new Deno.Command("/usr/bin/python3", { args: ["-c", "import slixmpp"] })
    .output().catch(() => ({ success: false }));
  if (r.success) return true;
  if (Deno.env.get("CI")) throw new Error("python3-slixmpp is missing in CI");
  console.warn("skipped: python3-slixmpp is not installed");
  return false;
}
