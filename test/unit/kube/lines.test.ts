import { describe, expect, it } from 'vitest';
import { Lines } from '../../../src/kube/informer.ts';

const events = [
  '{"type":"ADDED","object":{"metadata":{"name":"a"}}}',
  '{"type":"MODIFIED","object":{"metadata":{"name":"ünïcode ✓"}}}',
  '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"42"}}}',
  '{"type":"DELETED","object":{"metadata":{"name":"b"}}}',
];
// Blank lines between events are skipped; the last event's newline is where the stream ends.
const stream = `${events[0]}\n\n${events[1]}\n  \n${events[2]}\n${events[3]}\n`;

function split(chunks: string[]): string[] {
  const out: string[] = [];
  const lines = new Lines();
  for (const c of chunks) lines.push(c, (l) => out.push(l));
  return out;
}

describe('Lines', () => {
  it('gives each complete line once, in order, wherever the chunks are cut', () => {
    for (let a = 0; a <= stream.length; a++)
      for (let b = a; b <= stream.length; b += 7) {
        const chunks = [stream.slice(0, a), stream.slice(a, b), stream.slice(b)];
        expect(split(chunks), `cut at ${a} and ${b}`).toEqual(events);
      }
  });

  it('gives a line that spans many chunks whole, and holds a line whose newline has not come', () => {
    const chars = [...stream];
    expect(split(chars)).toEqual(events);
    expect(split([events[0]!, '\n', events[1]!])).toEqual([events[0]]);
  });
});
