/**
 * Messages in a room (XEP-0045 §7.4, §7.5, §7.8, §8.1): groupchat from an
 * occupant goes to everyone under its occupant JID, with the room's
 * stanza-id and the occupant-id; a subject change; private messages
 * between occupants; mediated invitations and declines; voice requests. An error bounced
 * by an occupant's client takes it out of the room (status 333).
 * @module
 */
import type { StanzaEvent } from "../../core/router.ts";
import { bare, prep } from "../../core/jid.ts";
import { element, type Stanza } from "../../core/xml/stanza.ts";
import { deliver, prepare } from "../../core/fanout.ts";
import { buildForm, DATAFORM_NS, readForm, type SubmittedForm } from "../../core/xml/dataform.ts";
import {
  AFFILIATION_RANK,
  affiliationOf,
  MAX_AFFILIATIONS,
  occupantByReal,
  type Room,
} from "./room.ts";
import { OCCUPANT_ID_NS, type Service, SID_NS, USER_NS } from "./service.ts";

/** The form of a voice request and of its approval (XEP-0045 §7.13, §8.6). */
const REQUEST_FORM = "http://jabber.org/protocol/muc#request";

/** Most invitations in one message. */
const MAX_INVITES = 10;
const SUBJECT_MAX = 4096;

/** What a client's message keeps when the room sends it on: not claims made in the room's name. */
function keptChildren(stanza: Stanza, roomJid: string): Stanza["children"] {
  return stanza.children.filter((c) =>
    typeof c !== "string" &&
    !(c.name === "stanza-id" && c.attrs.xmlns === SID_NS && c.attrs.by === roomJid) &&
    c.attrs.xmlns !== OCCUPANT_ID_NS &&
    !(c.name === "x" && c.attrs.xmlns === USER_NS)
  );
}

export interface MessageHooks {
  /** Archives a groupchat message; its id, or undefined when not archived. */
  archive(room: Room, stanza: Stanza): Promise<string | undefined>;
}

/** A message to the room's bare JID. */
export async function onRoomMessage(
  svc: Service,
  hooks: MessageHooks,
  room: Room,
  { origin, stanza }: StanzaEvent,
): Promise<true> {
  const from = stanza.attrs.from ?? origin.full_jid ?? "";
  const type = stanza.attrs.type ?? "normal";
  const me = occupantByReal(room, from);
  if (type === "error") {
    if (me) svc.remove(room, me, { codes: ["333"] });
    return true;
  }
  const x = stanza.getChild("x", USER_NS);
  if (type !== "groupchat" && x && (x.getChild("invite") || x.getChild("decline"))) {
    invitations(svc, room, origin, stanza, x, from);
    return true;
  }
  const form = stanza.getChild("x", DATAFORM_NS);
  if (type !== "groupchat" && form) {
    const submitted = readForm(form);
    if (submitted.type === REQUEST_FORM) {
      voiceRequest(svc, room, origin, stanza, submitted, from);
      return true;
    }
  }
  if (type !== "groupchat") {
    origin.send(stanza.errorReply("modify", "bad-request", "Messages to a room are groupchat"));
    return true;
  }
  if (!me) {
    origin.send(
      stanza.errorReply("cancel", "not-acceptable", "You are not currently connected to this chat"),
    );
    return true;
  }
  if (me.role === "visitor") {
    origin.send(stanza.errorReply("auth", "forbidden", "You do not have voice in this room"));
    return true;
  }
  const subject = stanza.getChild("subject");
  if (subject && !stanza.getChild("body")) {
    const text = subject.getText();
    if (me.role !== "moderator" && !room.config.changeSubject) {
      origin.send(
        stanza.errorReply("auth", "forbidden", "You are not allowed to change the subject"),
      );
      return true;
    }
    if (text.length > SUBJECT_MAX) {
      origin.send(stanza.errorReply("modify", "not-acceptable", "The subject is too long"));
      return true;
    }
    room.subject = { text, from: me.jid, when: Date.now() / 1000 };
    await svc.save(room);
    const m = element("message", { from: me.jid, type: "groupchat", id: stanza.attrs.id });
    m.textTag("subject", text);
    m.tag("occupant-id", { xmlns: OCCUPANT_ID_NS, id: me.occupantId }).up();
    svc.broadcastMessage(room, m);
    return true;
  }
  const out = element("message", {
    from: me.jid,
    type: "groupchat",
    id: stanza.attrs.id ?? crypto.randomUUID(),
  });
  out.children = keptChildren(stanza, room.jid);
  out.tag("occupant-id", { xmlns: OCCUPANT_ID_NS, id: me.occupantId }).up();
  const id = await hooks.archive(room, out);
  out.tag("stanza-id", { xmlns: SID_NS, by: room.jid, id: id ?? crypto.randomUUID() }).up();
  svc.broadcastMessage(room, out);
  return true;
}

/** A message to `room@service/nick`: a private message to that occupant. */
export function onPrivateMessage(
  svc: Service,
  room: Room,
  nick: string,
  { origin, stanza }: StanzaEvent,
): true {
  const from = stanza.attrs.from ?? origin.full_jid ?? "";
  const type = stanza.attrs.type ?? "normal";
  const me = occupantByReal(room, from);
  if (type === "error") {
    if (me) svc.remove(room, me, { codes: ["333"] });
    return true;
  }
  if (!me) {
    origin.send(
      stanza.errorReply("cancel", "not-acceptable", "You are not currently connected to this chat"),
    );
    return true;
  }
  if (type === "groupchat") {
    origin.send(stanza.errorReply("modify", "bad-request", "Groupchat goes to the room"));
    return true;
  }
  const pm = room.config.allowPm;
  const allowed = pm === "anyone" || (pm === "participants" && me.role !== "visitor") ||
    (pm === "moderators" && me.role === "moderator");
  if (!allowed) {
    origin.send(stanza.errorReply("cancel", "not-allowed", "Private messages are not allowed"));
    return true;
  }
  const target = room.occupants.get(nick);
  if (!target) {
    origin.send(stanza.errorReply("cancel", "item-not-found", "No such occupant"));
    return true;
  }
  const out = element("message", { ...stanza.attrs, from: me.jid });
  out.children = keptChildren(stanza, room.jid);
  out.tag("x", { xmlns: USER_NS }).up();
  out.tag("occupant-id", { xmlns: OCCUPANT_ID_NS, id: me.occupantId }).up();
  const p = prepare(out);
  for (const jid of target.sessions.keys()) deliver(svc.module, p, jid);
  return true;
}

/** Mediated invitations and their declines (XEP-0045 §7.8.2). */
function invitations(
  svc: Service,
  room: Room,
  origin: StanzaEvent["origin"],
  stanza: Stanza,
  x: Stanza,
  from: string,
) {
  const invites = x.tags().filter((c) => c.name === "invite");
  const decline = x.getChild("decline");
  if (invites.length === 0 && decline) {
    const to = prep(decline.attrs.to ?? "");
    if (!to) {
      origin.send(stanza.errorReply("modify", "jid-malformed", "Whom is this decline for?"));
      return;
    }
    const m = element("message", { from: room.jid, to });
    m.tag("x", { xmlns: USER_NS }).tag("decline", { from: bare(from) });
    const reason = decline.getChildText("reason");
    if (reason) m.textTag("reason", reason);
    svc.module.send(m.up().up());
    return;
  }
  if (invites.length > MAX_INVITES) {
    origin.send(stanza.errorReply("modify", "policy-violation", "Too many invitations at once"));
    return;
  }
  const me = occupantByReal(room, from);
  const rank = AFFILIATION_RANK[affiliationOf(room, bare(from))];
  const mayInvite = room.config.membersOnly
    ? rank >= AFFILIATION_RANK.admin || (room.config.allowInvites && me !== undefined)
    : me !== undefined;
  if (!mayInvite) {
    origin.send(stanza.errorReply("auth", "forbidden", "You may not invite to this room"));
    return;
  }
  const targets: string[] = [];
  for (const invite of invites) {
    const to = prep(invite.attrs.to ?? "");
    if (!to) {
      origin.send(stanza.errorReply("modify", "jid-malformed", "Whom is this invitation for?"));
      return;
    }
    targets.push(to);
  }
  // Invitees of a members-only room become members: within the room's limit.
  const joining = room.config.membersOnly
    ? new Set(targets.map(bare).filter((j) => affiliationOf(room, j) === "none")).size
    : 0;
  if (joining > 0 && Object.keys(room.affiliations).length + joining > MAX_AFFILIATIONS) {
    origin.send(stanza.errorReply("wait", "resource-constraint", "Too many members"));
    return;
  }
  let changed = false;
  for (const [i, invite] of invites.entries()) {
    const to = targets[i];
    // An invitation to a members-only room makes the invitee a member (as Prosody).
    if (room.config.membersOnly && affiliationOf(room, bare(to)) === "none") {
      room.affiliations[bare(to)] = { affiliation: "member", reason: `Invited by ${bare(from)}` };
      changed = true;
    }
    const m = element("message", { from: room.jid, to, id: crypto.randomUUID() });
    m.tag("x", { xmlns: USER_NS }).tag("invite", { from });
    const reason = invite.getChildText("reason");
    if (reason) m.textTag("reason", reason);
    m.up();
    if (room.config.password) m.textTag("password", room.config.password);
    m.up();
    m.textTag(
      "body",
      `${bare(from)} invites you to the room ${room.jid}${reason ? ": " + reason : ""}`,
    );
    svc.module.send(m);
  }
  if (changed) {
    svc.save(room).catch((error) =>
      svc.module.log.error("saving room {room} failed: {error}", { room: room.jid, error })
    );
  }
}

/**
 * Voice requests (XEP-0045 §7.13, §8.6): a visitor's request goes to the
 * moderators as a form; a moderator's form back with `muc#request_allow`
 * true gives the visitor voice.
 */
function voiceRequest(
  svc: Service,
  room: Room,
  origin: StanzaEvent["origin"],
  stanza: Stanza,
  form: SubmittedForm,
  from: string,
) {
  const me = occupantByReal(room, from);
  if (!me) {
    origin.send(
      stanza.errorReply("cancel", "not-acceptable", "You are not currently connected to this chat"),
    );
    return;
  }
  const value = (name: string) => form.fields.get(name)?.[0];
  if (me.role === "moderator") {
    // An answer to a request.
    const allow = value("muc#request_allow");
    if (allow !== "true" && allow !== "1") return;
    const target = room.occupants.get(value("muc#roomnick") ?? "");
    if (target?.role !== "visitor") return;
    target.role = "participant";
    svc.broadcastPresence(room, target);
    return;
  }
  if (me.role !== "visitor" || value("muc#role") !== "participant") {
    origin.send(stanza.errorReply("modify", "bad-request", "Only visitors ask for voice"));
    return;
  }
  const request = buildForm("form", REQUEST_FORM, [
    { var: "muc#role", type: "list-single", label: "Requested role", values: ["participant"] },
    { var: "muc#jid", type: "jid-single", label: "User ID", values: [from] },
    { var: "muc#roomnick", type: "text-single", label: "Room nickname", values: [me.nick] },
    { var: "muc#request_allow", type: "boolean", label: "Grant voice?", values: ["false"] },
  ]);
  request.children.splice(0, 0, element("title").text("Voice request"));
  const p = prepare(
    element("message", { from: room.jid, id: crypto.randomUUID() }).addChild(request),
  );
  for (const o of room.occupants.values()) {
    if (o.role !== "moderator") continue;
    for (const jid of o.sessions.keys()) deliver(svc.module, p, jid);
  }
}
