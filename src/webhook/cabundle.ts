// Writing the CA bundle into the webhook configuration(s), self-signed mode. Replicas run this
// concurrently; one that read the Secret before another replica rotated the CA must not write the
// older bundle back over the newer one (the apiserver would then distrust the leaf in service).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';

/** The newest CA's notBefore in a PEM bundle (the first certificate is the current CA); 0 when unreadable. */
function newestCaTime(pem: string): number {
  try {
    return Math.max(
      0,
      ...x509.PemConverter.decode(pem).map((der) => new x509.X509Certificate(der).notBefore.getTime()),
    );
  } catch {
    return 0;
  }
}

/** Is `ours` older than the bundle already configured (so writing it would roll the CA back)? */
export function isOlderBundle(ours: string, configured: string): boolean {
  return newestCaTime(configured) > newestCaTime(ours);
}

export async function patchWebhookCaBundles(
  admission: AdmissionregistrationV1Api,
  names: readonly string[],
  bundle: string,
  log?: Logger,
): Promise<void> {
  const encoded = Buffer.from(bundle).toString('base64');
  for (const name of names) {
    try {
      const cfg = await admission.readMutatingWebhookConfiguration({ name });
      const stale = (cfg.webhooks ?? []).filter((w) => w.clientConfig.caBundle !== encoded);
      if (stale.length === 0) continue;
      const newer = stale.find((w) =>
        isOlderBundle(bundle, Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8')),
      );
      if (newer) {
        // Another replica rotated the CA after we read the Secret; our next resync adopts it.
        log?.info({ webhookConfiguration: name }, 'caBundle is newer than ours; leaving it');
        continue;
      }
      const ops = [
        // The configuration we judged is the one we patch: a newer bundle written meanwhile fails the test.
        { op: 'test', path: '/metadata/resourceVersion', value: cfg.metadata?.resourceVersion },
        ...(cfg.webhooks ?? []).flatMap((w, i) =>
          w.clientConfig.caBundle === encoded
            ? []
            : [
                // Guards against the list being reordered between our read and the patch.
                { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
                { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: encoded },
              ],
        ),
      ];
      await admission.patchMutatingWebhookConfiguration({ name, body: ops });
      log?.info({ webhookConfiguration: name }, 'patched caBundle');
    } catch (e) {
      // Not fatal: the chart may not have created it yet, or it changed under us; the next resync tries again.
      log?.warn({ webhookConfiguration: name, err: e }, 'could not patch caBundle');
    }
  }
}
