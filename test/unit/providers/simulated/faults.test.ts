import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InsufficientCapacityError, ThrottledError } from '../../../../providers/errors.ts';
import { SimulatedFaults, SimulatedServerError, type FaultWindow } from '../../../../providers/simulated/faults.ts';

const file = (windows: FaultWindow[] | string) => {
  const path = join(mkdtempSync(join(tmpdir(), 'ipp-faults-')), 'faults.json');
  writeFileSync(path, typeof windows === 'string' ? windows : JSON.stringify({ windows }));
  return path;
};
const later = () => Date.now() + 60_000;
const fired = (path: string) => readFileSync(`${path}.fired`, 'utf8').trim().split('\n');

describe('simulated cloud faults (chaos runs)', () => {
  it('injects nothing without a file, with a broken file, or once every window closed', async () => {
    for (const path of [
      join(tmpdir(), 'no-such-ipp-faults.json'),
      file('{"windows": ['),
      file([{ kind: 'throttle', until: Date.now() - 1 }]),
    ]) {
      const faults = new SimulatedFaults(path);
      expect(await faults.around('list', async () => 'ok')).toBe('ok');
      expect(() => faults.checkCapacity({ instanceType: 'sim.small', zone: 'sim-zone-a' })).not.toThrow();
    }
  });

  it('throttles, or answers 5xx before the call, without making the call', async () => {
    for (const [kind, error] of [
      ['throttle', ThrottledError],
      ['error', SimulatedServerError],
    ] as const) {
      const path = file([{ kind, until: later() }]);
      let called = false;
      const call = new SimulatedFaults(path).around('create', async () => (called = true));
      await expect(call).rejects.toBeInstanceOf(error);
      expect(called).toBe(false);
      expect(fired(path)).toEqual([`${kind} create`]);
    }
  });

  it('answers 5xx after the call took effect, so the caller cannot know that it did', async () => {
    const path = file([{ kind: 'error', until: later(), afterEffect: true }]);
    let called = false;
    await expect(new SimulatedFaults(path).around('delete', async () => (called = true))).rejects.toBeInstanceOf(
      SimulatedServerError,
    );
    expect(called).toBe(true);
  });

  it('a slow window still makes the call and returns its answer', async () => {
    const path = file([{ kind: 'slow', until: later(), delayMs: 1 }]);
    expect(await new SimulatedFaults(path).around('get', async () => 'answer')).toBe('answer');
    expect(fired(path)).toEqual(['slow get']);
  });

  it('takes each window with its probability', async () => {
    const path = file([{ kind: 'throttle', until: later(), probability: 0.5 }]);
    const draws = [0.7, 0.2];
    const faults = new SimulatedFaults(path, () => draws.shift()!);
    expect(await faults.around('list', async () => 'ok')).toBe('ok');
    await expect(faults.around('list', async () => 'ok')).rejects.toBeInstanceOf(ThrottledError);
  });

  it('empties only the zones of a capacity window, and only for launches', async () => {
    const path = file([{ kind: 'capacity', until: later(), zone: 'sim-zone-a' }]);
    const faults = new SimulatedFaults(path);
    expect(() => faults.checkCapacity({ instanceType: 'sim.small', zone: 'sim-zone-a' })).toThrow(
      InsufficientCapacityError,
    );
    expect(() => faults.checkCapacity({ instanceType: 'sim.small', zone: 'sim-zone-b' })).not.toThrow();
    expect(await faults.around('create', async () => 'launched')).toBe('launched');
  });

  it('sees a replaced file at once: windows open and close while the controller runs', async () => {
    const path = file([]);
    const faults = new SimulatedFaults(path);
    expect(await faults.around('list', async () => 'ok')).toBe('ok');
    writeFileSync(`${path}.new`, JSON.stringify({ windows: [{ kind: 'throttle', until: later() }] }));
    renameSync(`${path}.new`, path);
    await expect(faults.around('list', async () => 'ok')).rejects.toBeInstanceOf(ThrottledError);
  });
});
