// View state that outlives a page: the chosen tab stays when you switch between VMs.
export type Tab = 'overview' | 'console' | 'resources' | 'network' | 'snapshots' | 'events';

export const ui = $state<{ tab: Tab }>({ tab: 'overview' });
