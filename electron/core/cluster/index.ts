// The cluster layer's public face for the host (loaded only when a host is or becomes clustered).
export { Cluster, type ClusterDeps } from './cluster.js';
export { initCluster, joinCluster, resumeCluster } from './membership.js';
export type { ClusterVm } from './inventory.js';
export type { CertPaths } from './ca.js';
export type { PeerStreamOpen, StreamKind } from './peer-stream.js';
