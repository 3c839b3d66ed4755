// Grouping containers by Compose project, as the Containers view shows them.
import type { desktop } from '../wailsjs/go/models';

type Container = desktop.Container;

export const projectLabel = 'com.docker.compose.project';
export const serviceLabel = 'com.docker.compose.service';

/** A group is a Compose project's containers, or (project '') the
 * containers of no project, each one alone. */
export interface Group {
  project: string;
  containers: Container[];
  running: number;
}

/** groupByProject keeps the list's order: a project sits where its first
 * container would, its containers ordered by service then name. */
export function groupByProject(list: Container[]): Group[] {
  const out: Group[] = [];
  const byName = new Map<string, Group>();
  for (const c of list) {
    const p = c.labels?.[projectLabel] || '';
    if (!p) {
      out.push({ project: '', containers: [c], running: c.state === 'running' ? 1 : 0 });
      continue;
    }
    let g = byName.get(p);
    if (!g) {
      g = { project: p, containers: [], running: 0 };
      byName.set(p, g);
      out.push(g);
    }
    g.containers.push(c);
    if (c.state === 'running') g.running++;
  }
  for (const g of byName.values()) {
    g.containers.sort((a, b) => (service(a) + '\0' + a.name).localeCompare(service(b) + '\0' + b.name));
  }
  return out;
}

/** service is a Compose container's service name, else ''. */
export function service(c: Container): string {
  return c.labels?.[serviceLabel] || '';
}
