/**
 * What the peers need for the SCRAM-over-STARTTLS login: a self-signed
 * certificate for `localhost` with an ECDSA P-256 key (the kind Cadence
 * generates for itself, so the handshakes cost alike), made once per bench
 * run with `openssl`, and SCRAM-SHA-1 credentials computed as RFC 5802 says.
 * @module
 */
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { trackTemplate } from "../server_process.ts";

/** Files of the peers' certificate. */
export interface PeerCertificate {
  cert: string;
  key: string;
  /** Certificate and key in one file (ejabberd's `certfiles`). */
  pem: string;
}

let made: Promise<PeerCertificate> | undefined;

/** The certificate, made on first use into a temporary directory removed at the end of the run. */
export function peerCertificate(): Promise<PeerCertificate> {
  made ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "peers-bench-tls-" });
    trackTemplate(dir);
    const cert = `${dir}/localhost.crt`, key = `${dir}/localhost.key`, pem = `${dir}/localhost.pem`;
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "30",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr).slice(-500)}`);
    }
    await Deno.writeTextFile(pem, (await Deno.readTextFile(cert)) + (await Deno.readTextFile(key)));
    await Deno.chmod(key, 0o644); // Prosody drops no privileges here, but be lenient anyway
    return { cert, key, pem };
  })();
  return made;
}

/** SCRAM-SHA-1 stored credentials (RFC 5802): StoredKey and ServerKey, hex. */
export function scramSha1(password: string, salt: string, iterations: number) {
  const salted = pbkdf2Sync(password, salt, iterations, 20, "sha1");
  const clientKey = createHmac("sha1", salted).update("Client Key").digest();
  const serverKey = createHmac("sha1", salted).update("Server Key").digest();
  const storedKey = createHash("sha1").update(clientKey).digest();
  return { storedKey: storedKey.toString("hex"), serverKey: serverKey.toString("hex") };
}
