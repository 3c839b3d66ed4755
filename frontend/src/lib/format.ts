// Formatting helpers shared by the views.

export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '–';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return (i === 0 || n >= 100 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
}

export function mib(n: number): string {
  return n >= 1024 ? (n / 1024).toFixed(n % 1024 === 0 ? 0 : 1) + ' GiB' : n + ' MiB';
}

/** ago renders a unix time (seconds) relative to now (ms). */
export function ago(unixSec: number, now = Date.now()): string {
  if (!unixSec) return '';
  const s = Math.max(0, Math.round(now / 1000 - unixSec));
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 86400) return Math.floor(s / 3600) + 'h ago';
  return Math.floor(s / 86400) + 'd ago';
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** errText turns a rejected call (Wails rejects with the error's text) into a message. */
export function errText(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message;
  return String(e);
}

export interface Layer {
  id: string;
  status: string;
  current: number;
  total: number;
}

/** pullSummary totals a pull's layers for the overall bar. */
export function pullSummary(layers: Layer[]): { done: number; count: number; current: number; total: number; percent: number } {
  let done = 0, current = 0, total = 0;
  for (const l of layers) {
    if (/complete|Already exists/.test(l.status)) done++;
    current += Math.min(l.current, l.total);
    total += l.total;
  }
  const count = layers.length;
  let percent = total > 0 ? Math.round((current / total) * 100) : 0;
  if (count > 0 && done === count) percent = 100;
  return { done, count, current, total, percent };
}

/** statusLine is the engine's status without its age ("Up 3 minutes" is
 * only true when listed; the list refreshes on events, not on a timer). */
export function statusLine(state: string, status: string): string {
  const exited = /^Exited \(\d+\)/.exec(status);
  if (exited) return exited[0];
  if (state === 'running') return /\(healthy\)|\(unhealthy\)|\(health: starting\)/.exec(status)?.[0] ?? '';
  return '';
}

export interface BootPhase {
  name: string;
  label: string;
  startMs: number;
  endMs: number;
  running?: boolean;
}

/** bootSteps orders a start's phases for the progress list: those done in
 * the order they ended, with their seconds, then those still running. */
export function bootSteps(phases: BootPhase[] | undefined): { label: string; seconds: string; running: boolean }[] {
  const list = phases || [];
  const done = list.filter((p) => !p.running).sort((a, b) => a.endMs - b.endMs);
  const running = list.filter((p) => p.running);
  return [
    ...done.map((p) => ({ label: p.label || p.name, seconds: ((p.endMs - p.startMs) / 1000).toFixed(2) + ' s', running: false })),
    ...running.map((p) => ({ label: p.label || p.name, seconds: '', running: true })),
  ];
}
