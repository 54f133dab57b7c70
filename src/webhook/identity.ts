// The controller's own username, as the apiserver will report it in AdmissionReview.userInfo. The
// enforcement rules let this identity place pods on ipp nodes (bind mode); asking the apiserver
// (SelfSubjectReview, no RBAC needed) avoids guessing the ServiceAccount name from configuration.
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';

export async function ownUsername(kc: KubeConfig): Promise<string> {
  const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  const username = review.status?.userInfo?.username;
  if (!username) throw new Error('SelfSubjectReview returned no username');
  return username;
}
