// The world bench's run-wide event-loop p99 is read from histogram buckets, as histogram_quantile does.
import { describe, expect, it } from 'vitest';
import { delayBuckets, histogramQuantile } from '../../bench/scale.ts';

describe('histogramQuantile', () => {
  const bounds = [0.01, 0.05, 0.1];
  it('interpolates within the bucket the rank falls in', () => {
    // 100 observations: 90 up to 10 ms, 8 in (10, 50], 1 in (50, 100], 1 above.
    expect(histogramQuantile(0.5, bounds, [90, 98, 99, 100])).toBeCloseTo(0.01 * (50 / 90));
    expect(histogramQuantile(0.95, bounds, [90, 98, 99, 100])).toBeCloseTo(0.01 + 0.04 * (5 / 8));
    expect(histogramQuantile(0.99, bounds, [90, 98, 99, 100])).toBeCloseTo(0.1);
  });
  it('answers the last finite bound past it, and NaN without observations', () => {
    expect(histogramQuantile(0.999, bounds, [90, 98, 99, 100])).toBe(0.1);
    expect(histogramQuantile(0.99, bounds, [0, 0, 0, 0])).toBeNaN();
  });
});

describe('delayBuckets', () => {
  it('reads the buckets of ipp_event_loop_delay_seconds from a scrape, in order, +Inf last', () => {
    const m = new Map([
      ['ipp_event_loop_delay_seconds_bucket{le="0.05"}', 9],
      ['ipp_event_loop_delay_seconds_bucket{le="0.01"}', 7],
      ['ipp_event_loop_delay_seconds_bucket{le="+Inf"}', 10],
      ['ipp_event_loop_delay_seconds_sum', 1],
    ]);
    expect(delayBuckets(m)).toEqual({ bounds: [0.01, 0.05], cumulative: [7, 9, 10] });
    expect(delayBuckets(new Map())).toBeUndefined();
  });
});
