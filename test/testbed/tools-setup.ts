// vitest globalSetup for the unit project: installs helm and promtool on first use, before any test
// starts, so a cold machine spends that time here (with progress output) rather than inside a hook.
import { ensureHelm } from './helm.ts';
import { ensurePromtool } from './promtool.ts';

export default function setup(): void {
  ensureHelm();
  ensurePromtool();
}
