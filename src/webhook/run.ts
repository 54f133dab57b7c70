// Admission in the controller process: every replica serves the webhook (not only the leader), so
// a leader change never leaves opted-in pods unadmittable. Certificates come from our own CA kept
// in a Secret (default) or from mounted files (cert-manager).
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Options } from '../config/options.ts';
import type { Logger } from '../log.ts';
import type { ClusterState } from '../state/cluster.ts';
import { serviceDnsNames, startSelfSignedCertificates, watchCertificateFiles, type CertificateSource } from './certificates.ts';
import { startWebhookServer } from './server.ts';

export interface Admission {
  port: number;
  close(): Promise<void>;
}

/** The identity our pods' requests carry, which enforcement lets place pods on ipp nodes. */
export function controllerUsername(namespace: string, serviceAccount = process.env.IPP_SERVICE_ACCOUNT ?? 'ipp'): string {
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}

export async function startAdmission(opts: Options, kc: KubeConfig, state: ClusterState, logger: Logger): Promise<Admission> {
  const log = logger.child({ component: 'webhook' });
  let certs: CertificateSource;
  if (opts.webhookCertMode === 'files') {
    certs = await watchCertificateFiles({ certFile: join(opts.webhookCertDir, 'tls.crt'), keyFile: join(opts.webhookCertDir, 'tls.key'), logger: log });
  } else {
    const urlHost = opts.webhookUrl ? new URL(opts.webhookUrl).hostname : undefined;
    certs = await startSelfSignedCertificates({
      core: kc.makeApiClient(CoreV1Api),
      admission: kc.makeApiClient(AdmissionregistrationV1Api),
      namespace: opts.namespace,
      secretName: opts.webhookSecret,
      dnsNames: [...serviceDnsNames(opts.webhookService, opts.namespace), ...(urlHost && !isIP(urlHost) ? [urlHost] : [])],
      ipAddresses: urlHost && isIP(urlHost) ? [urlHost] : [],
      webhookConfigurations: [opts.webhookConfigName],
      logger: log,
    });
  }
  const server = await startWebhookServer({
    tls: certs.current(),
    port: opts.webhookPort,
    host: opts.webhookHost,
    placement: opts.placement,
    classes: { get: (name) => state.instanceClass(name) },
    nodes: { get: (name) => state.node(name) },
    controllerUsernames: [controllerUsername(opts.namespace), ...(process.env.IPP_CONTROLLER_USERNAMES?.split(',') ?? [])],
    logger: log,
  });
  certs.onChange((tls) => server.setSecureContext(tls));
  log.info({ port: server.port, certMode: opts.webhookCertMode }, 'admission webhook serving');
  return {
    port: server.port,
    async close() {
      await server.close();
      await certs.stop();
    },
  };
}
