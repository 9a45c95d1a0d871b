/**
 * The c2s listening sockets, kept in step with the configuration: each
 * `c2s_ports` and `c2s_direct_tls_ports` port on each interface — or, when
 * systemd passed sockets (socket activation), those instead: by their name
 * (`FileDescriptorName=` `c2s`/`xmpp-client` or `c2s_direct_tls`/
 * `xmpps-client`), else by their port (one of `c2s_ports` or
 * `c2s_direct_tls_ports`). Inherited sockets are never closed on a reload.
 *
 * @example
 * ```ts
 * const listeners = new C2sListeners(module.log, (socket, directTls) => accept(socket, directTls));
 * await listeners.update(settings); // at start, and after each reload
 * ```
 * @module
 */
import type { Socket } from "node:net";
import type { Logger } from "../../core/log.ts";
import { inheritedSockets, Listener } from "../../core/net/listener.ts";
import type { C2sSettings } from "./settings.ts";

const PLAIN_NAMES = new Set(["c2s", "xmpp-client"]);
const TLS_NAMES = new Set(["c2s_direct_tls", "xmpps-client"]);

export class C2sListeners {
  /** By what they serve: "iface|port|tls" for bound ones, "fd:N" for inherited ones. */
  private open = new Map<string, Listener>();

  constructor(
    private log: Logger,
    private onSocket: (socket: Socket, directTls: boolean) => void,
  ) {}

  /** Opens what the settings ask for and closes what they no longer do. */
  async update(settings: C2sSettings): Promise<void> {
    const inherited = inheritedSockets();
    if (inherited.length > 0) {
      for (const s of inherited) await this.adopt(s.fd, s.name, settings);
      return; // socket-activated: the configured ports are systemd's business
    }
    const wanted = new Map<string, { iface: string; port: number; tls: boolean }>();
    for (const iface of settings.interfaces) {
      for (const port of settings.ports) {
        wanted.set(`${iface}|${port}|`, { iface, port, tls: false });
      }
      for (const port of settings.directTlsPorts) {
        wanted.set(`${iface}|${port}|tls`, { iface, port, tls: true });
      }
    }
    for (const [key, l] of this.open) {
      if (key.startsWith("fd:") || wanted.has(key)) continue;
      l.close();
      this.open.delete(key);
      this.log.info("c2s no longer listening on {where}", { where: l.address() });
    }
    for (const [key, w] of wanted) {
      if (this.open.has(key)) continue;
      const l = new Listener(
        { host: w.iface, port: w.port, log: this.log },
        (socket) => this.onSocket(socket, w.tls),
      );
      try {
        await l.start();
      } catch (e) {
        throw new Error(`c2s ${(e as Error).message}`);
      }
      this.open.set(key, l);
      this.log.info("c2s listening on {where}{tls}", {
        where: l.address(),
        tls: w.tls ? " (direct TLS)" : "",
      });
    }
  }

  /** Serves a socket systemd passed: plain or direct TLS by its name, or else by its port. */
  private async adopt(fd: number, name: string | undefined, settings: C2sSettings) {
    const key = `fd:${fd}`;
    if (this.open.has(key)) return;
    const named = name !== undefined && (PLAIN_NAMES.has(name) || TLS_NAMES.has(name));
    let tls = named && TLS_NAMES.has(name!);
    const l = new Listener({ fd, log: this.log }, (socket) => this.onSocket(socket, tls));
    await l.start();
    if (!named) {
      const port = l.port() ?? -1;
      tls = settings.directTlsPorts.includes(port);
      if (!tls && !settings.ports.includes(port)) {
        this.log.warn(
          "not serving the socket systemd passed ({name}, fd {fd}) on {where}: its port is " +
            "in neither c2s_ports nor c2s_direct_tls_ports, and its name says nothing",
          { name: name ?? "unnamed", fd, where: l.address() },
        );
        l.close();
        return;
      }
    }
    this.open.set(key, l);
    this.log.info("c2s serving the socket systemd passed ({name}, fd {fd}) on {where}{tls}", {
      name: name ?? "unnamed",
      fd,
      where: l.address(),
      tls: tls ? " (direct TLS)" : "",
    });
  }

  /** Asks each listener to check soon that it still accepts (after refusing a burst). */
  checkSoon(): void {
    for (const l of this.open.values()) l.checkSoon();
  }

  addresses(): string[] {
    return [...this.open.values()].map((l) => l.address());
  }

  close(): void {
    for (const l of this.open.values()) l.close();
    this.open.clear();
  }
}
