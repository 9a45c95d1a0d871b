/**
 * Personal Eventing Protocol (XEP-0163), as Prosody's mod_pep: each account
 * is a pubsub service at its bare JID. Publishing creates the node
 * (publish-options become its configuration, or must match it: XEP-0060
 * §7.1.5, what OMEMO and bookmarks rely on); items go to the owner's and
 * contacts' resources that show `<node>+notify` in their entity
 * capabilities (`caps` module), and the last item of each node goes to a
 * contact's resource when its capabilities become known. A contact on
 * another server is known by the presence it sends the user (its `<c/>`,
 * asked across and verified by the caps module), as Prosody's mod_pep
 * keeps its `recipients`; its unavailable presence forgets it.
 *
 * Access models: presence (default), open, roster (`roster_groups_allowed`),
 * whitelist (the owner only). Options: `pep_max_items` (256, the most a node
 * may keep), `pep_max_item_size` (256 KiB), `pep_max_nodes` (256 per account),
 * `pep_max_account_size` (16 MiB of item payloads per account).
 * Fires `pep-published` `{ user, node, item }` after each publish.
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import { deliver, prepare, sendTo } from "../../core/fanout.ts";
import type { Origin, StanzaEvent } from "../../core/router.ts";
import type { Session } from "../../core/session.ts";
import { bare, prep, split } from "../../core/jid.ts";
import { parseXml } from "../../core/xml/parser.ts";
import { element, message, type Stanza } from "../../core/xml/stanza.ts";
import { DATAFORM_NS, readForm, type SubmittedForm } from "../../core/xml/dataform.ts";
import type { KeyValStore, MapStore } from "../../core/storage/types.ts";
import { accountNodes, type StoredNode } from "./nodes.ts";
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
} from "../../core/pubsub/node.ts";

const DISCO_ITEMS = "http://jabber.org/protocol/disco#items";

const FEATURES = [
  "access-open",
  "access-presence",
  "access-roster",
  "access-whitelist",
  "auto-create",
  "auto-subscribe",
  "config-node",
  "create-and-configure",
  "create-nodes",
  "delete-items",
  "delete-nodes",
  "filtered-notifications",
  "item-ids",
  "last-published",
  "persistent-items",
  "publish",
  "publish-options",
  "purge-nodes",
  "retract-items",
  "retrieve-items",
];

type Caps = {
  featuresOf(session: Session): ReadonlySet<string> | undefined;
  featuresOfJid(jid: string, c: Stanza): Promise<ReadonlySet<string> | undefined>;
};

/** Remote contacts' resources kept per contact, and per user, for notifications. */
const MAX_REMOTE_RESOURCES_PER_CONTACT = 10;
const MAX_REMOTE_RESOURCES_PER_USER = 1000;

/** Who gets a notification: a session of this server, or a remote full JID. */
type Recipient = Session | string;

const CAPS_NS = "http://jabber.org/protocol/caps";

/** Why a publish was refused: the stanza error to answer with. */
export interface PublishError {
  type: "cancel" | "modify" | "auth" | "wait";
  condition: string;
  specific?: string;
  text?: string;
}

/** What the module exports to others (`await module.depends("pep")`). */
export interface PepExports {
  nodesOf(user: string): Promise<Map<string, Node>>;
  publish(
    user: string,
    node: string,
    id: string,
    payload: string,
    options?: SubmittedForm,
  ): Promise<{ id: string } | PublishError>;
  retract(user: string, node: string, id: string, notify?: boolean): Promise<boolean>;
  /** Applies a configuration form to an existing node as its owner would; false if it cannot. */
  configure(user: string, node: string, form: SubmittedForm): Promise<boolean>;
  /** Whether `requester` (a bare JID) may read `owner`'s node (false when there is none). */
  mayRead(owner: string, node: string, requester: string): Promise<boolean>;
}

export default async function pep(module: Module) {
  const caps = await module.depends<Caps>("caps");
  const maxItems = module.getOptionInteger("pep_max_items", 256, { min: 1 });
  const maxItemSize = module.getOptionInteger("pep_max_item_size", 256 * 1024, { min: 64 });
  const maxNodes = module.getOptionInteger("pep_max_nodes", 256, { min: 1 });
  // Not a Prosody option: items × size × nodes alone would allow gigabytes per account.
  const maxAccountChars = module.getOptionInteger("pep_max_account_size", 16 * 1024 * 1024, {
    min: 1024,
  });

  // --- the nodes of an account ---------------------------------------------------

  const { nodesOf, save, charsOf } = accountNodes(
    module.openStore("pep", "map") as MapStore<StoredNode>,
    module.openStore("pep_nodes") as KeyValStore<string[]>,
  );

  // --- who may see what -------------------------------------------------------------

  /** Why `requester` (a bare JID) may not read `owner`'s node, or undefined if they may. */
  async function denied(owner: string, node: Node, requester: string) {
    if (requester === `${owner}@${module.host}`) return undefined;
    const model = node.config.accessModel;
    if (model === "open") return undefined;
    if (model === "whitelist") return { condition: "not-allowed", specific: "closed-node" };
    const item = (await module.rosters.load(owner, module.host)).items.get(requester);
    const subscribed = item?.subscription === "from" || item?.subscription === "both";
    if (model === "presence") {
      return subscribed
        ? undefined
        : { condition: "not-authorized", specific: "presence-subscription-required" };
    }
    const allowed = node.config.rosterGroupsAllowed;
    return item && item.groups.some((g) => allowed.includes(g))
      ? undefined
      : { condition: "not-authorized", specific: "not-in-roster-group" };
  }

  /**
   * Remote contacts' resources by owner: the features behind the `<c/>` of
   * the available presence each sent the owner (Prosody's `recipients`).
   */
  const remote = new Map<string, Map<string, ReadonlySet<string>>>();
  /** The latest presence of each (owner, remote JID) being looked at: an older one's answer is stale. */
  const latest = new Map<string, object>();

  /** The resources to notify of a change to `owner`'s node: theirs and contacts', with +notify. */
  async function audience(owner: string, node: Node): Promise<Recipient[]> {
    const wants = (s: Session) => caps.featuresOf(s)?.has(node.name + "+notify") === true;
    const out: Recipient[] = module.availableResources(owner).filter(wants);
    const remoteOfOwner = remote.get(owner);
    // Explicit subscribers (this server's; there is no s2s yet), still allowed to read.
    for (const jid of node.subscribers ?? []) {
      const j = split(jid);
      if (!j?.node || module.hostType(j.host) !== "local") continue;
      if (await denied(owner, node, bare(jid))) continue;
      const sessions = j.resource === undefined
        ? module.availableResources(j.node, j.host)
        : [module.fullSession(jid)].filter((s): s is Session => s !== undefined);
      for (const s of sessions) if (!out.includes(s)) out.push(s);
    }
    if (node.config.accessModel === "whitelist") return out;
    const roster = await module.rosters.load(owner, module.host);
    for (const [jid, item] of roster.items) {
      // Contacts who receive the owner's presence (PEP's implicit subscription).
      if (item.subscription !== "from" && item.subscription !== "both") continue;
      if (
        node.config.accessModel === "roster" &&
        !item.groups.some((g) => node.config.rosterGroupsAllowed.includes(g))
      ) continue;
      const j = split(jid);
      if (!j?.node) continue;
      if (module.hostType(j.host) !== "local") {
        for (const [full, features] of remoteOfOwner ?? []) {
          if (bare(full) === jid && features.has(node.name + "+notify")) out.push(full);
        }
        continue;
      }
      for (const s of module.availableResources(j.node, j.host)) {
        if (wants(s) && !out.includes(s)) out.push(s);
      }
    }
    return out;
  }

  /** An `<item>` element as sent: its payload parsed back from storage. */
  function itemElement(node: Node, item: Item, withPayload = node.config.deliverPayloads) {
    const el = element("item", { id: item.id });
    if (withPayload) el.addChild(parseXml(item.payload));
    return el;
  }

  /** Sends `event` (a child of a pubsub#event element) from `owner` to each recipient. */
  function notify(owner: string, node: Node, event: Stanza, to: Iterable<Recipient>) {
    const from = `${owner}@${module.host}`;
    // Serialised once for every recipient (core/fanout.ts).
    const p = prepare(
      message({ from, type: node.config.notificationType })
        .tag("event", { xmlns: EVENT_NS }).addChild(event).up(),
    );
    for (const s of to) typeof s === "string" ? deliver(module, p, s) : sendTo(s, p);
  }

  // --- errors -------------------------------------------------------------------------

  function fail(
    origin: Session,
    stanza: Stanza,
    type: "cancel" | "modify" | "auth" | "wait",
    condition: string,
    specific?: string,
    text?: string,
  ) {
    origin.send(pubsubError(stanza, type, condition, specific, text));
    return true;
  }

  // --- publishing (the owner) ---------------------------------------------------------

  async function onPublish(origin: Session, stanza: Stanza, publish: Stanza, pubsub: Stanza) {
    const user = origin.username!;
    const name = publish.attrs.node;
    if (!name) return fail(origin, stanza, "modify", "bad-request", "nodeid-required");
    const items = publish.tags().filter((c) => c.name === "item");
    if (items.length === 0) return fail(origin, stanza, "modify", "bad-request", "item-required");
    if (items.length > 1) return fail(origin, stanza, "modify", "bad-request", "invalid-payload");
    const payloads = items[0]?.tags() ?? [];
    if (payloads.length !== 1) {
      return fail(
        origin,
        stanza,
        "modify",
        "bad-request",
        payloads.length ? "invalid-payload" : "payload-required",
      );
    }
    // Stored on its own: a payload that inherited its namespace keeps it.
    payloads[0].attrs.xmlns ??= PUBSUB_NS;
    const payload = payloads[0].toString();
    if (payload.length > maxItemSize) {
      return fail(origin, stanza, "modify", "not-acceptable", "payload-too-big");
    }
    const optionsX = pubsub.getChild("publish-options", PUBSUB_NS)?.getChild("x", DATAFORM_NS);
    const options = optionsX ? readForm(optionsX) : undefined;
    if (options && options.type !== PUBLISH_OPTIONS) {
      return fail(origin, stanza, "modify", "bad-request", "invalid-options");
    }
    const r = await publishAs(
      user,
      name,
      items[0]?.attrs.id || crypto.randomUUID(),
      payload,
      options,
    );
    if ("condition" in r) return fail(origin, stanza, r.type, r.condition, r.specific, r.text);
    origin.send(
      stanza.reply().tag("pubsub", { xmlns: PUBSUB_NS }).tag("publish", { node: name })
        .tag("item", { id: r.id }).up().up().up(),
    );
    return true;
  }

  /**
   * Publishes an item to one of `user`'s nodes (creating it with `options`,
   * or checking them as preconditions) and notifies; what a client's publish
   * does, for other modules too (bookmarks).
   */
  async function publishAs(
    user: string,
    name: string,
    id: string,
    payload: string,
    options?: SubmittedForm,
  ): Promise<{ id: string } | PublishError> {
    // Here, not only in onPublish: other modules' publishes (vCard4, legacy vCards) too.
    if (payload.length > maxItemSize) {
      return { type: "modify", condition: "not-acceptable", specific: "payload-too-big" };
    }
    const nodes = await nodesOf(user);
    let node = nodes.get(name);
    let created = false;
    if (node) {
      if (options && !meetsPreconditions(node.config, options, maxItems)) {
        return { type: "cancel", condition: "conflict", specific: "precondition-not-met" };
      }
    } else {
      if (nodes.size >= maxNodes) {
        return { type: "wait", condition: "resource-constraint", text: "Too many nodes" };
      }
      const config = options ? applyForm(defaultConfig(), options, maxItems) : {
        config: defaultConfig(),
      };
      if ("error" in config) {
        return {
          type: "cancel",
          condition: "conflict",
          specific: "precondition-not-met",
          text: config.text,
        };
      }
      node = newNode(name, config.config);
      nodes.set(name, node);
      created = true;
    }
    const replaced = node.items.find((i) => i.id === id)?.payload.length ?? 0;
    if (charsOf(user, nodes) - replaced + payload.length > maxAccountChars) {
      if (created) nodes.delete(name);
      return {
        type: "cancel",
        condition: "resource-constraint",
        text: "This account's PEP storage is full",
      };
    }
    const item: Item = { id, payload, publisher: `${user}@${module.host}`, when: Date.now() };
    publishItem(node, item, maxItems);
    await save(user, nodes, name, created);
    const event = element("items", { node: name }).addChild(itemElement(node, item));
    notify(user, node, event, await audience(user, node));
    await module.fireEvent("pep-published", { user, node: name, item });
    return { id };
  }

  /** Retracts an item of `user`'s node, notifying when asked or configured; false if none. */
  async function retractAs(user: string, name: string, id: string, notifyAsked = false) {
    const nodes = await nodesOf(user);
    const node = nodes.get(name);
    const at = node?.items.findIndex((i) => i.id === id) ?? -1;
    if (!node || at === -1) return false;
    node.items.splice(at, 1);
    await save(user, nodes, name);
    if (notifyAsked || node.config.notifyRetract) {
      const event = element("items", { node: name }).tag("retract", { id }).up();
      notify(user, node, event, await audience(user, node));
    }
    return true;
  }

  async function onRetract(origin: Session, stanza: Stanza, retract: Stanza) {
    const name = retract.attrs.node;
    if (!name) return fail(origin, stanza, "modify", "bad-request", "nodeid-required");
    const id = retract.getChild("item")?.attrs.id;
    if (!id) return fail(origin, stanza, "modify", "bad-request", "item-required");
    const notifyAttr = retract.attrs.notify;
    const asked = notifyAttr === "1" || notifyAttr === "true";
    if (!await retractAs(origin.username!, name, id, asked)) {
      return fail(origin, stanza, "cancel", "item-not-found");
    }
    origin.send(stanza.reply());
    return true;
  }

  async function onCreate(origin: Session, stanza: Stanza, create: Stanza, pubsub: Stanza) {
    const user = origin.username!;
    const name = create.attrs.node;
    if (!name) return fail(origin, stanza, "modify", "not-acceptable", "nodeid-required");
    const nodes = await nodesOf(user);
    if (nodes.has(name)) return fail(origin, stanza, "cancel", "conflict");
    if (nodes.size >= maxNodes) {
      return fail(origin, stanza, "wait", "resource-constraint", undefined, "Too many nodes");
    }
    const x = pubsub.getChild("configure", PUBSUB_NS)?.getChild("x", DATAFORM_NS);
    let config = defaultConfig();
    if (x) {
      const r = applyForm(config, readForm(x), maxItems);
      if ("error" in r) return fail(origin, stanza, "modify", r.error, undefined, r.text);
      config = r.config;
    }
    nodes.set(name, newNode(name, config));
    await save(user, nodes, name, true);
    origin.send(stanza.reply());
    return true;
  }

  module.hook(
    `iq-set/self/${PUBSUB_NS}:pubsub`,
    async ({ origin, stanza }: StanzaEvent<Session>) => {
      const pubsub = stanza.getChild("pubsub", PUBSUB_NS)!;
      const publish = pubsub.getChild("publish", PUBSUB_NS);
      if (publish) return onPublish(origin, stanza, publish, pubsub);
      const retract = pubsub.getChild("retract", PUBSUB_NS);
      if (retract) return onRetract(origin, stanza, retract);
      const create = pubsub.getChild("create", PUBSUB_NS);
      if (create) return onCreate(origin, stanza, create, pubsub);
      return (await onSubscription({ origin, stanza })) ??
        fail(origin, stanza, "cancel", "feature-not-implemented");
    },
  );

  /** Most explicit subscriptions one node keeps, and one account may hold on a node. */
  const MAX_SUBSCRIBERS = 1000;
  const MAX_PER_ACCOUNT = 10;

  // Explicit subscriptions (XEP-0060 §6.1), to one's own or another account's node.
  async function onSubscription({ origin, stanza }: StanzaEvent<Session>) {
    const pubsub = stanza.getChild("pubsub", PUBSUB_NS)!;
    const op = pubsub.getChild("subscribe", PUBSUB_NS) ??
      pubsub.getChild("unsubscribe", PUBSUB_NS);
    if (!op) return undefined; // the owner's own operations: the self handler
    const owner = stanza.attrs.to === undefined ? origin.username : split(stanza.attrs.to)?.node;
    const name = op.attrs.node;
    if (!owner) return fail(origin, stanza, "cancel", "item-not-found");
    if (!name) return fail(origin, stanza, "modify", "bad-request", "nodeid-required");
    const me = `${origin.username}@${module.host}`;
    const jid = prep(op.attrs.jid ?? "");
    if (!jid) return fail(origin, stanza, "modify", "bad-request", "invalid-jid");
    if (bare(jid) !== me) {
      return op.name === "subscribe"
        ? fail(origin, stanza, "modify", "bad-request", "invalid-jid")
        : fail(origin, stanza, "auth", "forbidden");
    }
    const nodes = await nodesOf(owner);
    const node = nodes.get(name);
    if (!node) return fail(origin, stanza, "cancel", "item-not-found");
    const subs = node.subscribers ??= [];
    if (op.name === "unsubscribe") {
      if (!subs.includes(jid)) {
        return fail(origin, stanza, "cancel", "unexpected-request", "not-subscribed");
      }
      node.subscribers = subs.filter((s) => s !== jid);
      await save(owner, nodes, name);
      origin.send(stanza.reply());
      return true;
    }
    const why = await denied(owner, node, me);
    if (why) return fail(origin, stanza, "auth", why.condition, why.specific);
    if (!subs.includes(jid)) {
      if (
        subs.length >= MAX_SUBSCRIBERS ||
        subs.filter((s) => bare(s) === me).length >= MAX_PER_ACCOUNT
      ) return fail(origin, stanza, "wait", "resource-constraint");
      subs.push(jid);
      await save(owner, nodes, name);
    }
    origin.send(
      stanza.reply().tag("pubsub", { xmlns: PUBSUB_NS })
        .tag("subscription", { node: name, jid, subscription: "subscribed" }).up().up(),
    );
    const last = node.items.at(-1);
    if (last && node.config.sendLastPublishedItem !== "never") {
      const event = element("items", { node: name }).addChild(itemElement(node, last));
      const to = jid.includes("/") ? [origin] : module.availableResources(origin.username!);
      notify(owner, node, event, to);
    }
    return true;
  }
  module.hook(`iq-set/bare/${PUBSUB_NS}:pubsub`, async (event: StanzaEvent<Session>) => {
    const r = await onSubscription(event);
    if (r !== undefined || event.to_self) return r;
    // Publishing, retracting, creating… on another's account (XEP-0060 §7.1.3.1).
    return fail(event.origin, event.stanza, "auth", "forbidden");
  });
  // Another's nodes are theirs to manage.
  for (const type of ["get", "set"]) {
    module.hook(`iq-${type}/bare/${OWNER_NS}:pubsub`, (event: StanzaEvent<Session>) => {
      if (event.to_self) return undefined;
      return fail(event.origin, event.stanza, "auth", "forbidden");
    });
  }

  // --- the owner's namespace ----------------------------------------------------------

  module.hook(
    `iq-set/self/${OWNER_NS}:pubsub`,
    async ({ origin, stanza }: StanzaEvent<Session>) => {
      const user = origin.username!;
      const owner = stanza.getChild("pubsub", OWNER_NS)!;
      const op = owner.tags()[0];
      const name = op?.attrs.node;
      if (!op || !name) return fail(origin, stanza, "modify", "bad-request", "nodeid-required");
      const nodes = await nodesOf(user);
      const node = nodes.get(name);
      if (!node) return fail(origin, stanza, "cancel", "item-not-found");
      if (op.name === "delete") {
        const to = await audience(user, node);
        nodes.delete(name);
        await save(user, nodes, name);
        origin.send(stanza.reply());
        if (node.config.notifyDelete) notify(user, node, element("delete", { node: name }), to);
        return true;
      }
      if (op.name === "purge") {
        node.items = [];
        await save(user, nodes, name);
        origin.send(stanza.reply());
        notify(user, node, element("purge", { node: name }), await audience(user, node));
        return true;
      }
      if (op.name === "configure") {
        const x = op.getChild("x", DATAFORM_NS);
        if (!x) return fail(origin, stanza, "modify", "bad-request");
        const form = readForm(x);
        if (form.type !== NODE_CONFIG) return fail(origin, stanza, "modify", "bad-request");
        const r = applyForm(node.config, form, maxItems);
        if ("error" in r) return fail(origin, stanza, "modify", r.error, undefined, r.text);
        setConfig(node, r.config, maxItems);
        await save(user, nodes, name);
        origin.send(stanza.reply());
        return true;
      }
      return fail(origin, stanza, "cancel", "feature-not-implemented");
    },
  );

  module.hook(
    `iq-get/self/${OWNER_NS}:pubsub`,
    async ({ origin, stanza }: StanzaEvent<Session>) => {
      const configure = stanza.getChild("pubsub", OWNER_NS)!.getChild("configure", OWNER_NS);
      const name = configure?.attrs.node;
      if (!configure || !name) return fail(origin, stanza, "cancel", "feature-not-implemented");
      const node = (await nodesOf(origin.username!)).get(name);
      if (!node) return fail(origin, stanza, "cancel", "item-not-found");
      origin.send(
        stanza.reply().tag("pubsub", { xmlns: OWNER_NS }).tag("configure", { node: name })
          .addChild(configForm(node.config)).up().up(),
      );
      return true;
    },
  );

  // --- reading items (the owner or anyone the access model lets in) --------------------

  async function onItems(event: StanzaEvent<Session>) {
    const { origin, stanza } = event;
    const target = stanza.attrs.to === undefined ? origin.username : split(stanza.attrs.to)?.node;
    const pubsub = stanza.getChild("pubsub", PUBSUB_NS)!;
    const items = pubsub.getChild("items", PUBSUB_NS);
    if (!items) return fail(origin, stanza, "cancel", "feature-not-implemented");
    if (!target) return fail(origin, stanza, "cancel", "item-not-found");
    const name = items.attrs.node;
    if (!name) return fail(origin, stanza, "modify", "bad-request", "nodeid-required");
    const node = (await nodesOf(target)).get(name);
    if (!node) return fail(origin, stanza, "cancel", "item-not-found");
    const requester = bare(origin.full_jid ?? `${origin.username}@${module.host}`);
    const why = await denied(target, node, requester);
    if (why) return fail(origin, stanza, "auth", why.condition, why.specific);
    const ids = items.tags().filter((c) => c.name === "item").map((c) => c.attrs.id);
    let chosen = node.items;
    if (ids.length) chosen = node.items.filter((i) => ids.includes(i.id));
    const max = Number(items.attrs.max_items);
    if (items.attrs.max_items !== undefined) {
      if (!Number.isInteger(max) || max < 0) return fail(origin, stanza, "modify", "bad-request");
      chosen = chosen.slice(Math.max(0, chosen.length - max));
    }
    const out = element("items", { node: name });
    for (const i of chosen) out.addChild(itemElement(node, i, true));
    const reply = stanza.reply();
    reply.tag("pubsub", { xmlns: PUBSUB_NS }).addChild(out).up();
    origin.send(reply);
    return true;
  }
  module.hook(`iq-get/self/${PUBSUB_NS}:pubsub`, onItems);
  module.hook(`iq-get/bare/${PUBSUB_NS}:pubsub`, onItems);

  // --- what an account offers -----------------------------------------------------------

  module.hook("account-disco-info", ({ reply }: { reply: Stanza }) => {
    reply.tag("identity", { category: "pubsub", type: "pep" }).up();
    for (const f of FEATURES) reply.tag("feature", { var: `${PUBSUB_NS}#${f}` }).up();
  });

  // The nodes the requester may read, as disco items of the account (XEP-0060 §5.2).
  module.hook(
    "account-disco-items",
    async ({ origin, stanza, reply }: { origin: Origin; stanza: Stanza; reply: Stanza }) => {
      const owner = stanza.attrs.to === undefined ? origin.username : split(stanza.attrs.to)?.node;
      if (!owner || stanza.getChild("query", DISCO_ITEMS)?.attrs.node) return;
      const requester = bare(origin.full_jid ?? `${origin.username}@${module.host}`);
      for (const node of (await nodesOf(owner)).values()) {
        if (await denied(owner, node, requester)) continue;
        reply.tag("item", { jid: `${owner}@${module.host}`, node: node.name }).up();
      }
    },
  );

  // --- the last items, when a resource's interests become known -------------------------

  /** Sends a session (or remote JID) the last item of each of `owner`'s nodes it wants and may see. */
  async function sendLastItems(owner: string, session: Recipient, features: ReadonlySet<string>) {
    const me = typeof session === "string" ? bare(session) : `${session.username}@${session.host}`;
    for (const node of (await nodesOf(owner)).values()) {
      const last = node.items.at(-1);
      if (!last || node.config.sendLastPublishedItem === "never") continue;
      if (!features.has(node.name + "+notify")) continue;
      if (await denied(owner, node, me)) continue;
      const event = element("items", { node: node.name }).addChild(itemElement(node, last));
      notify(owner, node, event, [session]);
    }
  }

  module.hook(
    "caps-updated",
    async ({ session, features }: { session: Session; features: ReadonlySet<string> }) => {
      const user = session.username;
      if (!user || session.host !== module.host) return;
      const owners = [user];
      for (const [jid, item] of (await module.rosters.load(user, module.host)).items) {
        // Contacts whose presence this user receives.
        if (item.subscription !== "to" && item.subscription !== "both") continue;
        const j = split(jid);
        if (!j?.node) continue;
        if (j.host === module.host) owners.push(j.node);
        else if (module.hostType(j.host) === "local") {
          // A contact on another of this server's hosts: its pep sends them.
          await module.fireOn(j.host, "pep-send-last-items", { owner: j.node, session, features });
        }
      }
      for (const owner of owners) await sendLastItems(owner, session, features);
    },
  );
  module.hook(
    "pep-send-last-items",
    ({ owner, session, features }: {
      owner: string;
      session: Session;
      features: ReadonlySet<string>;
    }) => sendLastItems(owner, session, features),
  );

  // A user lets a contact see their presence: the contact's resources get the last items.
  module.hook(
    "presence-subscription-approved",
    async ({ username, contact }: { username: string; contact: string }) => {
      const j = split(contact);
      if (!j?.node || module.hostType(j.host) !== "local") return;
      try {
        for (const s of module.availableResources(j.node, j.host)) {
          const features = caps.featuresOf(s);
          if (features) await sendLastItems(username, s, features);
        }
      } catch (e) {
        module.logError(e); // the subscription itself is done: not its business
      }
    },
  );

  // Presence from a remote contact's resource to the user: its interests, or their end.
  async function remotePresence({ stanza, to_user }: StanzaEvent) {
    const from = stanza.attrs.from;
    const type = stanza.attrs.type;
    const j = from === undefined ? undefined : split(from);
    if (!to_user || !j?.resource || module.hostType(j.host) !== undefined) return;
    if (type !== undefined && type !== "unavailable") return;
    const known = remote.get(to_user);
    const c = type === undefined ? stanza.getChild("c", CAPS_NS) : undefined;
    const key = `${to_user}\n${from}`;
    const token = {};
    latest.set(key, token);
    if (!c) {
      latest.delete(key);
      known?.delete(from!);
      if (known?.size === 0) remote.delete(to_user);
      return;
    }
    let features: ReadonlySet<string> | undefined;
    try {
      if (!await module.rosters.isContactSubscribed(to_user, module.host, bare(from!))) return;
      features = await caps.featuresOfJid(from!, c);
    } finally {
      if (latest.get(key) !== token) features = undefined; // a newer presence decides
      else latest.delete(key);
    }
    if (!features) return;
    let mine = remote.get(to_user);
    const before = mine?.get(from!);
    if (!mine) remote.set(to_user, mine = new Map());
    if (!before) {
      // Bounded: a few resources per contact (the oldest goes), and so many per user.
      const contact = bare(from!);
      const same = [...mine.keys()].filter((k) => bare(k) === contact);
      if (same.length >= MAX_REMOTE_RESOURCES_PER_CONTACT) mine.delete(same[0]);
      if (mine.size >= MAX_REMOTE_RESOURCES_PER_USER) return;
    }
    mine.set(from!, features);
    if (before !== features) await sendLastItems(to_user, from!, features);
  }
  for (const kind of ["presence/bare", "presence/full"]) {
    module.hook(kind, (event: StanzaEvent) => {
      // Not in the way of the presence itself: its delivery goes on meanwhile.
      remotePresence(event).catch(module.logError);
    }, 10);
  }

  module.exports.nodesOf = nodesOf;
  module.exports.configure = async (user: string, name: string, form: SubmittedForm) => {
    const nodes = await nodesOf(user);
    const node = nodes.get(name);
    if (!node) return false;
    const r = applyForm(node.config, form, maxItems);
    if ("error" in r) return false;
    setConfig(node, r.config, maxItems);
    await save(user, nodes, name);
    return true;
  };
  module.exports.mayRead = async (owner: string, name: string, requester: string) => {
    const node = (await nodesOf(owner)).get(name);
    return node !== undefined && await denied(owner, node, requester) === undefined;
  };
  module.exports.publish = publishAs;
  module.exports.retract = retractAs;
}
