import crypto from 'node:crypto';

/**
 * A throwaway certificate authority and one server certificate for 127.0.0.1 / localhost, made
 * at runtime with node:crypto (no openssl binary). X.509 v3 per RFC 5280 §4.1, ECDSA P-256
 * with SHA-256; DER is written by the small encoder below.
 *
 *   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 */
export interface LoopbackTls {
  /** PEM of the CA certificate: what a client trusts (`--ca FILE`, `HOOPCTL_CA`). */
  caCert: string;
  /** PEM of the server certificate (SAN: 127.0.0.1, ::1, localhost and any `dnsNames`). */
  cert: string;
  /** PEM (PKCS#8) of the server certificate's private key. */
  key: string;
}

/** Makes a CA valid for `days` and a server certificate it signed; `dnsNames` are added to its names. */
export function createLoopbackTls(options: { name?: string; days?: number; dnsNames?: string[] } = {}): LoopbackTls {
  const name = options.name ?? 'hoopctl dev';
  const days = options.days ?? 2;
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + days * 86_400_000);
  const ca = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caName = distinguishedName(`${name} CA`);
  const caSpki = ca.publicKey.export({ type: 'spki', format: 'der' });
  const caKeyId = keyIdentifier(caSpki);

  const caCert = signCertificate({
    serial: crypto.randomBytes(8),
    issuer: caName,
    subject: caName,
    notBefore,
    notAfter,
    spki: caSpki,
    extensions: [
      extension(OID.basicConstraints, true, seq(bool(true))),
      extension(OID.keyUsage, true, bitString(Buffer.from([0x06]), 1)), // keyCertSign | cRLSign
      extension(OID.subjectKeyIdentifier, false, octets(caKeyId)),
    ],
    signer: ca.privateKey,
  });
  const leafSpki = leaf.publicKey.export({ type: 'spki', format: 'der' });
  const leafCert = signCertificate({
    serial: crypto.randomBytes(8),
    issuer: caName,
    subject: distinguishedName('127.0.0.1'),
    notBefore,
    notAfter,
    spki: leafSpki,
    extensions: [
      extension(OID.basicConstraints, true, seq()),
      extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)), // digitalSignature
      extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
      extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(leafSpki))),
      extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, caKeyId))),
      extension(
        OID.subjectAltName,
        false,
        seq(
          tlv(0x87, Buffer.from([127, 0, 0, 1])),
          tlv(0x87, Buffer.alloc(16, 0).fill(1, 15)),
          ...['localhost', ...(options.dnsNames ?? [])].map((dns) => tlv(0x82, Buffer.from(dns))),
        ),
      ),
    ],
    signer: ca.privateKey,
  });
  return {
    caCert: pem('CERTIFICATE', caCert),
    cert: pem('CERTIFICATE', leafCert),
    key: leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
} as const;

interface CertificateFields {
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: Buffer[];
  signer: crypto.KeyObject;
}

function signCertificate(f: CertificateFields): Buffer {
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))), // [0] version v3
    integer(f.serial),
    algorithm,
    f.issuer,
    seq(time(f.notBefore), time(f.notAfter)),
    f.subject,
    f.spki,
    tlv(0xa3, seq(...f.extensions)), // [3] extensions
  );
  const signature = crypto.sign('sha256', tbs, f.signer); // DER ECDSA-Sig-Value
  return seq(tbs, algorithm, bitString(signature, 0));
}

function distinguishedName(commonName: string): Buffer {
  return seq(tlv(0x31, seq(oid(OID.commonName), tlv(0x0c, Buffer.from(commonName, 'utf8')))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function keyIdentifier(spki: Buffer): Buffer {
  return crypto.createHash('sha1').update(spki).digest();
}

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else if (n < 0x100) length = Buffer.from([0x81, n]);
  else length = Buffer.from([0x82, n >> 8, n & 0xff]); // certificates here stay far below 64 KiB
  return Buffer.concat([Buffer.from([tag]), length, body]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const octets = (body: Buffer) => tlv(0x04, body);
const bool = (value: boolean) => tlv(0x01, Buffer.from([value ? 0xff : 0]));
const bitString = (body: Buffer, unusedBits: number) => tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), body]));

function integer(value: Buffer): Buffer {
  let bytes = value;
  while (bytes.length > 1 && bytes[0] === 0 && bytes[1]! < 0x80) bytes = bytes.subarray(1);
  if (bytes[0]! >= 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]); // stay positive
  return tlv(0x02, bytes);
}

function oid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) base128.unshift((v & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime (YYMMDDHHMMSSZ) until 2049, as RFC 5280 §4.1.2.5 requires. */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
