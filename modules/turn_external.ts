/**
 * A TURN server run beside Cadence (coturn with `use-auth-secret`), as
 * Prosody's mod_turn_external: announces it through External Service
 * Discovery (`external_services`, XEP-0215) with time-limited credentials
 * made from the shared secret, so calls (Jingle) can get through NAT.
 *
 * Options, as Prosody names them: `turn_external_host` (required; the
 * module does nothing without it), `turn_external_port` (3478),
 * `turn_external_secret` (coturn's `static-auth-secret`),
 * `turn_external_ttl` (86,400 s), `turn_external_tcp` (false: also TURN
 * over TCP), `turn_external_tls_port` (none: TURNS over TLS on that port).
 * It announces STUN over UDP, TURN over UDP, and the TCP and TLS variants
 * when configured.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { ExternalService } from "./external_services.ts";

export default async function turnExternal(module: Module) {
  await module.depends("external_services");
  const host = module.getOptionString("turn_external_host");
  if (!host) {
    module.log.warn("turn_external_host is not set: no TURN server is announced");
    return;
  }
  const port = module.getOptionInteger("turn_external_port", 3478, { min: 1, max: 65535 });
  const secret = module.getOptionString("turn_external_secret");
  if (!secret) module.log.warn("turn_external_secret is not set: TURN has no credentials");
  const ttl = module.getOptionPeriod("turn_external_ttl", 86400);
  const tlsPort = module.getOptionInteger("turn_external_tls_port", 0, { min: 0, max: 65535 });
  const turn = { host, secret, ttl };
  const services: ExternalService[] = [
    { type: "stun", transport: "udp", host, port },
    { type: "turn", transport: "udp", port, ...turn },
  ];
  if (module.getOptionBoolean("turn_external_tcp", false)) {
    services.push({ type: "turn", transport: "tcp", port, ...turn });
  }
  if (tlsPort) services.push({ type: "turns", transport: "tcp", port: tlsPort, ...turn });
  for (const s of services) module.addItem("external_service", s);
}
