// The warm pool's schedule: a small cron matcher and the windows it opens.
import { describe, expect, it } from 'vitest';
import { matches, parseCron, scheduleOpen, windowOpen } from '../../../../src/controllers/warmpool/schedule.ts';

const at = (iso: string) => Date.parse(iso);

describe('parseCron / matches', () => {
  it('matches numbers, ranges, lists and steps in UTC', () => {
    const weekdayMornings = parseCron('0,30 8-9 * * 1-5');
    expect(matches(weekdayMornings, new Date('2024-01-01T08:30:00Z'))).toBe(true); // Monday
    expect(matches(weekdayMornings, new Date('2024-01-01T09:00:00Z'))).toBe(true);
    expect(matches(weekdayMornings, new Date('2024-01-01T10:00:00Z'))).toBe(false);
    expect(matches(weekdayMornings, new Date('2024-01-01T08:15:00Z'))).toBe(false);
    expect(matches(weekdayMornings, new Date('2024-01-06T08:30:00Z'))).toBe(false); // Saturday
    const everyQuarter = parseCron('*/15 * * * *');
    expect([0, 15, 30, 45].every((m) => matches(everyQuarter, new Date(Date.UTC(2024, 0, 1, 3, m))))).toBe(true);
    expect(matches(everyQuarter, new Date(Date.UTC(2024, 0, 1, 3, 20)))).toBe(false);
  });

  it('takes 7 for Sunday, and either day field when both are restricted (as cron does)', () => {
    expect(matches(parseCron('0 0 * * 7'), new Date('2024-01-07T00:00:00Z'))).toBe(true); // Sunday
    const firstOrMonday = parseCron('0 0 1 * 1');
    expect(matches(firstOrMonday, new Date('2024-02-01T00:00:00Z'))).toBe(true); // Thursday the 1st
    expect(matches(firstOrMonday, new Date('2024-01-08T00:00:00Z'))).toBe(true); // Monday the 8th
    expect(matches(firstOrMonday, new Date('2024-01-09T00:00:00Z'))).toBe(false);
  });

  it('refuses what it cannot read, saying which field', () => {
    expect(() => parseCron('0 8 * *')).toThrow(/five fields/);
    expect(() => parseCron('0 25 * * *')).toThrow(/hour "25"/);
    expect(() => parseCron('0 8 * * mon')).toThrow(/day of week "mon"/);
    expect(() => parseCron('5-1 * * * *')).toThrow(/minute "5-1"/);
  });
});

describe('windows', () => {
  const office = { cron: '0 8 * * 1-5', duration: '10h' };

  it('is open from the matching minute for the duration, and closed outside', () => {
    expect(windowOpen(office, at('2024-01-01T07:59:00Z'))).toBe(false);
    expect(windowOpen(office, at('2024-01-01T08:00:00Z'))).toBe(true);
    expect(windowOpen(office, at('2024-01-01T17:59:59Z'))).toBe(true);
    expect(windowOpen(office, at('2024-01-01T18:00:00Z'))).toBe(false);
    expect(windowOpen(office, at('2024-01-06T09:00:00Z'))).toBe(false); // Saturday
  });

  it('holds a window across midnight', () => {
    const night = { cron: '0 22 * * *', duration: '4h' };
    expect(windowOpen(night, at('2024-01-02T01:30:00Z'))).toBe(true);
    expect(windowOpen(night, at('2024-01-02T02:00:00Z'))).toBe(false);
  });

  it('holds the pool always without a schedule, and inside any of several windows with one', () => {
    expect(scheduleOpen(undefined, at('2024-01-06T03:00:00Z'))).toBe(true);
    expect(scheduleOpen([], at('2024-01-06T03:00:00Z'))).toBe(true);
    const weekend = { cron: '0 10 * * 6', duration: '2h' };
    expect(scheduleOpen([office, weekend], at('2024-01-06T11:00:00Z'))).toBe(true);
    expect(scheduleOpen([office, weekend], at('2024-01-06T13:00:00Z'))).toBe(false);
  });
});
