// `npm run bench`: runs every benchmark (or those named: `npm run bench -- aws`). Benchmarks print
// measurements; they are not tests and assert only that what they measured is meaningful.
import { benchAws } from './aws.ts';
import { benchGce } from './gce.ts';
import { benchMemory, benchWorld } from './scale.ts';
import { benchWarm } from './warm.ts';

const benches: Record<string, () => Promise<void>> = {
  aws: benchAws,
  gce: benchGce,
  memory: benchMemory,
  world: benchWorld,
  warm: benchWarm,
};

const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(benches)) {
  const bench = benches[name];
  if (!bench) throw new Error(`unknown bench ${name}; known: ${Object.keys(benches).join(', ')}`);
  await bench();
}
