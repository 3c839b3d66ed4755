// Live state shared by the views: loaded once, then kept current by the
// events the backend emits (it re-lists after each engine event).
import { EventsOn } from '../wailsjs/runtime/runtime';
import * as Machine from '../wailsjs/go/desktop/Machine';
import * as Containers from '../wailsjs/go/desktop/Containers';
import * as Images from '../wailsjs/go/desktop/Images';
import * as Volumes from '../wailsjs/go/desktop/Volumes';
import type { desktop } from '../wailsjs/go/models';
import { errText } from './format';

export const live = $state({
  machine: null as desktop.MachineStatus | null,
  containers: [] as desktop.Container[],
  images: [] as desktop.Image[],
  volumes: [] as desktop.Volume[],
  loadError: '' as string,
});

let started = false;

export function startLive(): void {
  if (started) return;
  started = true;
  EventsOn('machine', (m: desktop.MachineStatus) => (live.machine = m));
  EventsOn('containers', (l: desktop.Container[]) => (live.containers = l || []));
  EventsOn('images', (l: desktop.Image[]) => (live.images = l || []));
  EventsOn('volumes', (l: desktop.Volume[]) => (live.volumes = l || []));
  Machine.Status().then((m) => (live.machine = m));
  refreshAll();
}

/** refreshAll lists everything once (the events keep it current after). */
export function refreshAll(): void {
  Containers.List().then((l) => (live.containers = l || []), (e) => (live.loadError = errText(e)));
  Images.List().then((l) => (live.images = l || []), () => {});
  Volumes.List().then((l) => (live.volumes = l || []), () => {});
}

export const engineUp = () => !!live.machine?.engine?.answering;
