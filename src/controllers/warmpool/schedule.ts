// When is a class's warm pool held? Windows open at each minute a five-field cron expression matches
// (UTC) and stay open for their duration. A small matcher of our own: numbers, `*`, lists, ranges and
// steps, which is all a platform team writes for "weekdays 08:00–18:00"; no names, no @shortcuts.
import { parseDuration } from '../../api/duration.ts';
import type { WarmWindow } from '../../api/types.ts';

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const;

/** A parsed cron expression: the allowed values of each field. */
export interface Cron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  /** Both day fields restricted: cron matches when either does (Vixie cron's rule). */
  eitherDay: boolean;
}

function field(text: string, f: (typeof FIELDS)[number], expr: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    const bad = () =>
      new Error(`cron "${expr}": ${f.name} "${part}" is not a number, range or step of ${f.min}-${f.max}`);
    if (!m) throw bad();
    const lo = m[1] === '*' ? f.min : Number(m[2]);
    const hi = m[1] === '*' ? f.max : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? f.max : lo;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (lo < f.min || hi > f.max || lo > hi || step < 1) throw bad();
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

/** Parses "m h dom mon dow"; throws saying which field is wrong. Day of week 7 is Sunday, like 0. */
export function parseCron(expr: string): Cron {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) {
    throw new Error(
      `cron "${expr}" needs five fields (minute hour day-of-month month day-of-week), e.g. "0 8 * * 1-5"`,
    );
  }
  const [minutes, hours, days, months, weekdays] = parts.map((p, i) => field(p, FIELDS[i]!, expr)) as Set<number>[];
  if (weekdays!.has(7)) weekdays!.add(0);
  return {
    minutes: minutes!,
    hours: hours!,
    days: days!,
    months: months!,
    weekdays: weekdays!,
    eitherDay: parts[2] !== '*' && parts[4] !== '*',
  };
}

/** Does `cron` match the minute starting at `t` (UTC)? */
export function matches(cron: Cron, t: Date): boolean {
  if (!cron.minutes.has(t.getUTCMinutes()) || !cron.hours.has(t.getUTCHours())) return false;
  if (!cron.months.has(t.getUTCMonth() + 1)) return false;
  const dom = cron.days.has(t.getUTCDate());
  const dow = cron.weekdays.has(t.getUTCDay());
  return cron.eitherDay ? dom || dow : dom && dow;
}

const MINUTE = 60_000;
/** Longest window we look back over: a week covers every weekly schedule. */
export const MAX_WINDOW_MS = 7 * 24 * 60 * MINUTE;

/** Is a window of `w` open at `now`: did its cron match within the last `duration`? */
export function windowOpen(w: WarmWindow, now: number): boolean {
  const cron = parseCron(w.cron);
  const duration = Math.min(parseDuration(w.duration, 'spec.warmPool.schedule[].duration'), MAX_WINDOW_MS);
  const start = Math.floor(now / MINUTE) * MINUTE;
  for (let t = start; t > now - duration; t -= MINUTE) if (matches(cron, new Date(t))) return true;
  return false;
}

/** Is the pool held at `now`? Without a schedule, always. */
export const scheduleOpen = (schedule: readonly WarmWindow[] | undefined, now: number) =>
  !schedule?.length || schedule.some((w) => windowOpen(w, now));
