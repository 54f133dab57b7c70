// Serving certificates from files (cert-manager mode): the chart mounts the Certificate's Secret and
// cainjector fills caBundle; the controller only reloads the files when kubelet swaps them.
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../log.ts';
import type { CertificateSource } from './certificates.ts';
import type { ServingCertificate } from './server.ts';

export interface FileCertificateOptions {
  certFile: string;
  keyFile: string;
  /** Polling backs up fs.watch, which misses kubelet's symlink swaps on some filesystems. Default 10 s. */
  pollMs?: number;
  logger?: Logger;
}

async function readPair(o: FileCertificateOptions): Promise<ServingCertificate & { cert: string; key: string }> {
  const [cert, key] = await Promise.all([readFile(o.certFile, 'utf8'), readFile(o.keyFile, 'utf8')]);
  createSecureContext({ cert, key }); // a half-updated pair throws here and is retried later
  return { cert, key };
}

/** Resolves with the mounted certificate; rejects when the files are missing or do not match. */
export async function watchCertificateFiles(opts: FileCertificateOptions): Promise<CertificateSource> {
  const log = opts.logger?.child({ component: 'webhook-certs', certFile: opts.certFile });
  let current = await readPair(opts);
  const listeners: ((t: ServingCertificate) => void)[] = [];
  let checking = false;
  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      const next = await readPair(opts);
      if (next.cert !== current.cert || next.key !== current.key) {
        current = next;
        log?.info('serving certificate files changed; reloaded');
        for (const l of listeners) l(next);
      }
    } catch (e) {
      log?.debug({ err: e }, 'certificate files not readable as a pair yet');
    } finally {
      checking = false;
    }
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(opts.certFile), dirname(opts.keyFile)])) {
    try {
      const w = watch(dir, () => void check());
      w.on('error', () => {});
      watchers.push(w);
    } catch {
      // polling below still notices changes
    }
  }
  const timer = setInterval(() => void check(), opts.pollMs ?? 10_000);
  timer.unref();
  return {
    current: () => current,
    onChange: (l) => {
      listeners.push(l);
    },
    stop: async () => {
      clearInterval(timer);
      for (const w of watchers) w.close();
    },
  };
}
