// A kubeconfig for the API client's tests: one cluster, one bearer token.

/** Its YAML text. `ca` is put in as given (base64'd): a real PEM where TLS is verified, any text where not. */
export const kubeconfigText = (o: { server?: string; ca?: string; token?: string } = {}): string => {
  const ca = o.ca === undefined ? '' : `, certificate-authority-data: ${Buffer.from(o.ca).toString('base64')}`;
  return `
apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: '${o.server ?? 'https://127.0.0.1:6443'}'${ca} } }]
users: [{ name: u, user: { token: ${o.token ?? 'secret'} } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`;
};
