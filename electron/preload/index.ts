// The only bridge between the sandboxed page and the host: one generic call and one event
// stream. The host validates every argument, so nothing here needs to know the methods.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

let nextId = 1;

contextBridge.exposeInMainWorld('corral', {
  call: (method: string, args: unknown): Promise<unknown> => ipcRenderer.invoke('corral:call', { id: nextId++, method, args }),
  on: (listener: (event: string, payload: unknown) => void): (() => void) => {
    const wrapped = (_e: IpcRendererEvent, msg: { event: string; payload: unknown }) => listener(msg.event, msg.payload);
    ipcRenderer.on('corral:event', wrapped);
    return () => ipcRenderer.removeListener('corral:event', wrapped);
  },
});
