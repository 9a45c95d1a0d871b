/**
 * A complete Cadence configuration: every option the core reads, with its
 * default. Option names are Prosody's, so Prosody's documentation applies.
 *
 * Copy it to cadence.config.ts, change what you need, and run
 *
 *     deno run -A main.ts start
 *
 * (The file is found as ./cadence.config.ts, or by $CADENCE_CONFIG, or by
 * --config FILE. SIGHUP makes a running server read it again.)
 *
 * Relative paths are relative to this file's directory.
 * @module
 */
import { defineConfig } from "./core/config.ts";

export default defineConfig({
  // --- Accounts and administration -----------------------------------------

  /** JIDs of the server's administrators. Default: []. */
  admins: [],

  /**
   * Where passwords are checked: "internal_hashed" (default; salted SCRAM
   * hashes, never the password itself), "internal_plain" (plaintext at rest,
   * for migrations and benchmarks), "insecure" (any password works; tests
   * only, and only with insecure_open_authentication set to Prosody's
   * acknowledgement text), or a custom auth_<name> module.
   */
  authentication: "internal_hashed",

  /** Whether clients may create accounts in-band (XEP-0077). Default: false. */
  allow_registration: false,

  /** Resources one account may have bound at once (and streams waiting to bind one). Default: 10. */
  max_user_sessions: 10,

  /**
   * SASL mechanisms not to offer. E.g. ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"]
   * for slixmpp ≤ 1.8, which refuses servers that offer -PLUS (see README).
   * Default: [].
   */
  disable_sasl_mechanisms: [],

  /**
   * Failed authentications allowed from one address within limit_auth_period
   * seconds; past them, attempts from it get temporary-auth-failure without
   * a password being checked. Defaults: 5 and 30.
   */
  limit_auth_max: 5,
  limit_auth_period: 30,

  /**
   * SASL2 (XEP-0388) with Bind2 (XEP-0386): login, resource and stream
   * management in one exchange. Default: true.
   */
  sasl2: true,

  /** FAST tokens (XEP-0484), with SASL2, on encrypted streams. Default: true. */
  fast: true,

  /** How long a FAST token lasts (seconds or a period). Default: 21 days. */
  fast_token_ttl: "21 days",

  /** The key FAST tokens are derived from, relative to data_path. Default: "fast.key". */
  fast_key_file: "fast.key",

  // --- Modules ---------------------------------------------------------------

  /**
   * Modules to load. Left out, the modules of Prosody's default configuration
   * that Cadence has are on: roster, saslauth, tls, disco, carbons, private,
   * blocklist, vcard, version, uptime, time, ping, register, smacks, csi,
   * cloud_notify, mam, lastactivity, server_contact_info. c2s, iq,
   * presence, message and offline are always loaded.
   */
  // modules_enabled: ["saslauth", "tls", "disco", "ping", "version", "time", "uptime"],

  /** Modules not to load, even if enabled elsewhere. Default: []. */
  modules_disabled: [],

  /** Directories searched for drop-in modules before the built-in ones. Default: []. */
  plugin_paths: [],

  // --- Network -----------------------------------------------------------------

  /** Addresses to listen on; "*" means every interface. Default: ["*"]. */
  interfaces: ["*"],

  /** Addresses for client connections only (overrides interfaces). Default: interfaces. */
  // c2s_interfaces: ["*"],

  /** Client ports with STARTTLS. Default: [5222]. */
  c2s_ports: [5222],

  /** Client ports with TLS from the first byte (XEP-0368). Default: [5223]. */
  c2s_direct_tls_ports: [5223],

  /**
   * HTTP (WebSocket at /xmpp-websocket, host-meta, …): ports, HTTPS ports (each host's
   * certificate by SNI, else the first host's), interfaces (default: interfaces), the URL clients use behind a reverse proxy,
   * proxies whose X-Forwarded-For/-Proto are believed, and the largest request body.
   */
  // http_ports: [5280],
  // https_ports: [5281],
  // http_interfaces: ["*"],
  // http_external_url: "https://chat.example.com/",
  // trusted_proxies: ["127.0.0.1", "::1"],
  // http_max_content_size: 10 * 1024 * 1024,

  /**
   * Against clients that hold HTTP connections open (slowloris): connections per address
   * (trusted proxies are not counted) and in all, seconds to send a request head, seconds
   * without a byte either way before a connection is closed.
   */
  // http_max_connections_per_ip: 64,
  // http_max_connections: 10000,
  // http_header_timeout: 30,
  // http_idle_timeout: 300,

  /** A WebSocket behind a proxy that ends TLS counts as encrypted. Default: false. */
  // consider_websocket_secure: false,

  /**
   * BOSH (XEP-0206) at /http-bind: seconds without a request before a session ends, longest
   * wait a request may be held, requests at once, seconds between a polling client's empty
   * requests, longest pause; and a BOSH session behind a TLS-ending proxy counts as encrypted.
   */
  // bosh_max_inactivity: 60,
  // bosh_max_wait: 120,
  // bosh_max_requests: 2,
  // bosh_max_polling: 5,
  // bosh_max_pause: 120,
  // consider_bosh_secure: false,

  /**
   * STUN and TURN servers for calls (XEP-0215), with time-limited TURN credentials from
   * coturn's static-auth-secret: modules_enabled: ["turn_external"] and
   */
  // turn_external_host: "turn.example.com",
  // turn_external_port: 3478,
  // turn_external_secret: "the same as coturn's static-auth-secret",
  // turn_external_ttl: 86400,
  // turn_external_tcp: false,
  // turn_external_tls_port: 5349,
  /** Or any list of services: modules_enabled: ["external_services"] and */
  // external_services: [{ type: "stun", transport: "udp", host: "stun.example.com", port: 3478 }],

  /**
   * Metrics for Prometheus at /metrics (modules_enabled: ["http_openmetrics"]), readable from
   * these addresses and this network only.
   */
  // openmetrics_allow_ips: ["127.0.0.1", "::1"],
  // openmetrics_allow_cidr: "10.0.0.0/8",

  /**
   * The web admin at /admin (modules_enabled: ["admin_web"]): the `admins` log in with their
   * XMPP password. Seconds between the charts' samples, samples kept, idle minutes before a
   * login expires.
   */
  // admin_web_sample_interval: 10,
  // admin_web_samples: 360,
  // admin_web_session_timeout: 30 * 60,

  /** Where external components (XEP-0114) connect, when one is configured. Default: [5347]. */
  // component_ports: [5347],

  /** Addresses for components (they usually run on this machine). Default: ["127.0.0.1"]. */
  // component_interfaces: ["127.0.0.1"],

  /**
   * Server-to-server (federation; the `s2s` module, on by default: `modules_disabled:
   * ["s2s"]` turns it off). Ports for other servers (STARTTLS), ports with TLS from the
   * first byte (XEP-0368; none by default), interfaces (default: interfaces).
   */
  // s2s_ports: [5269],
  // s2s_direct_tls_ports: [5270],
  // s2s_interfaces: ["*"],

  /** Refuse server-to-server streams without TLS, both ways. Default: true. */
  // s2s_require_encryption: true,

  /**
   * Ask every remote server for a certificate that is valid for its domain (else refuse it);
   * false (the default, as Prosody) lets dialback prove a domain when its certificate is not.
   * `s2s_secure_domains` asks it of some domains only; `s2s_insecure_domains` exempts some
   * when s2s_secure_auth is on. Trusted roots: `s2s_cafile` (PEM), default the system's.
   */
  // s2s_secure_auth: false,
  // s2s_secure_domains: ["bank.example"],
  // s2s_insecure_domains: ["old.example"],
  // s2s_cafile: "/etc/ssl/certs/ca-certificates.crt",

  /**
   * Seconds a route may be idle before it closes (Default: 300); seconds connecting and
   * authenticating may take, either way (Default: 90; Prosody's `s2s_timeout`). A DNS server
   * to ask for SRV records instead of the system's ("address" or "address:port").
   */
  // s2s_timeout: 300,
  // s2s_connect_timeout: 90,
  // s2s_dns_server: "127.0.0.1:53",

  /** Refuse to authenticate clients before TLS. Default: true. */
  c2s_require_encryption: true,

  /** Allow SASL PLAIN without TLS (only with c2s_require_encryption off). Default: false. */
  allow_unencrypted_plain_auth: false,

  /** Largest stanza a client may send, in bytes. Default: 262144 (256 KiB). */
  c2s_stanza_size_limit: 256 * 1024,

  /** Largest stanza before authentication, in bytes. Default: 10000. */
  c2s_unauthed_stanza_size_limit: 10_000,

  /** Seconds a connection may take to authenticate and bind a resource. Default: 300. */
  c2s_timeout: 300,

  /** Connections from one address that have not bound a resource yet (authenticated or not). Default: 32. */
  c2s_max_unauthed_per_ip: 32,

  /**
   * Client connections in all; past it new ones are refused with
   * resource-constraint. Default (and most): the open-file limit less 100.
   */
  // c2s_max_connections: 10_000,

  /**
   * Bytes of output that may wait for a client that reads too slowly; past
   * it the stream is closed and what was not written goes where messages
   * for an unavailable resource go (other resources, offline storage).
   * Default: 1048576 (1 MiB).
   */
  max_send_buffer_size: 1 << 20,

  /** Seconds output may wait with nothing taken by the client before its stream is closed. Default: 180. */
  send_timeout: 180,

  /**
   * Inbound rate limits, as Prosody's mod_limits ("kb" is 1000 bytes). A
   * client that sends faster is read more slowly. false turns them off.
   * Default: { c2s: { rate: "100kb/s", burst: "2s" } }, and for streams from
   * other servers (s2sin, with the s2s module) { rate: "1mb/s", burst: "2s" }.
   */
  limits: { c2s: { rate: "100kb/s", burst: "2s" } },

  /** JIDs the rate limits do not apply to. Default: []. */
  unlimited_jids: [],

  /** Seconds to wait for the client's </stream:stream> after ours. Default: 5. */
  c2s_close_timeout: 5,

  /** When a resource is bound twice: "kick_old" (default) or "kick_new". */
  conflict_resolve: "kick_old",

  // --- Stream management (XEP-0198, module smacks) ------------------------------

  /**
   * How long a session whose connection was lost stays online for its client
   * to resume it (seconds, or a period like "10 minutes"). Default: 600.
   */
  smacks_hibernation_time: 600,

  /**
   * Stanzas a client may leave unacknowledged. Past it a connected client's
   * stream is closed (policy-violation) and a hibernating session ends; the
   * stanzas go to the account's other resources or offline storage. Default: 500.
   */
  smacks_max_queue_size: 500,

  /**
   * The same cap in size: the characters of XML waiting unacknowledged for one
   * session (not a Prosody option; 500 stanzas alone could hold 100+ MiB).
   * Default: 16 MiB, above a full archive page of the largest stanzas.
   */
  smacks_max_queue_bytes: 16777216,

  /** Stanzas sent before the server asks for an acknowledgement. Default: 0 (at once). */
  smacks_max_unacked_stanzas: 0,

  /** Hibernating sessions one account may have; the oldest ends first. Default: 10. */
  smacks_max_hibernated_sessions: 10,

  /**
   * Client State Indication (XEP-0352, module csi): stanzas held back for an
   * inactive client before they go out anyway. Default: 256.
   */
  csi_queue_size: 256,

  // --- Message archive (XEP-0313, module mam) -------------------------------------

  /**
   * What is archived for users who have not chosen: "always" (default),
   * "roster" (only conversations with contacts) or "never". Prosody's
   * default_archive_policy (true/false/"roster") is read too.
   */
  mam_default: "always",

  /** Most messages one archive query returns per page. Default: 50. */
  max_archive_query_results: 50,

  /**
   * How long archived messages are kept: a period ("1d", "1w", "1m", "1y",
   * "2 weeks") or "never". Default: "1w", as Prosody.
   */
  archive_expires_after: "1w",

  /** How often expired messages are removed (seconds). Default: 14400 (4 hours). */
  archive_cleanup_interval: 14400,

  /** Most messages one user's archive keeps (the oldest go first). Default: unlimited. */
  // archive_max_items: 100000,

  // --- Push notifications (XEP-0357, module cloud_notify) -------------------------

  /** Put the message body in notifications to app servers. Default: false. */
  push_notification_with_body: false,

  /** Put the sender's address in notifications. Default: true. */
  push_notification_with_sender: true,

  /** App registrations one account may have; the oldest goes first. Default: 5. */
  push_max_devices: 5,

  // --- Personal eventing (PEP, XEP-0163) ----------------------------------------

  /** The most items a PEP node may keep (its pubsub#max_items, "max" included). Default: 256. */
  pep_max_items: 256,

  /** The largest item payload, in characters of XML. Default: 256 KiB. */
  pep_max_item_size: 262144,

  /** Nodes one account may have. Default: 256. */
  pep_max_nodes: 256,

  /**
   * The size of all of one account's PEP items together, in characters of XML
   * (not a Prosody option: the limits above alone would allow gigabytes).
   * Default: 16 MiB.
   */
  pep_max_account_size: 16777216,

  /** Verified entity capabilities kept for +notify (XEP-0115), server-wide. Default: 10000. */
  caps_cache_size: 10000,

  /** How long to wait for a client's disco#info about its capabilities. Default: 30 s. */
  caps_query_timeout: 30,

  // --- TLS certificates --------------------------------------------------------

  /**
   * Directory searched for <host>.crt and <host>.key. Default: "certs". When
   * no certificate is found, a self-signed one is generated into
   * <data_path>/certs on first start.
   */
  certificates: "certs",

  /** An explicit certificate, globally or per host. Default: none. */
  // ssl: { certificate: "/etc/cadence/example.com.crt", key: "/etc/cadence/example.com.key" },

  // --- Storage -----------------------------------------------------------------

  /**
   * Storage driver: "sqlite" (default; one file, <data_path>/cadence.sqlite),
   * "memory" (lost at exit), or an object mapping store names to drivers,
   * e.g. { accounts: "sqlite", caps_cache: "memory" }. "internal" is accepted
   * as Prosody's name for the embedded store.
   */
  storage: "sqlite",

  /** Driver for stores the storage map does not name. Default: "sqlite". */
  // default_storage: "sqlite",

  /** Where data lives. Default: "./data". */
  data_path: "./data",

  // --- Logging and identity ----------------------------------------------------

  /** "debug", "info" (default), "warn", "error", or { level, file }. */
  log: "info",

  /** Leave the operating system out of version replies (XEP-0092). Default: false. */
  hide_os_type: false,

  /** Name of the server in service discovery. Default: "Cadence". */
  server_name: "Cadence",

  /** Extra items listed in the host's disco#items. Default: []. */
  disco_items: [],

  // --- Hosts ---------------------------------------------------------------------

  /**
   * VirtualHosts and their own options. Per-host options override the
   * global ones, except that modules_enabled adds to the global list and
   * modules_disabled removes from it.
   */
  virtual_hosts: {
    localhost: {},
    // "example.com": { modules_disabled: ["version"] },
  },

  /**
   * Components (each names the module that runs it; options beside it are
   * its own). Default: none. A publish-subscribe service (XEP-0060), where
   * the `admins` create nodes: `pubsub_max_items` (256), `pubsub_max_nodes`
   * (1000), `pubsub_max_item_size` (256 KiB), `pubsub_max_total_size` (64 MiB
   * of items in all), `expose_publisher` (false).
   *
   * Chat rooms (XEP-0045, with their archive `muc_mam` unless the component's
   * `modules_disabled` lists it), with Prosody's options: `restrict_room_creation`
   * (false: anyone; "local": users of this server's hosts; true: the admins),
   * `muc_room_default_public` (true), `muc_room_default_persistent` (false),
   * `muc_room_default_members_only` (false), `muc_room_default_moderated`
   * (false), `muc_room_default_public_jids` (false), `muc_room_default_change_subject`
   * (false), `muc_room_default_history_length` (20), `muc_room_default_language`,
   * `muc_room_default_allow_member_invites` (false), `max_history_messages` (20),
   * `muc_room_locking` (true), `muc_room_lock_timeout` (300 s), `muc_log_by_default`
   * (true), `muc_log_expires_after` ("1w"); and Cadence's limits `muc_max_rooms`
   * (10,000), `muc_max_rooms_per_owner` (100, admins excepted) and
   * `muc_max_occupants` (5,000 per room).
   */
  components: {
    "conference.localhost": { module: "muc" },
    // An external component (XEP-0114): its secret, no module.
    // "gateway.example.com": { component_secret: "change me" },
    // "pubsub.example.com": { module: "pubsub", expose_publisher: true },
    // File sharing (XEP-0363), served at /file_share on the HTTP server: the largest file,
    // each user's bytes per day, the total, how long files are kept, the types allowed.
    // "upload.example.com": {
    //   module: "http_file_share",
    //   http_file_share_size_limit: 10 * 1024 * 1024,
    //   http_file_share_daily_quota: 100 * 1024 * 1024,
    //   http_file_share_global_quota: 10 * 1024 * 1024 * 1024,
    //   http_file_share_expires_after: "1w",
    //   http_file_share_allowed_file_types: ["image/*", "video/*", "audio/*", "text/plain"],
    // },
  },
});
