// Searching containers and logs.
import type { desktop } from '../wailsjs/go/models';

type Container = desktop.Container;

/** filterContainers keeps the containers matching every word of query
 * (in name, image, ID, status or a published port). */
export function filterContainers(list: Container[], query: string): Container[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return list;
  return list.filter((c) => {
    const hay = [c.name, c.image, c.id.slice(0, 12), c.state, c.status, ...(c.ports || []).map((p) => String(p.hostPort || p.containerPort))]
      .join(' ')
      .toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

export interface Line {
  stream: string;
  text: string;
}

/** LogBuffer keeps the last `cap` lines of a log stream. */
export class LogBuffer {
  lines: Line[] = [];
  dropped = 0;
  constructor(readonly cap = 5000) {}

  push(batch: Line[]): void {
    this.lines.push(...batch);
    const over = this.lines.length - this.cap;
    if (over > 0) {
      this.lines.splice(0, over);
      this.dropped += over;
    }
  }

  /** search returns the indexes of lines containing q (case-insensitive). */
  search(q: string): number[] {
    if (!q) return [];
    const needle = q.toLowerCase();
    const out: number[] = [];
    this.lines.forEach((l, i) => {
      if (l.text.toLowerCase().includes(needle)) out.push(i);
    });
    return out;
  }
}

/** highlight splits text around matches of q for rendering marks. */
export function highlight(text: string, q: string): { text: string; match: boolean }[] {
  if (!q) return [{ text, match: false }];
  const out: { text: string; match: boolean }[] = [];
  const lower = text.toLowerCase(), needle = q.toLowerCase();
  let i = 0;
  for (;;) {
    const j = lower.indexOf(needle, i);
    if (j < 0) break;
    if (j > i) out.push({ text: text.slice(i, j), match: false });
    out.push({ text: text.slice(j, j + needle.length), match: true });
    i = j + needle.length;
  }
  if (i < text.length || out.length === 0) out.push({ text: text.slice(i), match: false });
  return out;
}
