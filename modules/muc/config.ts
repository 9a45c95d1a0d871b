/**
 * A room's configuration as forms: the owner's `muc#roomconfig` form
 * (XEP-0045 §10.2), read back with type checks, and the `muc#roominfo`
 * form of the room's disco#info (XEP-0045 §15.5.4).
 *
 * @example
 * ```ts
 * const r = applyConfigForm(room.config, readForm(x), 20, 500);
 * if ("error" in r) origin.send(stanza.errorReply("modify", "bad-request", r.error));
 * ```
 * @module
 */
import { buildForm, type SubmittedForm } from "../../core/xml/dataform.ts";
import type { Stanza } from "../../core/xml/stanza.ts";
import type { Room, RoomConfig } from "./room.ts";

export const ROOMCONFIG = "http://jabber.org/protocol/muc#roomconfig";
export const ROOMINFO = "http://jabber.org/protocol/muc#roominfo";

const F = "muc#roomconfig_";
const PM = ["anyone", "participants", "moderators", "none"] as const;
const WHOIS = ["moderators", "anyone"] as const;
/** Longest name, description or password, and language tag. */
const MAX_TEXT = 1024;

const bool = (b: boolean) => (b ? "1" : "0");

/** The owner's configuration form with the room's current values. */
export function configForm(room: Room): Stanza {
  const c = room.config;
  const x = buildForm("form", ROOMCONFIG, [
    { var: F + "roomname", type: "text-single", label: "Title", values: [c.name] },
    { var: F + "roomdesc", type: "text-single", label: "Description", values: [c.description] },
    { var: F + "lang", type: "text-single", label: "Language", values: [c.language] },
    {
      var: F + "persistentroom",
      type: "boolean",
      label: "Persistent (kept when empty)",
      values: [bool(c.persistent)],
    },
    {
      var: F + "publicroom",
      type: "boolean",
      label: "Listed in the directory of rooms",
      values: [bool(c.public)],
    },
    {
      var: F + "membersonly",
      type: "boolean",
      label: "Only members may join",
      values: [bool(c.membersOnly)],
    },
    {
      var: F + "moderatedroom",
      type: "boolean",
      label: "Moderated: only participants may speak",
      values: [bool(c.moderated)],
    },
    {
      var: F + "passwordprotectedroom",
      type: "boolean",
      label: "Password protected",
      values: [bool(c.password !== "")],
    },
    { var: F + "roomsecret", type: "text-private", label: "Password", values: [c.password] },
    { var: F + "whois", type: "list-single", label: "Who may see real JIDs", values: [c.whois] },
    {
      var: F + "changesubject",
      type: "boolean",
      label: "Occupants may change the subject",
      values: [bool(c.changeSubject)],
    },
    {
      var: F + "allowinvites",
      type: "boolean",
      label: "Occupants may invite others",
      values: [bool(c.allowInvites)],
    },
    {
      var: F + "allowpm",
      type: "list-single",
      label: "Who may send private messages",
      values: [c.allowPm],
    },
    {
      var: F + "historylength",
      type: "text-single",
      label: "Messages of history sent on join",
      values: [String(c.historyLength)],
    },
    {
      var: F + "maxusers",
      type: "text-single",
      label: "Most occupants (0: the service's limit)",
      values: [String(c.maxUsers)],
    },
    {
      var: F + "enablearchiving",
      type: "boolean",
      label: "Archive messages",
      values: [bool(c.archiving)],
    },
  ]);
  // The options of the list fields.
  for (const field of x.tags()) {
    const options = field.attrs.var === F + "whois"
      ? WHOIS
      : field.attrs.var === F + "allowpm"
      ? PM
      : undefined;
    for (const o of options ?? []) field.tag("option").textTag("value", o).up();
  }
  return x;
}

/** A boolean field's value, or an error text. */
function readBool(v: string): boolean | string {
  if (v === "1" || v === "true") return true;
  if (v === "0" || v === "false") return false;
  return `not a boolean: ${JSON.stringify(v).slice(0, 40)}`;
}

/**
 * A configuration with a submitted form applied; fields not in the form keep
 * their value. A value of the wrong type, or a list option not offered, is
 * an error and nothing changes. `maxHistory` and `maxUsers` are the
 * service's limits (larger values are lowered to them).
 */
export function applyConfigForm(
  config: RoomConfig,
  form: SubmittedForm,
  maxHistory: number,
  maxUsers: number,
): { config: RoomConfig } | { error: string } {
  const next = { ...config };
  let protectedRoom: boolean | undefined;
  for (const [name, values] of form.fields) {
    if (!name.startsWith(F)) continue; // others' fields (e.g. muc#roominfo_*) are ignored
    const field = name.slice(F.length);
    const v = values[0] ?? "";
    const err = (why: string) => ({ error: `Field ${name}: ${why}` });
    switch (field) {
      case "roomname":
      case "roomdesc":
      case "lang":
      case "roomsecret": {
        if (v.length > MAX_TEXT) return err("too long");
        if (field === "roomname") next.name = v;
        else if (field === "roomdesc") next.description = v;
        else if (field === "lang") next.language = v;
        else next.password = v;
        break;
      }
      case "persistentroom":
      case "publicroom":
      case "membersonly":
      case "moderatedroom":
      case "passwordprotectedroom":
      case "changesubject":
      case "allowinvites":
      case "enablearchiving": {
        const b = readBool(v);
        if (typeof b === "string") return err(b);
        if (field === "persistentroom") next.persistent = b;
        else if (field === "publicroom") next.public = b;
        else if (field === "membersonly") next.membersOnly = b;
        else if (field === "moderatedroom") next.moderated = b;
        else if (field === "passwordprotectedroom") protectedRoom = b;
        else if (field === "changesubject") next.changeSubject = b;
        else if (field === "allowinvites") next.allowInvites = b;
        else next.archiving = b;
        break;
      }
      case "whois":
        if (!(WHOIS as readonly string[]).includes(v)) return err("not one of the options");
        next.whois = v as RoomConfig["whois"];
        break;
      case "allowpm":
        if (!(PM as readonly string[]).includes(v)) return err("not one of the options");
        next.allowPm = v as RoomConfig["allowPm"];
        break;
      case "historylength":
      case "maxusers": {
        if (!/^\d{1,9}$/.test(v)) return err("not a number");
        const n = Number(v);
        if (field === "historylength") next.historyLength = Math.min(n, maxHistory);
        else next.maxUsers = Math.min(n, maxUsers);
        break;
      }
    }
  }
  // A room declared not password-protected has no password.
  if (protectedRoom === false) next.password = "";
  return { config: next };
}

/** The `muc#roominfo` form of the room's disco#info. */
export function roomInfoForm(room: Room): Stanza {
  const c = room.config;
  return buildForm("result", ROOMINFO, [
    { var: "muc#roominfo_description", label: "Description", values: [c.description] },
    {
      var: "muc#roominfo_occupants",
      label: "Number of occupants",
      values: [String(room.occupants.size)],
    },
    { var: "muc#roominfo_subject", label: "Subject", values: [room.subject?.text ?? ""] },
    {
      var: "muc#roominfo_changesubject",
      type: "boolean",
      label: "Occupants may change the subject",
      values: [bool(c.changeSubject)],
    },
    { var: "muc#roominfo_lang", label: "Language", values: [c.language] },
    { var: "muc#roomconfig_roomname", label: "Title", values: [c.name] },
    { var: "muc#roomconfig_allowinvites", type: "boolean", values: [bool(c.allowInvites)] },
    { var: "muc#roomconfig_allowpm", type: "list-single", values: [c.allowPm] },
    { var: "muc#roomconfig_whois", type: "list-single", values: [c.whois] },
  ]);
}

/** The room's disco#info features that say what kind of room it is (XEP-0045 §17.2). */
export function roomFeatures(room: Room): string[] {
  const c = room.config;
  return [
    c.public ? "muc_public" : "muc_hidden",
    c.persistent ? "muc_persistent" : "muc_temporary",
    c.membersOnly ? "muc_membersonly" : "muc_open",
    c.moderated ? "muc_moderated" : "muc_unmoderated",
    c.password ? "muc_passwordprotected" : "muc_unsecured",
    c.whois === "anyone" ? "muc_nonanonymous" : "muc_semianonymous",
  ];
}
