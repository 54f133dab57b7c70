// `npm run bench`: runs every benchmark (or those named: `npm run bench -- aws`), with flags for
// those that take them (`npm run bench -- burst --sizes=1,10`). Benchmarks print measurements; they
// are not tests and assert only that what they measured is meaningful.
import { benchAws } from './aws.ts';
import { benchBurst } from './burst-bench.ts';
import { benchGce } from './gce.ts';
import { benchPlacement } from './placement.ts';
import { benchMemory, benchWorld } from './scale.ts';
import { benchWarm } from './warm.ts';

const benches: Record<string, (flags: Record<string, string>) => Promise<void>> = {
  aws: benchAws,
  gce: benchGce,
  memory: benchMemory,
  world: benchWorld,
  warm: benchWarm,
  burst: benchBurst,
  placement: benchPlacement,
};

const args = process.argv.slice(2);
const flags = Object.fromEntries(
  args
    .filter((a) => a.startsWith('--'))
    .map((a) => {
      const eq = a.indexOf('=');
      return eq < 0 ? [a.slice(2), 'true'] : [a.slice(2, eq), a.slice(eq + 1)];
    }),
);
const wanted = args.filter((a) => !a.startsWith('--'));
for (const name of wanted.length ? wanted : Object.keys(benches)) {
  const bench = benches[name];
  if (!bench) throw new Error(`unknown bench ${name}; known: ${Object.keys(benches).join(', ')}`);
  await bench(flags);
}
