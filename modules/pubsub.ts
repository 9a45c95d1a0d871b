/**
 * A publish-subscribe service (XEP-0060) as a component, as Prosody's
 * mod_pubsub: `components: { "pubsub.example.com": { module: "pubsub" } }`.
 * The server's admins create nodes (as Prosody's default) and own them; owners
 * manage affiliations (owner, publisher, member, outcast) and
 * subscriptions; owners and publishers publish, retract; subscribers get
 * notifications (with payloads unless `deliver_payloads` is off, with the
 * publisher when `expose_publisher` is on), unless they turned delivery off
 * in their subscription options (`pubsub#deliver`, XEP-0060 §6.3; set with
 * the subscription or after). Access models: open (the
 * default) and whitelist (owners, publishers, members). Nodes, items,
 * affiliations and subscriptions persist through the storage API.
 *
 * Options: `pubsub_max_items` (256, the most a node may keep),
 * `pubsub_max_nodes` (1,000), `pubsub_max_item_size` (256 KiB),
 * `pubsub_max_total_size` (64 MiB of items in all), `expose_publisher` (false).
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { Origin, StanzaEvent } from "../core/router.ts";
import { bare, prep } from "../core/jid.ts";
import { parseXml } from "../core/xml/parser.ts";
import { element, message, type Stanza } from "../core/xml/stanza.ts";
import { buildForm, DATAFORM_NS, readForm } from "../core/xml/dataform.ts";
import type { KeyValStore, MapStore } from "../core/storage/types.ts";
import {
  applyForm,
  configForm,
  defaultConfig,
  EVENT_NS,
  type Item,
  meetsPreconditions,
  newNode,
  type Node,
  NODE_CONFIG,
  OWNER_NS,
  PUBLISH_OPTIONS,
  publishItem,
  PUBSUB_NS,
  pubsubError,
  setConfig,
} from "../core/pubsub/node.ts";

const DISCO_INFO = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS = "http://jabber.org/protocol/disco#items";

type Affiliation = "owner" | "publisher" | "member" | "outcast";

/** Longest node name and item id; most subscriptions per node and per account on a node. */
const MAX_NAME = 1024;
const MAX_SUBSCRIBERS = 10_000;
const MAX_SUBSCRIPTIONS_PER_ACCOUNT = 10;
/** Most affiliations one node keeps. */
const MAX_AFFILIATIONS = 10_000;

/** A node of the service: its items and configuration, and who is who. */
interface ServiceNode extends Node {
  /** By bare JID. */
  affiliations: Record<string, Affiliation>;
  /** Subscribed JIDs (bare or full, as they subscribed). */
  subscribers: string[];
  /** Subscription options (XEP-0060 §6.3), by subscribed JID, where not the defaults. */
  options?: Record<string, SubscriptionOptions>;
}

/** What a subscriber chose: `pubsub#deliver` (notifications on or off). */
interface SubscriptionOptions {
  deliver: boolean;
}

const SUBSCRIBE_OPTIONS = "http://jabber.org/protocol/pubsub#subscribe_options";

/** The options a subscriber may set, read from a submitted form; or why not. */
function readOptions(
  x: Stanza | undefined,
  current: SubscriptionOptions,
): SubscriptionOptions | string {
  if (!x) return "an options form is required";
  const form = readForm(x);
  if (form.type !== undefined && form.type !== SUBSCRIBE_OPTIONS) {
    return "not a subscribe_options form";
  }
  const next = { ...current };
  for (const [name, values] of form.fields) {
    if (name !== "pubsub#deliver") return `unsupported option ${name}`;
    const v = values[0];
    if (v !== "1" && v !== "0" && v !== "true" && v !== "false") {
      return "pubsub#deliver is a boolean";
    }
    next.deliver = v === "1" || v === "true";
  }
  return next;
}

const FEATURES = [
  "access-open",
  "access-whitelist",
  "config-node",
  "create-and-configure",
  "create-nodes",
  "delete-items",
  "delete-nodes",
  "item-ids",
  "manage-affiliations",
  "manage-subscriptions",
  "modify-affiliations",
  "persistent-items",
  "publish",
  "publish-options",
  "publisher-affiliation",
  "purge-nodes",
  "retract-items",
  "retrieve-affiliations",
  "retrieve-items",
  "retrieve-subscriptions",
  "subscribe",
  "subscription-options",
];

export default async function pubsub(module: Module) {
  const maxItems = module.getOptionInteger("pubsub_max_items", 256, { min: 1 });
  const maxNodes = module.getOptionInteger("pubsub_max_nodes", 1000, { min: 1 });
  const maxItemSize = module.getOptionInteger("pubsub_max_item_size", 256 * 1024, { min: 64 });
  const exposePublisher = module.getOptionBoolean("expose_publisher", false)!;
  // All nodes live in memory: their items together are capped (not a Prosody option).
  const maxTotalChars = module.getOptionInteger("pubsub_max_total_size", 64 * 1024 * 1024, {
    min: 1024,
  });
  // Who may create nodes: the server's admins, as Prosody's default.
  const admins = module.getOptionInheritedSet("admins");
  const nodeStore = module.openStore("pubsub", "map") as MapStore<ServiceNode>;
  const indexStore = module.openStore("pubsub_nodes") as KeyValStore<string[]>;

  // The service's nodes, all in memory (bounded by pubsub_max_nodes × pubsub_max_items).
  const nodes = new Map<string, ServiceNode>();
  /** The size of each node's items (characters of XML), and of all of them. */
  const sizes = new Map<string, number>();
  let totalChars = 0;
  const sizeOf = (node: ServiceNode) => node.items.reduce((n, i) => n + i.payload.length, 0);
  function resize(name: string) {
    const node = nodes.get(name);
    const now = node ? sizeOf(node) : 0;
    totalChars += now - (sizes.get(name) ?? 0);
    if (node) sizes.set(name, now);
    else sizes.delete(name);
  }
  for (const name of (await indexStore.get(null)) ?? []) {
    const node = await nodeStore.get(null, name);
    if (node) nodes.set(name, node);
    resize(name);
  }

  async function save(name: string, indexChanged = false) {
    resize(name);
    const node = nodes.get(name);
    // Options of subscriptions that ended go with them.
    for (const jid of Object.keys(node?.options ?? {})) {
      if (!node!.subscribers.includes(jid)) delete node!.options![jid];
    }
    // Items of a node that does not persist them live in memory only.
    await nodeStore.set(
      null,
      name,
      node && !node.config.persistItems ? { ...node, items: [] } : node ?? null,
    );
    if (indexChanged) await indexStore.set(null, [...nodes.keys()]);
  }

  const affiliationOf = (node: ServiceNode, jid: string): Affiliation | "none" =>
    node.affiliations[bare(jid)] ?? "none";
  const canPublish = (node: ServiceNode, jid: string) =>
    ["owner", "publisher"].includes(affiliationOf(node, jid));
  const isOwner = (node: ServiceNode, jid: string) => affiliationOf(node, jid) === "owner";

  /** Why `jid` may not read or subscribe to `node`, or undefined if it may. */
  function denied(node: ServiceNode, jid: string) {
    const a = affiliationOf(node, jid);
    if (a === "outcast") return { type: "auth", condition: "forbidden" } as const;
    if (node.config.accessModel === "open" || a !== "none") return undefined;
    return { type: "cancel", condition: "not-allowed", specific: "closed-node" } as const;
  }

  /** Subscribers that lost access (affiliation or access model changed) are dropped. */
  function dropDenied(node: ServiceNode) {
    node.subscribers = node.subscribers.filter((s) => !denied(node, s));
  }

  function fail(
    origin: Origin,
    stanza: Stanza,
    type: "cancel" | "modify" | "auth" | "wait",
    condition: string,
    specific?: string,
    text?: string,
  ) {
    origin.send(pubsubError(stanza, type, condition, specific, text));
    return true;
  }

  function itemElement(item: Item, payload: boolean) {
    const attrs: Record<string, string> = { id: item.id };
    if (exposePublisher) attrs.publisher = item.publisher;
    const el = element("item", attrs);
    if (payload) el.addChild(parseXml(item.payload));
    return el;
  }

  /** Sends `event` to every subscriber (or to `only`). */
  function notify(node: ServiceNode, event: Stanza, only?: string[]) {
    for (const to of only ?? node.subscribers) {
      if (denied(node, to) || node.options?.[to]?.deliver === false) continue;
      module.send(
        message({ from: module.host, to, type: node.config.notificationType })
          .tag("event", { xmlns: EVENT_NS }).addChild(event.clone()).up(),
      );
    }
  }

  // --- what a user does ----------------------------------------------------------

  async function onSet(origin: Origin, stanza: Stanza, ps: Stanza) {
    const from = stanza.attrs.from ?? origin.full_jid ?? "";
    // The action; `<configure/>`, `<publish-options/>` and `<options/>` may go with it.
    const op =
      ps.tags().find((c) => !["configure", "publish-options", "options"].includes(c.name)) ??
        ps.getChild("options");
    const name = op?.attrs.node;
    if (!op) return fail(origin, stanza, "modify", "bad-request");
    if (op.name === "create") {
      if (!admins.has(bare(from))) return fail(origin, stanza, "auth", "forbidden");
      if (!name) return fail(origin, stanza, "modify", "not-acceptable", "nodeid-required");
      if (name.length > MAX_NAME) return fail(origin, stanza, "modify", "not-acceptable");
      if (nodes.has(name)) return fail(origin, stanza, "cancel", "conflict");
      if (nodes.size >= maxNodes) return fail(origin, stanza, "wait", "resource-constraint");
      let config = { ...defaultConfig(), accessModel: "open" as const };
      const x = ps.getChild("configure", PUBSUB_NS)?.getChild("x", DATAFORM_NS);
      if (x) {
        const r = applyForm(config, readForm(x), maxItems);
        if ("error" in r) return fail(origin, stanza, "modify", r.error, undefined, r.text);
        if (r.config.accessModel !== "open" && r.config.accessModel !== "whitelist") {
          return fail(origin, stanza, "modify", "not-acceptable", undefined, "open or whitelist");
        }
        config = r.config as typeof config;
      }
      nodes.set(name, {
        ...newNode(name, config),
        affiliations: { [bare(from)]: "owner" },
        subscribers: [],
      });
      await save(name, true);
      origin.send(stanza.reply());
      return true;
    }
    if (!name) return fail(origin, stanza, "modify", "bad-request", "nodeid-required");
    const node = nodes.get(name);
    if (!node) return fail(origin, stanza, "cancel", "item-not-found");

    if (op.name === "publish") {
      if (!canPublish(node, from)) return fail(origin, stanza, "auth", "forbidden");
      const items = op.tags().filter((c) => c.name === "item");
      if (items.length !== 1) return fail(origin, stanza, "modify", "bad-request", "item-required");
      const payloads = items[0].tags();
      if (payloads.length !== 1) {
        const why = payloads.length ? "invalid-payload" : "payload-required";
        return fail(origin, stanza, "modify", "bad-request", why);
      }
      payloads[0].attrs.xmlns ??= PUBSUB_NS;
      const payload = payloads[0].toString();
      if (payload.length > maxItemSize) {
        return fail(origin, stanza, "modify", "not-acceptable", "payload-too-big");
      }
      const optionsX = ps.getChild("publish-options", PUBSUB_NS)?.getChild("x", DATAFORM_NS);
      if (optionsX) {
        const options = readForm(optionsX);
        if (
          options.type !== PUBLISH_OPTIONS || !meetsPreconditions(node.config, options, maxItems)
        ) {
          return fail(origin, stanza, "cancel", "conflict", "precondition-not-met");
        }
      }
      if ((items[0].attrs.id ?? "").length > MAX_NAME) {
        return fail(origin, stanza, "modify", "not-acceptable");
      }
      const id = items[0].attrs.id || crypto.randomUUID();
      const replaced = node.items.find((i) => i.id === id)?.payload.length ?? 0;
      if (totalChars - replaced + payload.length > maxTotalChars) {
        return fail(
          origin,
          stanza,
          "wait",
          "resource-constraint",
          undefined,
          "The service is full",
        );
      }
      const item: Item = { id, payload, publisher: bare(from), when: Date.now() };
      publishItem(node, item, maxItems);
      await save(name);
      origin.send(
        stanza.reply().tag("pubsub", { xmlns: PUBSUB_NS }).tag("publish", { node: name })
          .tag("item", { id: item.id }).up().up().up(),
      );
      notify(
        node,
        element("items", { node: name }).addChild(
          itemElement(item, node.config.deliverPayloads),
        ),
      );
      return true;
    }
    if (op.name === "retract") {
      if (!canPublish(node, from)) return fail(origin, stanza, "auth", "forbidden");
      const id = op.getChild("item")?.attrs.id;
      if (!id) return fail(origin, stanza, "modify", "bad-request", "item-required");
      const at = node.items.findIndex((i) => i.id === id);
      if (at === -1) return fail(origin, stanza, "cancel", "item-not-found");
      node.items.splice(at, 1);
      await save(name);
      origin.send(stanza.reply());
      const asked = op.attrs.notify === "true" || op.attrs.notify === "1";
      if (asked || node.config.notifyRetract) {
        notify(node, element("items", { node: name }).tag("retract", { id }).up());
      }
      return true;
    }
    if (op.name === "options") {
      const jid = prep(op.attrs.jid ?? "");
      if (!jid || bare(jid) !== bare(from)) return fail(origin, stanza, "auth", "forbidden");
      if (!node.subscribers.includes(jid)) {
        return fail(origin, stanza, "cancel", "unexpected-request", "not-subscribed");
      }
      const options = readOptions(
        op.getChild("x", DATAFORM_NS),
        node.options?.[jid] ?? { deliver: true },
      );
      if (typeof options === "string") {
        return fail(origin, stanza, "modify", "bad-request", "invalid-options", options);
      }
      node.options = { ...node.options, [jid]: options };
      await save(name);
      origin.send(stanza.reply());
      return true;
    }
    if (op.name === "subscribe" || op.name === "unsubscribe") {
      const jid = prep(op.attrs.jid ?? "");
      if (!jid) return fail(origin, stanza, "modify", "bad-request", "invalid-jid");
      if (bare(jid) !== bare(from)) {
        return op.name === "subscribe"
          ? fail(origin, stanza, "modify", "bad-request", "invalid-jid")
          : fail(origin, stanza, "auth", "forbidden"); // XEP-0060 §6.2.3.3
      }
      if (op.name === "unsubscribe") {
        if (!node.subscribers.includes(jid)) {
          return fail(origin, stanza, "cancel", "unexpected-request", "not-subscribed");
        }
        node.subscribers = node.subscribers.filter((s) => s !== jid);
        if (node.options?.[jid]) delete node.options[jid];
        await save(name);
        origin.send(stanza.reply());
        return true;
      }
      const why = denied(node, jid);
      if (why) return fail(origin, stanza, why.type, why.condition, why.specific);
      // Options may come with the subscription (XEP-0060 §6.3.7).
      const withOptions = ps.getChild("options");
      const options = withOptions
        ? readOptions(withOptions.getChild("x", DATAFORM_NS), { deliver: true })
        : undefined;
      if (typeof options === "string") {
        return fail(origin, stanza, "modify", "bad-request", "invalid-options", options);
      }
      if (!node.subscribers.includes(jid)) {
        const mine = node.subscribers.filter((s) => bare(s) === bare(jid)).length;
        if (mine >= MAX_SUBSCRIPTIONS_PER_ACCOUNT || node.subscribers.length >= MAX_SUBSCRIBERS) {
          return fail(origin, stanza, "wait", "resource-constraint");
        }
        node.subscribers.push(jid);
      }
      if (options) node.options = { ...node.options, [jid]: options };
      await save(name);
      origin.send(
        stanza.reply().tag("pubsub", { xmlns: PUBSUB_NS })
          .tag("subscription", { node: name, jid, subscription: "subscribed" }).up().up(),
      );
      const last = node.items.at(-1);
      if (last && node.config.sendLastPublishedItem !== "never") {
        const event = element("items", { node: name })
          .addChild(itemElement(last, node.config.deliverPayloads));
        notify(node, event, [jid]);
      }
      return true;
    }
    return fail(origin, stanza, "cancel", "feature-not-implemented");
  }

  function onGet(origin: Origin, stanza: Stanza, ps: Stanza) {
    const from = stanza.attrs.from ?? origin.full_jid ?? "";
    const op = ps.tags()[0];
    if (op?.name === "subscriptions") {
      const out = element("subscriptions");
      for (const node of nodes.values()) {
        for (const s of node.subscribers) {
          if (bare(s) === bare(from)) {
            out.tag("subscription", { node: node.name, jid: s, subscription: "subscribed" }).up();
          }
        }
      }
      origin.send(stanza.reply().tag("pubsub", { xmlns: PUBSUB_NS }).addChild(out).up());
      return true;
    }
    if (op?.name === "affiliations") {
      const out = element("affiliations");
      for (const node of nodes.values()) {
        const a = affiliationOf(node, from);
        if (a !== "none") out.tag("affiliation", { node: node.name, affiliation: a }).up();
      }
      origin.send(stanza.reply().tag("pubsub", { xmlns: PUBSUB_NS }).addChild(out).up());
      return true;
    }
    if (op?.name === "options") {
      const name = op.attrs.node;
      const node = name === undefined ? undefined : nodes.get(name);
      if (!node) return fail(origin, stanza, "cancel", "item-not-found");
      const jid = prep(op.attrs.jid ?? "");
      if (!jid || bare(jid) !== bare(from)) return fail(origin, stanza, "auth", "forbidden");
      if (!node.subscribers.includes(jid)) {
        return fail(origin, stanza, "cancel", "unexpected-request", "not-subscribed");
      }
      const deliver = node.options?.[jid]?.deliver ?? true;
      const form = buildForm("form", SUBSCRIBE_OPTIONS, [
        {
          var: "pubsub#deliver",
          type: "boolean",
          label: "Receive notifications",
          values: [deliver ? "1" : "0"],
        },
      ]);
      origin.send(
        stanza.reply().tag("pubsub", { xmlns: PUBSUB_NS })
          .tag("options", { node: node.name, jid }).addChild(form).up().up(),
      );
      return true;
    }
    if (op?.name !== "items") return fail(origin, stanza, "cancel", "feature-not-implemented");
    const name = op.attrs.node;
    if (!name) return fail(origin, stanza, "modify", "bad-request", "nodeid-required");
    const node = nodes.get(name);
    if (!node) return fail(origin, stanza, "cancel", "item-not-found");
    const why = denied(node, from);
    if (why) return fail(origin, stanza, why.type, why.condition, why.specific);
    const ids = op.tags().filter((c) => c.name === "item").map((c) => c.attrs.id);
    let chosen = ids.length ? node.items.filter((i) => ids.includes(i.id)) : node.items;
    if (op.attrs.max_items !== undefined) {
      const max = Number(op.attrs.max_items);
      if (!Number.isInteger(max) || max < 0) return fail(origin, stanza, "modify", "bad-request");
      chosen = chosen.slice(Math.max(0, chosen.length - max));
    }
    const out = element("items", { node: name });
    for (const i of chosen) out.addChild(itemElement(i, true));
    origin.send(stanza.reply().tag("pubsub", { xmlns: PUBSUB_NS }).addChild(out).up());
    return true;
  }

  // --- what an owner does ----------------------------------------------------------

  async function onOwner(origin: Origin, stanza: Stanza, ps: Stanza) {
    const from = stanza.attrs.from ?? origin.full_jid ?? "";
    const op = ps.tags()[0];
    const name = op?.attrs.node;
    if (op?.name === "default") return fail(origin, stanza, "cancel", "feature-not-implemented");
    if (!op || !name) return fail(origin, stanza, "modify", "bad-request", "nodeid-required");
    const node = nodes.get(name);
    if (!node) return fail(origin, stanza, "cancel", "item-not-found");
    if (!isOwner(node, from)) return fail(origin, stanza, "auth", "forbidden");
    const get = stanza.attrs.type === "get";
    const reply = (child: Stanza) =>
      origin.send(stanza.reply().tag("pubsub", { xmlns: OWNER_NS }).addChild(child).up());

    if (op.name === "configure" && get) {
      reply(element("configure", { node: name }).addChild(configForm(node.config)));
      return true;
    }
    if (op.name === "configure") {
      const x = op.getChild("x", DATAFORM_NS);
      const form = x ? readForm(x) : undefined;
      if (!form || form.type !== NODE_CONFIG) return fail(origin, stanza, "modify", "bad-request");
      const r = applyForm(node.config, form, maxItems);
      if ("error" in r) return fail(origin, stanza, "modify", r.error, undefined, r.text);
      if (r.config.accessModel !== "open" && r.config.accessModel !== "whitelist") {
        return fail(origin, stanza, "modify", "not-acceptable", undefined, "open or whitelist");
      }
      setConfig(node, r.config, maxItems);
      dropDenied(node); // e.g. open → whitelist
      await save(name);
      origin.send(stanza.reply());
      return true;
    }
    if (op.name === "delete" && !get) {
      const subscribers = node.subscribers;
      nodes.delete(name);
      await save(name, true);
      origin.send(stanza.reply());
      if (node.config.notifyDelete) notify(node, element("delete", { node: name }), subscribers);
      return true;
    }
    if (op.name === "purge" && !get) {
      node.items = [];
      await save(name);
      origin.send(stanza.reply());
      notify(node, element("purge", { node: name }));
      return true;
    }
    if (op.name === "affiliations" && get) {
      const out = element("affiliations", { node: name });
      for (const [jid, a] of Object.entries(node.affiliations)) {
        out.tag("affiliation", { jid, affiliation: a }).up();
      }
      reply(out);
      return true;
    }
    if (op.name === "affiliations") {
      const next = { ...node.affiliations };
      for (const a of op.tags()) {
        const jid = prep(a.attrs.jid ?? "");
        const aff = a.attrs.affiliation;
        if (!jid || !["owner", "publisher", "member", "outcast", "none"].includes(aff ?? "")) {
          return fail(origin, stanza, "modify", "bad-request");
        }
        if (aff === "none") delete next[bare(jid)];
        else next[bare(jid)] = aff as Affiliation;
      }
      if (!Object.values(next).includes("owner")) {
        return fail(origin, stanza, "modify", "not-acceptable", undefined, "A node needs an owner");
      }
      if (Object.keys(next).length > MAX_AFFILIATIONS) {
        return fail(origin, stanza, "wait", "resource-constraint");
      }
      node.affiliations = next;
      dropDenied(node); // outcasts, and on a whitelist node those no longer affiliated
      await save(name);
      origin.send(stanza.reply());
      return true;
    }
    if (op.name === "subscriptions" && get) {
      const out = element("subscriptions", { node: name });
      for (const jid of node.subscribers) {
        out.tag("subscription", { jid, subscription: "subscribed" }).up();
      }
      reply(out);
      return true;
    }
    if (op.name === "subscriptions") {
      for (const s of op.tags()) {
        const jid = prep(s.attrs.jid ?? "");
        const state = s.attrs.subscription;
        if (!jid || (state !== "subscribed" && state !== "none")) {
          return fail(origin, stanza, "modify", "bad-request");
        }
        if (state === "subscribed" && denied(node, jid)) {
          return fail(
            origin,
            stanza,
            "modify",
            "not-acceptable",
            undefined,
            `${jid} may not subscribe`,
          );
        }
        node.subscribers = node.subscribers.filter((x) => x !== jid);
        if (state === "subscribed") {
          if (node.subscribers.length >= MAX_SUBSCRIBERS) {
            return fail(origin, stanza, "wait", "resource-constraint");
          }
          node.subscribers.push(jid);
        }
      }
      await save(name);
      origin.send(stanza.reply());
      return true;
    }
    return fail(origin, stanza, "cancel", "feature-not-implemented");
  }

  // --- dispatch, and what the service says of itself -----------------------------------

  module.hook("iq/host", async ({ origin, stanza }: StanzaEvent) => {
    const type = stanza.attrs.type;
    if (type !== "get" && type !== "set") return;
    const child = stanza.firstChild();
    if (!child) return;
    const ns = child.attrs.xmlns;
    if (child.name === "pubsub" && ns === PUBSUB_NS) {
      return type === "set" ? await onSet(origin, stanza, child) : onGet(origin, stanza, child);
    }
    if (child.name === "pubsub" && ns === OWNER_NS) return await onOwner(origin, stanza, child);
    if (child.name === "query" && ns === DISCO_INFO && type === "get") {
      const nodeName = child.attrs.node;
      const q = stanza.reply()
        .tag("query", nodeName ? { xmlns: DISCO_INFO, node: nodeName } : { xmlns: DISCO_INFO });
      if (nodeName) {
        if (!nodes.has(nodeName)) return fail(origin, stanza, "cancel", "item-not-found");
        q.tag("identity", { category: "pubsub", type: "leaf" }).up();
      } else {
        q.tag("identity", { category: "pubsub", type: "service", name: "Publish-Subscribe" }).up();
        for (const f of FEATURES) q.tag("feature", { var: `${PUBSUB_NS}#${f}` }).up();
      }
      q.tag("feature", { var: DISCO_INFO }).up().tag("feature", { var: DISCO_ITEMS }).up()
        .tag("feature", { var: PUBSUB_NS }).up();
      origin.send(q.up());
      return true;
    }
    if (child.name === "query" && ns === DISCO_ITEMS && type === "get") {
      const from = stanza.attrs.from ?? origin.full_jid ?? "";
      const nodeName = child.attrs.node;
      const q = stanza.reply()
        .tag("query", nodeName ? { xmlns: DISCO_ITEMS, node: nodeName } : { xmlns: DISCO_ITEMS });
      if (nodeName) {
        // A node's items, by id (XEP-0060 §5.5).
        const node = nodes.get(nodeName);
        if (!node) return fail(origin, stanza, "cancel", "item-not-found");
        const why = denied(node, from);
        if (why) return fail(origin, stanza, why.type, why.condition, why.specific);
        for (const i of node.items) q.tag("item", { jid: module.host, name: i.id }).up();
      } else {
        for (const node of nodes.values()) {
          if (!denied(node, from)) q.tag("item", { jid: module.host, node: node.name }).up();
        }
      }
      origin.send(q.up());
      return true;
    }
    origin.send(stanza.errorReply("cancel", "service-unavailable"));
    return true;
  });
}
