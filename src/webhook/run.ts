// Admission in the controller process: every replica serves the webhook (not only the leader), so
// a leader change never leaves opted-in pods unadmittable. Certificates come from our own CA kept
// in a Secret (default) or from mounted files (cert-manager).
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/names.ts';
import type { InstanceClass } from '../api/types.ts';
import { isNotFound } from '../kube/errors.ts';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Options } from '../config/options.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { ClusterState } from '../state/cluster.ts';
import {
  serviceDnsNames,
  startSelfSignedCertificates,
  watchCertificateFiles,
  type CertificateSource,
} from './certificates.ts';
import { ownUsername } from './identity.ts';
import { startWebhookServer } from './server.ts';

export interface Admission {
  port: number;
  close(): Promise<void>;
}

export async function startAdmission(
  opts: Options,
  kc: KubeConfig,
  state: ClusterState,
  logger: Logger,
  metrics?: Metrics,
): Promise<Admission> {
  const log = logger.child({ component: 'webhook' });
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  let certs: CertificateSource;
  if (opts.webhookCertMode === 'files') {
    certs = await watchCertificateFiles({
      certFile: join(opts.webhookCertDir, 'tls.crt'),
      keyFile: join(opts.webhookCertDir, 'tls.key'),
      logger: log,
    });
  } else {
    const urlHost = opts.webhookUrl ? new URL(opts.webhookUrl).hostname : undefined;
    certs = await startSelfSignedCertificates({
      core,
      admission: kc.makeApiClient(AdmissionregistrationV1Api),
      namespace: opts.namespace,
      secretName: opts.webhookSecret,
      dnsNames: [
        ...serviceDnsNames(opts.webhookService, opts.namespace),
        ...(urlHost && !isIP(urlHost) ? [urlHost] : []),
      ],
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
    classes: {
      get: (name) => state.instanceClass(name),
      fetch: async (name) => {
        try {
          return (await custom.getClusterCustomObject({
            group: GROUP,
            version: VERSION,
            plural: 'instanceclasses',
            name,
          })) as InstanceClass;
        } catch (e) {
          if (isNotFound(e)) return undefined;
          throw e;
        }
      },
    },
    nodes: {
      get: (name) => state.node(name),
      fetch: async (name) => {
        try {
          return await core.readNode({ name });
        } catch (e) {
          if (isNotFound(e)) return undefined;
          throw e;
        }
      },
    },
    trust: { daemonSetNamespaces: opts.trustedDaemonSetNamespaces },
    pods: { get: (namespace, name) => state.pods.get(name, namespace) },
    instances: { get: (name) => state.instance(name) },
    // Enforcement lets exactly our own identity bind pods to ipp nodes (bind mode).
    controllerUsernames: [await ownUsername(kc)],
    logger: log,
    metrics,
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
