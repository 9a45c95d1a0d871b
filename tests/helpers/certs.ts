/**
 * Test certificates made with the `openssl` command: a root CA, an
 * intermediate, and server certificates with chosen names (DNS-IDs,
 * XmppAddr, SRV-ID, common name), written as PEM files in a directory.
 *
 * @example
 * ```ts
 * const ca = await makeCa(dir, "root");
 * const leaf = await issueCert(dir, ca, "a.test", { dns: ["a.test"] });
 * // leaf.cert, leaf.key: file paths
 * ```
 * @module
 */

export interface TestCert {
  /** PEM file of the certificate (with its intermediates after it, when issued by one). */
  cert: string;
  key: string;
  /** The certificate alone. */
  leaf: string;
}

async function openssl(args: string[], dir: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A self-signed root CA named `name`. */
export async function makeCa(dir: string, name: string): Promise<TestCert> {
  const [cert, key] = [`${dir}/${name}.crt`, `${dir}/${name}.key`];
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "30",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout",
    key,
    "-out",
    cert,
  ], dir);
  return { cert, key, leaf: cert };
}

export interface CertNames {
  /** Common name (default: the file name). */
  cn?: string;
  dns?: string[];
  xmppAddr?: string[];
  /** SRV-IDs such as "_xmpp-server.a.test". */
  srv?: string[];
  /** Makes an intermediate CA. */
  ca?: boolean;
}

/** A certificate for `name` signed by `issuer` (a chain file when the issuer is an intermediate). */
export async function issueCert(
  dir: string,
  issuer: TestCert,
  name: string,
  names: CertNames = {},
): Promise<TestCert> {
  const [leaf, key, csr, ext] = ["crt", "key", "csr", "ext"].map((x) => `${dir}/${name}.${x}`);
  await openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    `/CN=${names.cn ?? name}`,
    "-keyout",
    key,
    "-out",
    csr,
  ], dir);
  const san = [
    ...(names.dns ?? []).map((d) => `DNS:${d}`),
    ...(names.xmppAddr ?? []).map((a) => `otherName:1.3.6.1.5.5.7.8.5;UTF8:${a}`),
    ...(names.srv ?? []).map((s) => `otherName:1.3.6.1.5.5.7.8.7;IA5:${s}`),
  ];
  await Deno.writeTextFile(
    ext,
    (san.length ? `subjectAltName=${san.join(",")}\n` : "") +
      (names.ca
        ? "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        : "basicConstraints=CA:FALSE\n"),
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    issuer.leaf,
    "-CAkey",
    issuer.key,
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    ext,
    "-out",
    leaf,
  ], dir);
  // Served with its chain: the issuer's certificate too when the issuer is not the root.
  const cert = `${dir}/${name}.chain.crt`;
  const issuerChain = issuer.cert === issuer.leaf ? "" : await Deno.readTextFile(issuer.leaf);
  await Deno.writeTextFile(cert, (await Deno.readTextFile(leaf)) + issuerChain);
  return { cert, key, leaf };
}
