// The renewal decisions of the self-signed mode, and the file reload of the cert-manager mode.
// The Secret/caBundle loop itself runs against the real apiserver in test/e2e/webhook.test.ts.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LIFETIMES,
  renewIfNeeded,
  serviceDnsNames,
  splitPem,
  watchCertificateFiles,
  type Material,
} from '../../../src/webhook/certificates.ts';

const DAY = 86_400_000;
const want = { dnsNames: serviceDnsNames('ipp-webhook', 'ipp-system'), ipAddresses: ['127.0.0.1'] };
const t0 = new Date('2030-01-01T00:00:00Z');
const at = (days: number) => new Date(t0.getTime() + days * DAY);
const fresh = async () => (await renewIfNeeded(undefined, want, t0))!;
const caOf = (m: Material) => new X509Certificate(splitPem(m.caBundle)[0]!.toString('pem'));

describe('renewIfNeeded', () => {
  it('creates a CA and a serving certificate for the Service names and IPs, signed by that CA', async () => {
    const m = await fresh();
    const leaf = new X509Certificate(m.cert);
    const ca = caOf(m);
    expect(leaf.subjectAltName).toBe(
      'DNS:ipp-webhook.ipp-system.svc, DNS:ipp-webhook.ipp-system.svc.cluster.local, IP Address:127.0.0.1',
    );
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(m.key))).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(ca.ca).toBe(true);
    expect(new Date(leaf.validTo).getTime()).toBe(t0.getTime() + DEFAULT_LIFETIMES.certValidityMs);
    expect(new Date(leaf.validFrom).getTime()).toBeLessThan(t0.getTime()); // backdated for clock skew
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // extended key usage: serverAuth only
  });

  it('keeps good material as it is', async () => {
    const m = await fresh();
    expect(await renewIfNeeded(m, want, at(200))).toBeUndefined();
  });

  it('renews the serving certificate after two thirds of its life, with the same CA', async () => {
    const m = await fresh();
    const next = (await renewIfNeeded(m, want, at(250)))!;
    expect(next.caBundle).toBe(m.caBundle);
    expect(next.caKey).toBe(m.caKey);
    expect(next.cert).not.toBe(m.cert);
    expect(new X509Certificate(next.cert).verify(caOf(m).publicKey)).toBe(true);
  });

  it('renews when the wanted names change (Service renamed, IP added)', async () => {
    const m = await fresh();
    const next = (await renewIfNeeded(m, { ...want, dnsNames: ['other.ns.svc'] }, at(1)))!;
    expect(new X509Certificate(next.cert).subjectAltName).toContain('DNS:other.ns.svc');
    expect(next.caBundle).toBe(m.caBundle);
  });

  it('rotates the CA late in its life and keeps trusting the previous one; the old leaf stays in service meanwhile', async () => {
    const lt = { caValidityMs: 30 * DAY, certValidityMs: 9 * DAY };
    const m = (await renewIfNeeded(undefined, want, t0, lt))!;
    const rotated = (await renewIfNeeded(m, want, at(21), lt))!;
    const bundle = splitPem(rotated.caBundle);
    expect(bundle).toHaveLength(2);
    expect(bundle[1]!.toString('pem').trim()).toBe(splitPem(m.caBundle)[0]!.toString('pem').trim());
    expect(rotated.caKey).not.toBe(m.caKey);
    // at day 21 a 9-day leaf from day 0 is expired → replaced, signed by the new CA
    expect(new X509Certificate(rotated.cert).verify(caOf(rotated).publicKey)).toBe(true);

    const young = await renewIfNeeded({ ...m, ...(await renewIfNeeded(m, want, at(19), lt))! }, want, at(19), lt);
    expect(young).toBeUndefined(); // leaf renewed at day 19 is fine; CA not due until day 20
    const leaf19 = (await renewIfNeeded(m, want, at(19), lt))!;
    const caDue = (await renewIfNeeded(leaf19, want, at(21), lt))!;
    expect(caDue.cert).toBe(leaf19.cert); // still valid, signed by the previous CA, which the bundle keeps
    expect(splitPem(caDue.caBundle)).toHaveLength(2);
    // and once that leaf is due, its successor comes from the new CA
    const later = (await renewIfNeeded(caDue, want, at(26), lt))!; // leaf19 ends day 28: due after day 25
    expect(new X509Certificate(later.cert).verify(caOf(caDue).publicKey)).toBe(true);
  });

  it('never issues a leaf that outlives its CA', async () => {
    const m = (await renewIfNeeded(undefined, want, t0, { caValidityMs: 3 * DAY, certValidityMs: 30 * DAY }))!;
    expect(new X509Certificate(m.cert).validTo).toBe(caOf(m).validTo);
  });

  it.each<[string, (m: Material, other: Material) => Partial<Material>]>([
    ['an empty Secret', () => ({})],
    ['garbage', () => ({ caBundle: 'hello', caKey: 'world', cert: 'x', key: 'y' })],
    ["a CA key that is not the CA's", (m) => ({ ...m, caKey: m.key })],
    ['a serving key that does not match the certificate', (m) => ({ ...m, key: m.caKey })],
    ['a leaf from another CA', (m, other) => ({ ...m, cert: other.cert, key: other.key })],
  ])('starts over from %s', async (_what, spoil) => {
    const m = await fresh();
    const other = await fresh();
    const broken = spoil(m, other);
    const next = await renewIfNeeded(broken, want, at(1));
    if (!next) throw new Error('kept broken material');
    const leaf = new X509Certificate(next.cert);
    expect(leaf.checkPrivateKey(createPrivateKey(next.key))).toBe(true);
    expect(splitPem(next.caBundle).some((ca) => leaf.verify(new X509Certificate(ca.toString('pem')).publicKey))).toBe(
      true,
    );
  });
});

describe('watchCertificateFiles (cert-manager mode)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipp-certs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Like kubelet's Secret volumes: files are symlinks into a ..data directory that is swapped atomically.
  function publish(m: Material, generation: number): void {
    const gen = join(dir, `..gen${generation}`);
    mkdirSync(gen);
    writeFileSync(join(gen, 'tls.crt'), m.cert);
    writeFileSync(join(gen, 'tls.key'), m.key);
    symlinkSync(`..gen${generation}`, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  }

  it('loads the mounted pair and reloads it when kubelet swaps the files', async () => {
    const a = await fresh();
    publish(a, 1);
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls.key'));
    const src = await watchCertificateFiles({
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      pollMs: 50,
    });
    try {
      expect(src.current().cert).toBe(a.cert);
      const seen: string[] = [];
      src.onChange((t) => seen.push(String(t.cert)));
      const b = await fresh();
      publish(b, 2);
      await expect.poll(() => seen, { timeout: 3000 }).toEqual([b.cert]);
      expect(src.current().key).toBe(b.key);
      // A half-written pair (cert without its key) is not loaded; the last good pair stays.
      writeFileSync(join(dir, '..gen2', 'tls.crt'), a.cert);
      await new Promise((r) => setTimeout(r, 300));
      expect(src.current().cert).toBe(b.cert);
    } finally {
      await src.stop();
    }
  });

  it('refuses to start on missing or mismatched files', async () => {
    await expect(
      watchCertificateFiles({ certFile: join(dir, 'nope.crt'), keyFile: join(dir, 'nope.key') }),
    ).rejects.toThrow();
    const a = await fresh();
    writeFileSync(join(dir, 'bad.crt'), a.cert);
    writeFileSync(join(dir, 'bad.key'), a.caKey);
    await expect(
      watchCertificateFiles({ certFile: join(dir, 'bad.crt'), keyFile: join(dir, 'bad.key') }),
    ).rejects.toThrow();
  });
});
