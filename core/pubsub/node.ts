/**
 * Publish-subscribe nodes (XEP-0060) as data: a node's configuration, its
 * items, and the rules that do not depend on where the node lives — the
 * configuration form both ways, publish-options preconditions (§7.1.5),
 * `max_items` trimming. PEP (XEP-0163, `modules/pep/`) keeps one set of
 * nodes per account; a pubsub component would keep one per service.
 *
 * @example
 * ```ts
 * const node = newNode("urn:xmpp:avatar:metadata", defaultConfig(), 256);
 * const r = applyForm(node.config, readForm(x), 256); // { config } or { error }
 * publishItem(node, { id: "a1", payload: "<metadata xmlns='urn:xmpp:avatar:metadata'/>",
 *   publisher: "juliet@example.com", when: Date.now() });
 * ```
 * @module
 */
import { buildForm, type SubmittedForm } from "../xml/dataform.ts";
import type { Stanza } from "../xml/stanza.ts";

export const PUBSUB_NS = "http://jabber.org/protocol/pubsub";
export const OWNER_NS = "http://jabber.org/protocol/pubsub#owner";
export const EVENT_NS = "http://jabber.org/protocol/pubsub#event";
export const ERRORS_NS = "http://jabber.org/protocol/pubsub#errors";
export const NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config";
export const PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options";

export type AccessModel = "open" | "presence" | "roster" | "whitelist";
export type SendLast = "never" | "on_sub" | "on_sub_and_presence";

/** A node's configuration (the fields of `pubsub#node_config` Cadence supports). */
export interface NodeConfig {
  accessModel: AccessModel;
  /** A number, or "max": as many as the service allows. */
  maxItems: number | "max";
  persistItems: boolean;
  deliverPayloads: boolean;
  notifyRetract: boolean;
  notifyDelete: boolean;
  sendLastPublishedItem: SendLast;
  rosterGroupsAllowed: string[];
  notificationType: "headline" | "normal";
  title: string;
  type: string;
}

/** One published item: its payload as XML text. */
export interface Item {
  id: string;
  payload: string;
  publisher: string;
  /** When it was published (ms since the epoch). */
  when: number;
}

/** A node with its items, oldest first. */
export interface Node {
  name: string;
  config: NodeConfig;
  items: Item[];
  /** JIDs (bare or full) that subscribed explicitly (PEP: besides +notify). */
  subscribers?: string[];
}

/** What a PEP node is when nothing else is asked for (Prosody's defaults). */
export function defaultConfig(): NodeConfig {
  return {
    accessModel: "presence",
    maxItems: 1,
    persistItems: true,
    deliverPayloads: true,
    notifyRetract: true,
    notifyDelete: true,
    sendLastPublishedItem: "on_sub_and_presence",
    rosterGroupsAllowed: [],
    notificationType: "headline",
    title: "",
    type: "",
  };
}

/** A new, empty node. */
export function newNode(name: string, config: NodeConfig): Node {
  return { name, config, items: [] };
}

/** The number of items a node keeps, `limit` being the service's cap. */
export function itemLimit(config: NodeConfig, limit: number): number {
  return config.maxItems === "max" ? limit : Math.min(config.maxItems, limit);
}

/**
 * Adds or replaces an item (a replaced one moves to the end, as the newest)
 * and drops the oldest past the node's limit.
 */
export function publishItem(node: Node, item: Item, limit: number): void {
  const old = node.items.findIndex((i) => i.id === item.id);
  if (old !== -1) node.items.splice(old, 1);
  node.items.push(item);
  trimItems(node, limit);
}

/** Gives a node a new configuration; a lower item limit applies at once. */
export function setConfig(node: Node, config: NodeConfig, limit: number): void {
  node.config = config;
  trimItems(node, limit);
}

/** Drops the oldest items past the node's limit. */
function trimItems(node: Node, limit: number): void {
  const keep = itemLimit(node.config, limit);
  if (node.items.length > keep) node.items.splice(0, node.items.length - keep);
}

/**
 * An error reply with XEP-0060's pubsub-specific condition beside the
 * stanza error, e.g. `conflict` + `precondition-not-met`.
 *
 * @example
 * ```ts
 * pubsubError(iq, "cancel", "conflict", "precondition-not-met");
 * ```
 */
export function pubsubError(
  stanza: Stanza,
  type: "cancel" | "modify" | "auth" | "wait",
  condition: string,
  specific?: string,
  text?: string,
): Stanza {
  const r = stanza.errorReply(type, condition, text);
  if (specific) r.getChild("error")!.tag(specific, { xmlns: ERRORS_NS }).up();
  return r;
}

/** A form field's error: the stanza error condition and a text. */
export interface FormError {
  error: "not-acceptable" | "bad-request";
  text: string;
}

const BOOLEAN = /^(1|true|0|false)$/;
const asBoolean = (v: string) => v === "1" || v === "true";

/**
 * A configuration with a submitted `node_config` or `publish-options` form
 * applied (fields not in it keep their value); a `FormError` when a value is
 * of the wrong type or not one of the allowed ones.
 */
export function applyForm(
  base: NodeConfig,
  form: SubmittedForm,
  limit: number,
): { config: NodeConfig } | FormError {
  const config: NodeConfig = { ...base, rosterGroupsAllowed: [...base.rosterGroupsAllowed] };
  for (const [name, values] of form.fields) {
    const v = values[0] ?? "";
    const bad = (text: string): FormError => ({
      error: "not-acceptable",
      text: `${name}: ${text}`,
    });
    switch (name) {
      case "pubsub#access_model":
        if (!["open", "presence", "roster", "whitelist"].includes(v)) return bad("not supported");
        config.accessModel = v as AccessModel;
        break;
      case "pubsub#max_items": {
        if (v === "max") {
          config.maxItems = "max";
          break;
        }
        if (!/^\d{1,9}$/.test(v) || Number(v) < 1) return bad("a positive number or max");
        if (Number(v) > limit) return bad(`at most ${limit}`);
        config.maxItems = Number(v);
        break;
      }
      case "pubsub#persist_items":
      case "pubsub#deliver_payloads":
      case "pubsub#notify_retract":
      case "pubsub#notify_delete": {
        if (!BOOLEAN.test(v)) return bad("a boolean");
        const key = ({
          "pubsub#persist_items": "persistItems",
          "pubsub#deliver_payloads": "deliverPayloads",
          "pubsub#notify_retract": "notifyRetract",
          "pubsub#notify_delete": "notifyDelete",
        } as const)[name];
        config[key] = asBoolean(v);
        break;
      }
      case "pubsub#send_last_published_item":
        if (!["never", "on_sub", "on_sub_and_presence"].includes(v)) return bad("not supported");
        config.sendLastPublishedItem = v as SendLast;
        break;
      case "pubsub#roster_groups_allowed":
        config.rosterGroupsAllowed = [...values];
        break;
      case "pubsub#notification_type":
        if (v !== "headline" && v !== "normal") return bad("headline or normal");
        config.notificationType = v;
        break;
      case "pubsub#title":
        config.title = v;
        break;
      case "pubsub#type":
        config.type = v;
        break;
      default:
        // Options this service does not have cannot be honoured.
        return bad("not supported");
    }
  }
  return { config };
}

/**
 * Whether an existing node's configuration already is what the
 * publish-options ask for (XEP-0060 §7.1.5): every field given must have the
 * node's value. `limit` normalises `max_items` "max".
 */
export function meetsPreconditions(
  config: NodeConfig,
  options: SubmittedForm,
  limit: number,
): boolean {
  const wanted = applyForm(config, options, limit);
  if ("error" in wanted) return false;
  const a = wanted.config, b = config;
  return a.accessModel === b.accessModel && itemLimit(a, limit) === itemLimit(b, limit) &&
    a.persistItems === b.persistItems && a.deliverPayloads === b.deliverPayloads &&
    a.notifyRetract === b.notifyRetract && a.notifyDelete === b.notifyDelete &&
    a.sendLastPublishedItem === b.sendLastPublishedItem &&
    a.notificationType === b.notificationType &&
    a.title === b.title && a.type === b.type &&
    [...a.rosterGroupsAllowed].sort().join("\n") === [...b.rosterGroupsAllowed].sort().join("\n");
}

/** The `node_config` form of a configuration, for the owner to fill in. */
export function configForm(config: NodeConfig): Stanza {
  const bool = (b: boolean) => [b ? "1" : "0"];
  return buildForm("form", NODE_CONFIG, [
    { var: "pubsub#title", type: "text-single", values: [config.title] },
    { var: "pubsub#type", type: "text-single", values: [config.type] },
    { var: "pubsub#access_model", type: "list-single", values: [config.accessModel] },
    { var: "pubsub#roster_groups_allowed", type: "list-multi", values: config.rosterGroupsAllowed },
    { var: "pubsub#max_items", type: "text-single", values: [String(config.maxItems)] },
    { var: "pubsub#persist_items", type: "boolean", values: bool(config.persistItems) },
    { var: "pubsub#deliver_payloads", type: "boolean", values: bool(config.deliverPayloads) },
    { var: "pubsub#notify_retract", type: "boolean", values: bool(config.notifyRetract) },
    { var: "pubsub#notify_delete", type: "boolean", values: bool(config.notifyDelete) },
    {
      var: "pubsub#send_last_published_item",
      type: "list-single",
      values: [config.sendLastPublishedItem],
    },
    { var: "pubsub#notification_type", type: "list-single", values: [config.notificationType] },
  ]);
}
