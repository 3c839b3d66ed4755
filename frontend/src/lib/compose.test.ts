import { describe, expect, it } from 'vitest';
import { groupByProject, service } from './compose';

const c = (name: string, state: string, project = '', svc = '') =>
  ({ id: name, name, state, labels: project ? { 'com.docker.compose.project': project, 'com.docker.compose.service': svc } : {} }) as any;

describe('compose', () => {
  it('groups containers by project, in list order', () => {
    const list = [c('solo', 'running'), c('shop-web-1', 'running', 'shop', 'web'), c('other', 'exited'), c('shop-db-1', 'exited', 'shop', 'db'), c('blog-app-1', 'running', 'blog', 'app')];
    const groups = groupByProject(list);
    expect(groups.map((g) => [g.project, g.containers.map((x) => x.name), g.running])).toEqual([
      ['', ['solo'], 1],
      ['shop', ['shop-db-1', 'shop-web-1'], 1],
      ['', ['other'], 0],
      ['blog', ['blog-app-1'], 1],
    ]);
    expect(service(list[1])).toBe('web');
    expect(service(list[0])).toBe('');
  });
  it('has no groups for no containers', () => {
    expect(groupByProject([])).toEqual([]);
  });
});
