/**
 * The PEP nodes of each account: loaded from storage on first use, kept in
 * memory for the most recently used accounts (bounded by count and by the
 * size of their items), written through on every change.
 *
 * @example
 * ```ts
 * const { nodesOf, save } = accountNodes(nodeStore, indexStore);
 * const nodes = await nodesOf("juliet");
 * nodes.set(name, node);
 * await save("juliet", nodes, name, true);
 * ```
 * @module
 */
import type { KeyValStore, MapStore } from "../../core/storage/types.ts";
import type { Node } from "../../core/pubsub/node.ts";

/** A node as stored: for one that does not persist its items, the process that wrote them. */
export type StoredNode = Node & { boot?: string };

/** This process: marks the items of nodes that do not persist them. */
const BOOT = crypto.randomUUID();
/** Accounts whose nodes stay in memory, and their items' size at most (characters). */
const CACHED_ACCOUNTS = 2000;
const CACHE_CHARS = 64 * 1024 * 1024;

export function accountNodes(nodeStore: MapStore<StoredNode>, indexStore: KeyValStore<string[]>) {
  /** Accounts' nodes in memory, most recently used last, with the size of their items. */
  const cache = new Map<string, Map<string, Node>>();
  const sizes = new Map<string, number>();
  let cachedChars = 0;
  /** Loads in progress: two requests for one account share one copy of its nodes. */
  const loading = new Map<string, Promise<Map<string, Node>>>();

  function count(nodes: Map<string, Node>): number {
    let n = 0;
    for (const node of nodes.values()) for (const i of node.items) n += i.payload.length;
    return n;
  }

  /** Puts (back) an account's nodes in the cache and evicts the least recently used. */
  function remember(user: string, nodes: Map<string, Node>) {
    const now = count(nodes);
    cachedChars += now - (sizes.get(user) ?? 0);
    sizes.set(user, now);
    cache.delete(user);
    cache.set(user, nodes);
    while (cache.size > 1 && (cache.size > CACHED_ACCOUNTS || cachedChars > CACHE_CHARS)) {
      const oldest = cache.keys().next().value!;
      cache.delete(oldest);
      cachedChars -= sizes.get(oldest) ?? 0;
      sizes.delete(oldest);
    }
  }

  /** An account's nodes, by name (one shared copy while it is in memory). */
  function nodesOf(user: string): Promise<Map<string, Node>> {
    const nodes = cache.get(user);
    if (nodes) {
      cache.delete(user); // most recently used last
      cache.set(user, nodes);
      return Promise.resolve(nodes);
    }
    let p = loading.get(user);
    if (!p) {
      p = (async () => {
        const loaded = new Map<string, Node>();
        for (const name of (await indexStore.get(user)) ?? []) {
          const node = await nodeStore.get(user, name);
          if (!node) continue;
          // Items of a node that does not persist them live as long as this process.
          if (!node.config.persistItems && node.boot !== BOOT) node.items = [];
          loaded.set(name, node);
        }
        remember(user, loaded);
        return loaded;
      })().finally(() => loading.delete(user));
      loading.set(user, p);
    }
    return p;
  }

  /** Writes a node (or its removal) through to storage; the index when the set of nodes changed. */
  async function save(user: string, nodes: Map<string, Node>, name: string, created = false) {
    const node = nodes.get(name);
    // Non-persistent items are written too, marked with this process: if the
    // account leaves the cache they come back; after a restart they do not.
    const stored = node && !node.config.persistItems ? { ...node, boot: BOOT } : node;
    await nodeStore.set(user, name, stored ?? null);
    if (created || !node) await indexStore.set(user, [...nodes.keys()]);
    remember(user, nodes);
  }

  /** The size of an account's items (characters of XML). */
  const charsOf = (user: string, nodes: Map<string, Node>): number =>
    sizes.get(user) ?? count(nodes);

  return { nodesOf, save, charsOf };
}
