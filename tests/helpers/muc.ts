/**
 * Helpers for MUC tests with npm:@xmpp/client: a server with a MUC
 * component and the accounts alice, bob and carol (password "pw"), and the
 * few exchanges every MUC test makes (join, configure, iq, read codes).
 *
 * @example
 * ```ts
 * await withMuc(async (login) => {
 *   const alice = await login("alice");
 *   await instantRoom(alice);
 * });
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "./server.ts";
import { connectXmpp, type TestXmpp, type XmlElement } from "./xmppclient.ts";

export const MUC = "http://jabber.org/protocol/muc";
export const USER = `${MUC}#user`;
export const ADMIN = `${MUC}#admin`;
export const OWNER = `${MUC}#owner`;
export const SERVICE = "conference.localhost";
export const ROOM = `club@${SERVICE}`;
export const OPTIONS = { components: { [SERVICE]: { module: "muc" } } };

let seq = 0;

/** Sends raw XML (to one's own account when `to` is empty) and waits for the iq answering it. */
export async function iq(
  c: TestXmpp,
  to: string,
  type: string,
  inner: string,
): Promise<XmlElement> {
  const id = `muc${++seq}`;
  c.xmpp.write(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ""}>${inner}</iq>`);
  return await c.waitFor((s) => s.is("iq") && s.attrs.id === id);
}

/** The stanza error's conditions, e.g. "not-allowed" or "bad-request invalid-options". */
export const errorOf = (s: XmlElement) =>
  s.getChild("error")?.children.filter((c: XmlElement) =>
    typeof c !== "string" && c.name !== "text"
  ).map((c: XmlElement) => c.name).join(" ");

/** The `muc#user` status codes, sorted. */
export const codes = (s: XmlElement) =>
  (s.getChild("x", USER)?.getChildren("status") ?? []).map((x: XmlElement) => x.attrs.code)
    .sort().join(" ");

/** The attributes of the `muc#user` item. */
export const item = (s: XmlElement) => s.getChild("x", USER)?.getChild("item")?.attrs ?? {};

/** Joins and waits for the self-presence (110), or the error. */
export async function join(c: TestXmpp, nick: string, x = `<x xmlns='${MUC}'/>`, room = ROOM) {
  c.xmpp.write(`<presence to='${room}/${nick}'>${x}</presence>`);
  return await c.waitFor((s) =>
    s.is("presence") && s.attrs.from === `${room}/${nick}` &&
    (s.attrs.type === "error" || codes(s).split(" ").includes("110"))
  );
}

/** An owner's configuration form submission with `muc#roomconfig_<name>` fields. */
export const submit = (fields: Record<string, string>) =>
  `<query xmlns='${OWNER}'><x xmlns='jabber:x:data' type='submit'>` +
  `<field var='FORM_TYPE'><value>${MUC}#roomconfig</value></field>` +
  Object.entries(fields).map(([k, v]) =>
    `<field var='muc#roomconfig_${k}'><value>${v}</value></field>`
  ).join("") + "</x></query>";

/** Waits for a subject message from the room. */
export const subjectFrom = (c: TestXmpp, room = ROOM) =>
  c.waitFor((s) =>
    s.is("message") && s.getChild("subject") !== undefined && s.attrs.from?.startsWith(room)
  );

/** Waits for a groupchat message with this body. */
export const groupchat = (c: TestXmpp, body: string, ms?: number) =>
  c.waitFor(
    (s) => s.is("message") && s.attrs.type === "groupchat" && s.getChildText("body") === body,
    ms,
  );

export type Login = (u: string, resource?: string) => Promise<TestXmpp>;

/** Runs `fn` with a server (data in `dir` when given, kept) and a login for alice, bob, carol. */
export async function withMuc(
  fn: (login: Login, t: TestServer) => Promise<void>,
  dir?: string,
  options: Record<string, unknown> = OPTIONS,
) {
  const t = await startTestServer(options, dir);
  const clients: TestXmpp[] = [];
  try {
    for (const u of ["alice", "bob", "carol"]) {
      await t.server.users("localhost")!.createUser(u, "pw").catch(() => {});
    }
    await fn(async (u, resource = "r") => {
      const c = await connectXmpp(t.port, u, "pw", resource);
      clients.push(c);
      c.xmpp.write("<presence/>"); // available, as clients are: invitations go to the bare JID
      return c;
    }, t);
  } finally {
    for (const c of clients) await c.stop();
    await t.stop({ keepData: dir !== undefined });
  }
}

/** Alice makes an instant room (with these configuration fields) and is in it. */
export async function instantRoom(alice: TestXmpp, fields: Record<string, string> = {}) {
  const self = await join(alice, "alice");
  assert.equal(codes(self), "110 201");
  assert.equal(item(self).affiliation, "owner");
  assert.equal(item(self).role, "moderator");
  assert.equal((await iq(alice, ROOM, "set", submit(fields))).attrs.type, "result");
}
