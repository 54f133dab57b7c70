// Facts about an InstanceClass that the controllers, the webhook and the providers must agree on:
// which provider it uses, whether a namespace may use it, and whether it can be used at all.
import type { V1Toleration } from '@kubernetes/client-node';
import { TAINT_KEY } from './names.ts';
import type { InstanceClass } from './types.ts';

/** Provider names, in the order a class's settings blocks are looked for (spec.<name>). */
export const PROVIDER_NAMES = ['simulated', 'aws', 'gce'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** How a pod reaches its node: the scheduler binds after ipp pins it, or ipp binds it itself. */
export type PlacementMode = 'pin' | 'bind';

/** CPU in millicores, memory in bytes, pods as a count: what the scheduler counts. */
export interface Resources {
  cpu: number;
  memory: number;
  pods: number;
  /** Every other resource, in its base unit: ephemeral-storage, hugepages-2Mi, nvidia.com/gpu, … */
  other?: Record<string, number>;
}

/** Which provider a class uses: the one whose settings block it sets. */
export function providerName(cls: InstanceClass): ProviderName | undefined {
  return PROVIDER_NAMES.find((p) => cls.spec[p] !== undefined);
}

/**
 * May pods of `namespace` use the class? Only namespaces listed in spec.namespaces, or every one for
 * `"*"`. A class without the list (stored before the CRD required it) is closed, not open.
 */
export const namespaceAllowed = (cls: InstanceClass, namespace: string) =>
  (cls.spec.namespaces ?? []).some((n) => n === '*' || n === namespace);

/** What a class needs of its provider to be usable: settings it accepts. */
export interface ClassValidator {
  validate(cls: InstanceClass): string[];
}

export interface ClassProblem {
  reason: 'UnknownClass' | 'InvalidClass';
  message: string;
}

export type Usability<P> = { usable: true; cls: InstanceClass; provider: P } | ({ usable: false } & ClassProblem);

/**
 * Can pods of class `className` be provisioned? Usable means the class exists, names a provider this
 * controller runs, and that provider accepts its settings; the answer carries both, narrowed.
 */
export function usability<P extends ClassValidator>(
  cls: InstanceClass | undefined,
  className: string,
  providers: ReadonlyMap<string, P>,
): Usability<P> {
  if (!cls) {
    return {
      usable: false,
      reason: 'UnknownClass',
      message: `InstanceClass "${className}" does not exist; create it (kubectl get instanceclasses) or fix the pod's ipp-class label`,
    };
  }
  const name = providerName(cls);
  const provider = name ? providers.get(name) : undefined;
  if (!provider) {
    return {
      usable: false,
      reason: 'InvalidClass',
      message: name
        ? `InstanceClass "${className}" uses provider "${name}", which this controller does not run (--providers)`
        : `InstanceClass "${className}" sets no provider block; set one of spec.${PROVIDER_NAMES.join(', spec.')}`,
    };
  }
  const problems = provider.validate(cls);
  if (problems.length) {
    return {
      usable: false,
      reason: 'InvalidClass',
      message: `InstanceClass "${className}" is invalid: ${problems.join('; ')}`,
    };
  }
  return { usable: true, cls, provider };
}

/** The toleration of the class's NoSchedule taint, which keeps the scheduler's other pods off its nodes. */
export function classToleration(cls: string): V1Toleration {
  return { key: TAINT_KEY, operator: 'Equal', value: cls, effect: 'NoSchedule' };
}

/**
 * ipp nodes also carry `ipp.dev/class=<class>:NoExecute`: the kubelet enforces only NoExecute taints
 * on pods that reach it bound already (spec.nodeName), so this taint keeps every other pod off the
 * node even if admission was bypassed. The class's own pods tolerate it.
 */
export function classNoExecuteToleration(cls: string): V1Toleration {
  return { key: TAINT_KEY, operator: 'Equal', value: cls, effect: 'NoExecute' };
}
