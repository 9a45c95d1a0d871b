/**
 * A bounded, seeded fuzz run: a few thousand client streams — stream
 * headers, SASL, binding and stanzas for every module, then mutated byte by
 * byte and cut into random chunks — go to a real server over real sockets.
 * The server must stay up, log no error, and let a fresh client log in and
 * be answered afterwards. A failure names its seed and case, to replay.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";
import { setupLogging, stopLogging } from "../../core/log.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20261201);
const CASES = Number(Deno.env.get("FUZZ_CASES") ?? 3000);
const PARALLEL = 8;

function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof random>;

const HEADER = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' " +
  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const USERS = ["f1", "f2", "f3", "f4"];
const JIDS = [
  "romeo@localhost",
  "f2@localhost",
  "f2@localhost/r",
  "localhost",
  "nobody@localhost",
  "x@elsewhere.example",
  "f1@localhost",
  "",
  "a@b@c",
  "Ω@localhost/ü",
];

/** One stanza a client might send after binding, with random addresses and content. */
function stanza(r: Rng): string {
  const to = r.pick(JIDS);
  const toAttr = to === "" ? "" : ` to='${to}'`;
  const id = `i${r.int(1000)}`;
  const get = (ns: string, name = "query", inner = "") =>
    `<iq type='get' id='${id}'${toAttr}><${name} xmlns='${ns}'>${inner}</${name}></iq>`;
  const set = (ns: string, name = "query", inner = "") =>
    `<iq type='set' id='${id}'${toAttr}><${name} xmlns='${ns}'>${inner}</${name}></iq>`;
  switch (r.int(24)) {
    case 0:
      return r.pick([
        "<presence/>",
        "<presence><priority>-1</priority></presence>",
        "<presence><show>away</show><status>x</status><priority>5</priority></presence>",
      ]);
    case 1:
      return `<presence${toAttr} type='${
        r.pick([
          "subscribe",
          "subscribed",
          "unsubscribe",
          "unsubscribed",
          "probe",
          "unavailable",
          "error",
        ])
      }'/>`;
    case 2:
      return `<message${toAttr} type='${
        r.pick(["chat", "normal", "groupchat", "headline", "error"])
      }' id='${id}'><body>hi ${r.int(99)}</body></message>`;
    case 3:
      return `<message${toAttr} type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>`;
    case 4:
      return get("jabber:iq:roster", "query", r.chance(0.5) ? "" : "");
    case 5:
      return set(
        "jabber:iq:roster",
        "query",
        `<item jid='${r.pick(JIDS)}' name='n'${
          r.chance(0.3) ? " subscription='remove'" : ""
        }><group>g</group><group>${r.pick(["g", "h", ""])}</group></item>`,
      );
    case 6:
      return get("http://jabber.org/protocol/disco#info", "query", r.chance(0.3) ? "" : "");
    case 7:
      return get("http://jabber.org/protocol/disco#items");
    case 8:
      return `<iq type='get' id='${id}'${toAttr}><ping xmlns='urn:xmpp:ping'/></iq>`;
    case 9:
      return get(
        r.pick(["jabber:iq:version", "jabber:iq:last", "urn:xmpp:time"]),
        r.pick(["query", "time"]),
      );
    case 10:
      return r.chance(0.5)
        ? get("vcard-temp", "vCard")
        : set("vcard-temp", "vCard", "<FN>F</FN><PHOTO><BINVAL>AAAA</BINVAL></PHOTO>");
    case 11:
      return r.chance(0.5)
        ? get("jabber:iq:private", "query", "<x xmlns='urn:x'/>")
        : set("jabber:iq:private", "query", "<x xmlns='urn:x'><y/></x>");
    case 12:
      return r.chance(0.3)
        ? get("urn:xmpp:blocking", "blocklist")
        : set("urn:xmpp:blocking", r.pick(["block", "unblock"]), `<item jid='${r.pick(JIDS)}'/>`);
    case 13:
      return set("urn:xmpp:carbons:2", r.pick(["enable", "disable"]));
    case 14:
      return r.chance(0.5)
        ? get("jabber:iq:register")
        : set("jabber:iq:register", "query", "<username>f1</username>");
    case 15:
      return `<iq type='${r.pick(["result", "error"])}' id='${id}'${toAttr}/>`;
    case 16:
      return "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>again</resource></bind></iq>";
    case 17:
      return "<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>";
    case 18:
      return r.pick([
        "<enable xmlns='urn:xmpp:sm:3'/>",
        "<r xmlns='urn:xmpp:sm:3'/>",
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
      ]);
    case 19:
      return `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa("\0f1\0pw")
      }</auth>`;
    case 20:
      return `<iq type='get' id='${id}'${toAttr}/>`;
    case 21:
      return `<message${toAttr}><body>${
        "long ".repeat(r.int(400))
      }</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`;
    case 22:
      return "<iq type='get' id='two'><a xmlns='urn:a'/><b xmlns='urn:b'/></iq>";
    default:
      return `<iq type='${r.pick(["get", "set"])}' id='${id}'${toAttr}><${
        r.pick(["q", "x:y"])
      } xmlns${r.chance(0.5) ? ":x" : ""}='urn:fuzz'/></iq>`;
  }
}

/**
 * A client stream in steps, as a client sends it (each step after the
 * server's answer to the one before): header and SASL, the restarted stream
 * and binding, then stanzas and maybe a close.
 */
function session(r: Rng): { steps: string[]; stanzas: string[] } {
  const user = r.pick(USERS);
  const password = r.chance(0.85) ? "pw" : "wrong";
  const mechanism = r.pick(["PLAIN", "PLAIN", "PLAIN", "SCRAM-SHA-1", "NOPE"]);
  const payload = mechanism === "PLAIN"
    ? btoa(`\0${user}\0${password}`)
    : btoa(`n,,n=${user},r=abc`);
  const auth = HEADER +
    `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${mechanism}'>${payload}</auth>`;
  const resource = r.pick(["r", "a", "", "r/x"]);
  const bind = HEADER +
    `<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>` +
    `<resource>${resource}</resource></bind></iq>`;
  const stanzas: string[] = [];
  for (let i = r.int(12) + 1; i > 0; i--) stanzas.push(r.pick(["", " ", "\n"]) + stanza(r));
  if (r.chance(0.5)) stanzas.push("</stream:stream>");
  return { steps: [auth, bind], stanzas };
}

/** What a step waits for before the next one is sent. */
const ANSWERS = [
  /<success|<failure|<\/stream:stream>/,
  /<\/jid>|type="error"|<\/stream:stream>/,
];

const MUTATIONS = [
  "<",
  ">",
  "&",
  ";",
  "'",
  '"',
  "/",
  "=",
  "!",
  "?",
  "[",
  "]",
  " ",
  ":",
  "\u0000",
  "\u00e9",
  "&#0;",
  "&lt;",
  "</iq>",
  "<!--",
  "]]>",
  "<x>",
  "\uffff",
  "\ud83d",
];

function mutate(r: Rng, s: string): string {
  for (let i = r.int(4) + 1; i > 0; i--) {
    const at = r.int(s.length + 1);
    switch (r.int(4)) {
      case 0:
        s = s.slice(0, at) + r.pick(MUTATIONS) + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + r.int(8));
        break;
      case 2:
        s = s.slice(0, at) + r.pick(MUTATIONS) + s.slice(at + 1);
        break;
      default:
        s = s.slice(0, at) + s.slice(at, at + r.int(40)).repeat(2) + s.slice(at);
    }
  }
  return s;
}

/**
 * Plays a stream: each step in random chunks, the next once the server has
 * answered (or after a moment); ends when the server closes or goes quiet.
 */
function play(port: number, r: Rng, steps: string[]): Promise<void> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let received = "";
    let step = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const send = () => {
      clearTimeout(timer);
      if (step >= steps.length) {
        timer = setTimeout(finish, 100); // the last answers come, or nothing does
        return;
      }
      const bytes = encoder.encode(steps[step]);
      for (let at = 0; at < bytes.length;) {
        const end = Math.min(bytes.length, at + r.int(300) + 1);
        socket.write(bytes.subarray(at, end));
        at = end;
      }
      received = "";
      step++;
      timer = setTimeout(send, 150); // no answer: go on regardless
    };
    socket.on("error", finish);
    socket.on("close", finish);
    socket.on("data", (d: Uint8Array) => {
      received += decoder.decode(d, { stream: true });
      if (step < steps.length && ANSWERS[step - 1]?.test(received)) send();
    });
    socket.on("connect", send);
  });
}

Deno.test(`fuzz: ${CASES} mutated client streams (seed ${SEED}); the server stays up and clean`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-fuzz-" });
  await setupLogging({ level: "warn", file: `${dir}/cadence.log` });
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    limits: false,
    limit_auth_max: 1_000_000,
    c2s_max_unauthed_per_ip: 1000,
    c2s_close_timeout: 0.2,
  });
  try {
    const users = t.server.users("localhost")!;
    for (const u of [...USERS, "romeo", "checker"]) await users.createUser(u, "pw");
    // What the run reached, so that it is known to go past the parser into the modules.
    const reached = { binds: 0, stanzas: 0 };
    const events = t.server.hosts.get("localhost")!.events;
    events.on("resource-bind", () => void reached.binds++, 100);
    events.on("pre-stanza", () => void reached.stanzas++, 100);
    const r = random(SEED);
    let next = 0;
    const worker = async () => {
      while (next < CASES) {
        const n = next++;
        const { steps, stanzas } = session(r);
        // Mostly one stanza is mutated (those before it reach the modules intact),
        // sometimes the login, sometimes nothing (valid sessions leave state behind).
        const dice = r.int(10);
        if (dice < 7) {
          const k = r.int(stanzas.length);
          stanzas[k] = mutate(r, stanzas[k]);
        } else if (dice < 9) {
          const k = r.int(steps.length);
          steps[k] = mutate(r, steps[k]);
        }
        steps.push(stanzas.join(""));
        try {
          await play(t.port, r, steps);
        } catch (e) {
          throw new Error(`case ${n} of seed ${SEED}: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    assert.ok(reached.binds > CASES / 3, `only ${reached.binds} streams got bound`);
    assert.ok(reached.stanzas > CASES / 3, `only ${reached.stanzas} stanzas reached the router`);
    console.log(`fuzz: ${reached.binds} streams bound, ${reached.stanzas} stanzas routed`);

    // Still serving: a fresh client logs in and is answered.
    const c = await RawClient.connect(t.port);
    try {
      await c.login("checker", "pw");
      c.send("<iq type='get' id='alive' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      await c.waitFor(/<iq [^>]*id="alive"[^>]*type="result"/);
    } finally {
      c.close();
    }
  } finally {
    await t.stop();
    await stopLogging();
  }
  const errors = (await Deno.readTextFile(`${dir}/cadence.log`)).split("\n")
    .filter((l) => /\[(ERR|FTL)\]/.test(l));
  await Deno.remove(dir, { recursive: true });
  assert.deepEqual(errors, [], `errors logged (seed ${SEED})`);
});
