// Form helpers: list fields edited as text, field errors by field.
import type { config } from '../wailsjs/go/models';

/** lines turns a textarea into a list: one entry per line, blanks dropped. */
export function lines(text: string): string[] {
  return text
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function unlines(list: string[] | null | undefined): string {
  return (list || []).join('\n');
}

/** byField groups field errors for showing next to their fields. */
export function byField(errs: config.FieldError[] | null | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of errs || []) (out[e.field] ||= []).push(e.message);
  return out;
}

/** checkSettings mirrors the server's bounds so the form can warn while
 * typing; the server's answer is the one that counts. */
export function checkSettings(s: config.Settings, lim: config.Limits): config.FieldError[] {
  const errs: config.FieldError[] = [];
  const add = (field: string, message: string) => errs.push({ field, message } as config.FieldError);
  if (!(s.cpus >= 1 && (!lim.maxCPUs || s.cpus <= lim.maxCPUs))) add('cpus', `must be between 1 and ${lim.maxCPUs}`);
  if (!(s.memoryMiB >= 512 && (!lim.maxMemoryMiB || s.memoryMiB <= lim.maxMemoryMiB)))
    add('memoryMiB', `must be between 512 and ${lim.maxMemoryMiB} MiB`);
  if (!(s.diskGiB >= 8 && s.diskGiB <= 2048)) add('diskGiB', 'must be between 8 and 2048 GiB');
  if (!(s.containerLogMiB >= 1 && s.containerLogMiB <= 10240)) add('containerLogMiB', 'must be between 1 and 10240 MiB');
  for (const f of s.sharedFolders || []) if (!f.startsWith('/')) add('sharedFolders', `"${f}" is not an absolute path`);
  for (const r of s.insecureRegistries || []) if (r.includes('://')) add('insecureRegistries', `"${r}": want host[:port] or a CIDR, without a scheme`);
  for (const m of s.registryMirrors || []) if (!/^https?:\/\/[^/]+/.test(m)) add('registryMirrors', `"${m}" is not an http(s) URL`);
  for (const f of ['httpProxy', 'httpsProxy'] as const) {
    const p = s[f];
    if (!p) continue;
    if (!/^https?:\/\/[^/\s,]+\/?$/.test(p)) add(f, `"${p}": want http(s)://host[:port]`);
    else if (/^https?:\/\/[^/]*@/.test(p)) add(f, `"${p}": proxies that need a user name and password are not supported yet`);
  }
  return errs;
}
