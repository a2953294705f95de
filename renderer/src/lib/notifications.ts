// The host's notifications (crashes, restarts, crash-loops, memory warnings): a toast in the
// window, and a desktop notification when the window is not in front.
import type { EventMap } from '../../../electron/core/api/contract';
import type { ApiClient } from './api';
import { toasts } from './toasts.svelte';
import type { VmStore } from './vms.svelte';

type HostNotification = EventMap['notification'];

function desktop(n: HostNotification, vms: VmStore): void {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  try {
    const note = new Notification(n.title, { body: n.body, tag: `corral-${n.vmId}` });
    note.onclick = () => {
      window.focus();
      vms.select(n.vmId);
      note.close();
    };
  } catch {
    // some browsers only allow notifications from a service worker
  }
}

/** Shows one host's notifications; returns the function that stops it. */
export function startNotifications(api: ApiClient, vms: VmStore): () => void {
  // Electron grants the permission; a browser asks once, on a click (never on load)
  if (typeof Notification !== 'undefined' && Notification.permission === 'default' && api.kind === 'electron') {
    void Notification.requestPermission().catch(() => {});
  }
  return api.on('notification', (n) => {
    toasts.push(n.level === 'info' ? 'info' : n.level, n.title, n.body);
    if (document.hidden || !document.hasFocus()) desktop(n, vms);
  });
}
