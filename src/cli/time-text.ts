/**
 * Times as people read them on a terminal: the local clock time and how far away it is
 * (`14:05 (in 59m)`, `yesterday 09:12`). JSON output keeps ISO 8601 instead.
 */

/** `59m`, `1h30m`, `2d3h`, `45s`: the span rounded to the two largest units that matter. */
export function spanText(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 600) {
    const m = Math.floor(s / 60);
    const rest = s % 60;
    return rest === 0 ? `${m}m` : `${m}m${rest}s`;
  }
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes}m`;
  if (minutes < 48 * 60) {
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    return m === 0 ? `${h}h` : `${h}h${m}m`;
  }
  const hours = Math.round(minutes / 60);
  const d = Math.floor(hours / 24);
  const h = hours % 24;
  return h === 0 ? `${d}d` : `${d}d${h}h`;
}

/** `in 59m` or `3m ago`. */
export function relativeText(at: number, now: number): string {
  const ms = at - now;
  return ms >= 0 ? `in ${spanText(ms)}` : `${spanText(ms)} ago`;
}

/** The local clock time `HH:MM:SS`, with the date in front when it is not today. */
export function clockText(at: number, now: number): string {
  const date = new Date(at);
  const time = [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const today = new Date(now);
  const sameDay = date.getFullYear() === today.getFullYear() && date.getMonth() === today.getMonth() && date.getDate() === today.getDate();
  if (sameDay) return time;
  const day = `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
  return `${day} ${time}`;
}

/** `14:05:00 (in 59m)`: an ISO time for a person; the text itself when it is not a time. */
export function whenText(iso: string, now: number): string {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  return `${clockText(at, now)} (${relativeText(at, now)})`;
}
