// The host isolation a group's VMs obtain, read from its instance template (the node pool's):
// a `-metal` machine type has no hypervisor (BareMetal); a template with sole-tenant node affinity
// runs on hosts reserved for the project (DedicatedHardware); threadsPerCore 1 turns SMT off;
// enableNestedVirtualization lets the VM run VMs itself (bare metal always can).
import type { protos } from '@google-cloud/compute';
import type { HostIsolation } from '../../src/api/types.ts';

type TemplateProperties = protos.google.cloud.compute.v1.IInstanceProperties;

const SOLE_TENANT_KEYS = ['compute.googleapis.com/node-group-name', 'compute.googleapis.com/node-name'];

export function templateIsolation(machineType: string, props: TemplateProperties | null | undefined): HostIsolation {
  const metal = machineType.endsWith('-metal');
  const soleTenant = (props?.scheduling?.nodeAffinities ?? []).some(
    (a) => SOLE_TENANT_KEYS.includes(a.key ?? '') && (a.operator ?? 'IN') === 'IN',
  );
  const features = props?.advancedMachineFeatures;
  return {
    level: metal ? 'BareMetal' : soleTenant ? 'DedicatedHardware' : 'VM',
    smt: !metal && features?.threadsPerCore === 1 ? 'Off' : 'On',
    nestedVirtualization: metal || features?.enableNestedVirtualization === true,
  };
}
