// The Events of the node identity check: a Node that carries ipp labels without being an Instance's node.
import type { Instance } from '../../api/types.ts';
import { instanceRef, type IppEvent } from '../../kube/event.ts';

const nodeRef = (node: string) => ({ apiVersion: 'v1', kind: 'Node', name: node });

/** Same reason as the Instance controller's check of a matched node's labels: one alert covers both. */
export const NODE_LABELS_TAMPERED = 'NodeLabelsTampered';

export const impostorNode = (node: string, why: string, claimed?: Instance): IppEvent[] => {
  const note = `node ${node} is not the node of any Instance: ${why}; cordoned, and ipp never places a pod on it (it pins by node name after matching providerIDs). Its kubelet may be compromised: drain it and investigate`;
  return [
    {
      regarding: nodeRef(node),
      type: 'Warning',
      reason: NODE_LABELS_TAMPERED,
      action: 'Verify',
      note,
    },
    ...(claimed
      ? [
          {
            regarding: instanceRef(claimed),
            type: 'Warning' as const,
            reason: NODE_LABELS_TAMPERED,
            action: 'Verify',
            note,
          },
        ]
      : []),
  ];
};

/** A node ipp quarantined proved to be its Instance's after all: its cordon is lifted. */
export const identityConfirmed = (node: string, inst: Instance): IppEvent => ({
  regarding: nodeRef(node),
  type: 'Normal',
  reason: 'NodeIdentityConfirmed',
  action: 'Verify',
  note: `node ${node} is the node of Instance ${inst.metadata.name} (providerID ${inst.status?.providerID}), recorded after the node was quarantined; uncordoned`,
});
