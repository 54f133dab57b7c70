// Serving certificates for the webhook, in two modes.
//
// self-signed (default): every replica runs the same loop against one Secret. Whoever finds it
// missing, empty or due for renewal writes new material with the resourceVersion it read; the
// losers of that race re-read and adopt the winner's, so all replicas converge on one CA. The CA
// bundle (current CA + the previous one during a CA rotation) is patched into the webhook
// configuration(s), and certificates are renewed after two thirds of their lifetime, hot-swapped
// into the server through setSecureContext.
//
// files (cert-manager): the chart mounts the Certificate's Secret; cainjector fills caBundle. The
// controller only reloads the files when kubelet swaps them.
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API
// loaded before it (ESM evaluates imports in order).
import 'reflect-metadata';
import { createSecureContext } from 'node:tls';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { AdmissionregistrationV1Api, CoreV1Api, V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.ts';
import type { ServingCertificate } from './server.ts';
import { patchWebhookCaBundles } from './cabundle.ts';

type CryptoKey = webcrypto.CryptoKey;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY = 24 * 60 * 60 * 1000;
/** Tolerates clocks of other machines (the apiserver's) that run behind ours. */
const BACKDATE_MS = 60 * 60 * 1000;

export const SECRET_KEYS = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

export interface CertificateSource {
  /** The serving certificate now in force. */
  current(): ServingCertificate;
  /** Called after the serving certificate changed (rotation, another replica's write, new files). */
  onChange(listener: (tls: ServingCertificate) => void): void;
  stop(): Promise<void>;
}

/** DNS names the apiserver uses for a Service-backed webhook (it dials `<svc>.<ns>.svc`). */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

// ---------------------------------------------------------------------------------------------
// Pure-ish material: generate, parse, decide.

export interface Material {
  /** PEM; the current CA first, then a previous CA kept trusted during a CA rotation. */
  caBundle: string;
  caKey: string;
  cert: string;
  key: string;
}

export interface Lifetimes {
  caValidityMs: number;
  certValidityMs: number;
}
export const DEFAULT_LIFETIMES: Lifetimes = { caValidityMs: 10 * 365 * DAY, certValidityMs: 365 * DAY };

export interface Want {
  dnsNames: string[];
  ipAddresses: string[];
}

const serial = () => {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive INTEGER
  return b.toString('hex');
};

async function keyToPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importSigningKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('no PEM block');
  return webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
}

async function newCa(now: Date, lt: Lifetimes): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=ipp-webhook-ca@${Math.floor(now.getTime() / 1000)}`,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + lt.caValidityMs),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, key: keys.privateKey };
}

async function newLeaf(
  ca: x509.X509Certificate,
  caKey: CryptoKey,
  want: Want,
  now: Date,
  lt: Lifetimes,
): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  // Never outlive the issuer: a leaf valid past its CA would fail verification before its renewal.
  const notAfter = new Date(Math.min(now.getTime() + lt.certValidityMs, ca.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${want.dnsNames[0] ?? want.ipAddresses[0] ?? 'ipp-webhook'}`,
    issuer: ca.subject,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...want.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...want.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyToPem(keys.privateKey) };
}

export function splitPem(bundle: string): x509.X509Certificate[] {
  const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new x509.X509Certificate(b));
}

function sans(cert: x509.X509Certificate): { dns: string[]; ip: string[] } {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = ext?.names.items ?? [];
  return {
    dns: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ip: names.filter((n) => n.type === 'ip').map((n) => n.value),
  };
}

const dueForRenewal = (c: x509.X509Certificate, now: Date, validityMs: number) =>
  c.notAfter.getTime() - now.getTime() < validityMs / 3;

/**
 * Decides from what a Secret holds (possibly nothing, possibly garbage a human left there) whether
 * new material is needed, and makes it. Returns undefined when the stored material is fine as is.
 */
export async function renewIfNeeded(
  stored: Partial<Material> | undefined,
  want: Want,
  now: Date,
  lt: Lifetimes = DEFAULT_LIFETIMES,
): Promise<Material | undefined> {
  let cas: x509.X509Certificate[];
  let caKey: CryptoKey | undefined;
  try {
    cas = splitPem(stored?.caBundle ?? '');
    caKey = stored?.caKey ? await importSigningKey(stored.caKey) : undefined;
  } catch {
    cas = [];
  }
  const currentCa = cas[0];
  let caUsable = !!currentCa && !!caKey && now < currentCa.notAfter;
  if (caUsable && currentCa && caKey) {
    // The stored key must be the CA's: sign-and-verify is the only check that needs no ASN.1.
    const probe = new Uint8Array([1, 2, 3]);
    const sig = await webcrypto.subtle.sign(ALG, caKey, probe);
    caUsable = await webcrypto.subtle.verify(ALG, await currentCa.publicKey.export(ALG, ['verify']), sig, probe);
  }

  let leafOk = false;
  if (caUsable && stored?.cert && stored.key) {
    try {
      const leaf = new x509.X509Certificate(stored.cert);
      createSecureContext({ cert: stored.cert, key: stored.key }); // throws when key and cert do not match
      const s = sans(leaf);
      const trusted = await Promise.any(
        cas.map(async (ca) => {
          if (now >= ca.notAfter || !(await leaf.verify({ publicKey: ca.publicKey, signatureOnly: true })))
            throw new Error('untrusted');
          return true;
        }),
      ).catch(() => false);
      leafOk =
        trusted &&
        !dueForRenewal(leaf, now, lt.certValidityMs) &&
        now >= leaf.notBefore &&
        want.dnsNames.every((d) => s.dns.includes(d)) &&
        want.ipAddresses.every((i) => s.ip.includes(i));
    } catch {
      leafOk = false;
    }
  }
  const caDue = !caUsable || (currentCa !== undefined && dueForRenewal(currentCa, now, lt.caValidityMs));
  if (leafOk && !caDue) return undefined;

  if (caDue) {
    const ca = await newCa(now, lt);
    const previous = caUsable && currentCa ? [currentCa.toString('pem')] : [];
    const caBundle = [ca.cert.toString('pem'), ...previous].join('\n');
    // The old leaf stays in service while the bundle with the new CA propagates; it is signed by a CA
    // the bundle still holds. A leaf that must be replaced anyway is signed by the new CA right away.
    const leaf =
      leafOk && stored?.cert && stored.key
        ? { cert: stored.cert, key: stored.key }
        : await newLeaf(ca.cert, ca.key, want, now, lt);
    return { caBundle, caKey: await keyToPem(ca.key), cert: leaf.cert, key: leaf.key };
  }
  const leaf = await newLeaf(currentCa as x509.X509Certificate, caKey as CryptoKey, want, now, lt);
  return { caBundle: stored?.caBundle ?? '', caKey: stored?.caKey ?? '', ...leaf };
}

// ---------------------------------------------------------------------------------------------
// self-signed mode: the Secret and the caBundle.

export interface SelfSignedOptions {
  core: CoreV1Api;
  admission: AdmissionregistrationV1Api;
  namespace: string;
  secretName: string;
  /** SANs; for a Service use serviceDnsNames(). */
  dnsNames: string[];
  /** Extra IP SANs, for a webhook reached by URL (out-of-cluster tests). */
  ipAddresses?: string[];
  /** MutatingWebhookConfigurations whose every webhook gets the CA bundle. */
  webhookConfigurations: string[];
  lifetimes?: Partial<Lifetimes>;
  /** How often to re-read the Secret and re-check the bundle (another replica may have rotated). Default 5 min. */
  resyncMs?: number;
  logger?: Logger;
  now?: () => Date;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : undefined);

function materialOf(secret: V1Secret | undefined): Partial<Material> | undefined {
  const d = secret?.data;
  if (!d) return undefined;
  return {
    caBundle: unb64(d[SECRET_KEYS.caCert]),
    caKey: unb64(d[SECRET_KEYS.caKey]),
    cert: unb64(d[SECRET_KEYS.cert]),
    key: unb64(d[SECRET_KEYS.key]),
  };
}

/**
 * Starts the self-signed loop: resolves once this replica holds a serving certificate that is in
 * the Secret (its own or another replica's). Rejects if the Secret cannot be read or written (RBAC).
 */
export async function startSelfSignedCertificates(
  opts: SelfSignedOptions,
): Promise<CertificateSource & { caBundle(): string; resync(): Promise<void> }> {
  const log = opts.logger?.child({ component: 'webhook-certs', secret: `${opts.namespace}/${opts.secretName}` });
  const lt: Lifetimes = { ...DEFAULT_LIFETIMES, ...opts.lifetimes };
  const want: Want = { dnsNames: opts.dnsNames, ipAddresses: opts.ipAddresses ?? [] };
  const now = opts.now ?? (() => new Date());
  const listeners: ((t: ServingCertificate) => void)[] = [];
  let material: Material | undefined;

  async function converge(): Promise<Material> {
    for (let attempt = 0; attempt < 10; attempt++) {
      let secret: V1Secret | undefined;
      try {
        secret = await opts.core.readNamespacedSecret({ name: opts.secretName, namespace: opts.namespace });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      const stored = materialOf(secret);
      const next = await renewIfNeeded(stored, want, now(), lt);
      if (!next) return stored as Material;
      const data = {
        ...secret?.data,
        [SECRET_KEYS.caCert]: b64(next.caBundle),
        [SECRET_KEYS.caKey]: b64(next.caKey),
        [SECRET_KEYS.cert]: b64(next.cert),
        [SECRET_KEYS.key]: b64(next.key),
      };
      try {
        if (!secret) {
          await opts.core.createNamespacedSecret({
            namespace: opts.namespace,
            body: {
              metadata: { name: opts.secretName, labels: { 'app.kubernetes.io/managed-by': 'ipp' } },
              type: 'Opaque',
              data,
            },
          });
        } else {
          // resourceVersion from the read makes this a compare-and-swap: a concurrent writer wins, we re-read.
          await opts.core.replaceNamespacedSecret({
            name: opts.secretName,
            namespace: opts.namespace,
            body: { ...secret, data },
          });
        }
        log?.info({ renewedCa: next.caKey !== stored?.caKey }, 'wrote webhook serving certificate');
        return next;
      } catch (e) {
        if (isAlreadyExists(e) || isConflict(e)) {
          log?.debug('another replica wrote the Secret first; adopting its certificate');
          continue;
        }
        throw e;
      }
    }
    throw new Error(`could not converge on Secret ${opts.namespace}/${opts.secretName} after 10 attempts`);
  }

  const patchCaBundles = (bundle: string) =>
    patchWebhookCaBundles(opts.admission, opts.webhookConfigurations, bundle, log);

  async function sync(): Promise<void> {
    const next = await converge();
    const changed = !material || material.cert !== next.cert || material.key !== next.key;
    // Bundle first: a new CA must be trusted before anyone serves a leaf it signed.
    await patchCaBundles(next.caBundle);
    material = next;
    if (changed) for (const l of listeners) l({ cert: next.cert, key: next.key });
  }

  await sync();
  const resyncMs = opts.resyncMs ?? 5 * 60 * 1000;
  // One sync at a time; a failed one is logged and never blocks the next.
  let running: Promise<void> = Promise.resolve();
  const enqueue = () => {
    const next = running.then(sync);
    running = next.catch((e: unknown) => log?.warn({ err: e }, 'certificate resync failed; serving the current one'));
    return next;
  };
  const timer = setInterval(() => void enqueue().catch(() => {}), resyncMs);
  timer.unref();

  return {
    current: () => ({ cert: (material as Material).cert, key: (material as Material).key }),
    caBundle: () => (material as Material).caBundle,
    onChange: (l) => {
      listeners.push(l);
    },
    resync: enqueue,
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

export { watchCertificateFiles, type FileCertificateOptions } from './certificate-files.ts';
