// Metrics decorator around any CloudProvider (after Karpenter's cloudprovider/metrics decorator):
// controllers get the same interface, and every provider is measured the same way without each
// implementation having to remember to.
import type { Metrics } from '../src/metrics/metrics.ts';
import { errorKind } from './errors.ts';
import type { CloudProvider } from './types.ts';

type Operation = 'create' | 'delete' | 'get' | 'list' | 'find' | 'stalled';

export function instrumentProvider(provider: CloudProvider, metrics: Metrics): CloudProvider {
  const measured =
    <A extends unknown[], R>(operation: Operation, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const labels = { provider: provider.name, operation };
      const end = metrics.providerCallDuration.startTimer(labels);
      try {
        const result = await call.apply(provider, args);
        metrics.providerCalls.inc({ ...labels, error: '' });
        return result;
      } catch (e) {
        metrics.providerCalls.inc({ ...labels, error: errorKind(e) });
        throw e;
      } finally {
        end();
      }
    };

  const wrapped: CloudProvider = {
    name: provider.name,
    create: measured('create', provider.create),
    delete: measured('delete', provider.delete),
    get: measured('get', provider.get),
    list: measured('list', provider.list),
    capacity: (instanceType, cls) => provider.capacity(instanceType, cls),
    validate: (cls) => provider.validate(cls),
  };
  const find = provider.findByInstance;
  if (find) wrapped.findByInstance = measured('find', find);
  const stalled = provider.stalled;
  if (stalled) wrapped.stalled = measured('stalled', stalled);
  const run = provider.run;
  if (run) wrapped.run = (signal) => run.call(provider, signal);
  return wrapped;
}
