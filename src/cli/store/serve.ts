// `keelson store serve`: one store member as its own process, configured with
// etcd's flag names so an etcd deployment's flags carry over. It opens the
// peer transport (TCP, optional mutual TLS), starts the replicated member on
// its data dir, serves the etcd v3 gRPC API on the client URLs, prints one
// "ready" line, and on SIGINT/SIGTERM stops serving, closes the member (its
// WAL and keyspace are durable at every acknowledged write) and exits 0.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../command.ts';
import { flagBool, flagDurationMs, flagInt, parseFlags, type FlagSpec, type Parsed } from './args.ts';
import type { AutoCompactMode } from '../../store/mvcc/autocompact.ts';
import { TcpTransport, fetchMemberList, type TcpTlsOptions } from '../../store/raft/tcp.ts';
import { EtcdServer, type EtcdServerTls } from '../../store/server/server.ts';
import { clusterIdOf, memberIdOf, type InitialMember } from '../../store/embedded/ids.ts';
import { EmbeddedStore } from '../../store/embedded.ts';
import { RemoteStore } from '../../store/client/remote.ts';
import { isKeelsonError } from '../../store/errors.ts';
import type { ClusterStore } from '../../store/cluster.ts';
import { parseHexId } from './args.ts';
import { EndpointClient } from './grpc.ts';
import type { HashKVResponse } from '../../store/store.ts';

/** Bounds of --backend-batch-interval and --backend-batch-limit (the WAL replays an uncommitted batch after a crash). */
const backendBatchIntervalMsMax = 10_000;
const backendBatchLimitMax = 1_000_000;

export const serveSpec: FlagSpec = {
  bool: ['peer-client-cert-auth', 'force-new-cluster', 'client-cert-auth'],
  value: [
    'name', 'data-dir', 'listen-client-urls', 'advertise-client-urls', 'listen-peer-urls', 'initial-advertise-peer-urls',
    'initial-cluster', 'initial-cluster-state', 'initial-cluster-token', 'heartbeat-interval', 'election-timeout',
    'auto-compaction-mode', 'auto-compaction-retention', 'quota-backend-bytes', 'peer-cert-file', 'peer-key-file',
    'peer-trusted-ca-file', 'member-id', 'cluster-id', 'experimental-corrupt-check-time', 'snapshot-count',
    'experimental-snapshot-catchup-entries', 'cert-file', 'key-file', 'trusted-ca-file', 'backend-batch-interval',
    'backend-batch-limit',
  ],
};

export const serveUsage = `Usage: keelson store serve [flags]

Runs one member of a Keelson store cluster and serves the etcd v3 API.

  --name=default                          this member's name in --initial-cluster
  --data-dir=<name>.keelson               where the WAL and keyspace live
  --listen-client-urls=http://localhost:2379
  --advertise-client-urls=<listen-client-urls>
  --listen-peer-urls=http://localhost:2380
  --initial-advertise-peer-urls=<listen-peer-urls>
  --initial-cluster=<name>=<peer url>[,...]  every initial member, NAME=URL
  --initial-cluster-state=new|existing    new: bootstrap; existing: join a running cluster
                                          (after \`keelson store member add\`); the member list
                                          is asked of the other members' peer URLs first
  --member-id=HEX, --cluster-id=HEX        with --initial-cluster-state=existing: the ids
                                          \`member add\` printed (a joining member is told them)
  --initial-cluster-token=keelson-cluster  keeps clusters with the same members apart
  --heartbeat-interval=100                milliseconds between leader heartbeats
  --election-timeout=1000                 milliseconds; a multiple of the heartbeat interval
  --auto-compaction-mode=periodic|revision
  --auto-compaction-retention=0           periodic: hours (or 30m, 1h); revision: revisions kept; 0 = off
  --quota-backend-bytes=2147483648        keyspace size past which writes fail with NOSPACE
  --backend-batch-interval=100ms          how often applied entries are committed to the keyspace
                                          file (one fsync each; at most 10s)
  --backend-batch-limit=10000             entries after which a commit starts sooner
  --experimental-corrupt-check-time=0    how often the leader compares keyspace hashes with the
                                          other members (e.g. 5m); a mismatch raises CORRUPT; 0 = off
  --snapshot-count=10000                  applied entries between snapshots (the log is compacted behind them)
  --experimental-snapshot-catchup-entries=5000
                                          entries kept behind a snapshot for slow followers
  --peer-cert-file, --peer-key-file, --peer-trusted-ca-file
                                          mutual TLS between members (PEM); peer URLs use https://
  --cert-file, --key-file                 serve clients over TLS (PEM); client URLs use https://
  --trusted-ca-file, --client-cert-auth   require client certificates signed by this CA`;

export interface ServeConfig {
  name: string;
  dataDir: string;
  listenClientUrls: URL[];
  advertiseClientUrls: string[];
  listenPeerUrls: string[];
  advertisePeerUrls: string[];
  initialCluster: InitialMember[];
  initialClusterState: 'new' | 'existing';
  clusterToken: string;
  tickMs: number;
  electionTicks: number;
  autoCompact: AutoCompactMode | undefined;
  quotaBackendBytes: number;
  peerTls: { certFile: string; keyFile: string; caFile: string } | undefined;
  clientTls: { certFile: string; keyFile: string; caFile: string | undefined; clientCertAuth: boolean } | undefined;
  memberId: number | undefined;
  clusterId: number | undefined;
  corruptCheckMs: number;
  snapshotEntries: number;
  snapshotCatchUpEntries: number;
  backendBatchIntervalMs: number;
  backendBatchLimit: number;
}

function urlList(p: Parsed, flag: string, dflt: string): string[] {
  const raw = p.flags.get(flag) ?? dflt;
  const out = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (out.length === 0) throw new UsageError(`--${flag} is empty`);
  for (const u of out) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new UsageError(`--${flag}: "${u}" is not a URL (e.g. http://127.0.0.1:2379)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--${flag}: "${u}" must use http:// or https://`);
    if (url.port === '') throw new UsageError(`--${flag}: "${u}" needs a port`);
  }
  return out;
}

/** --initial-cluster: name=url[,name=url]; one name may appear with several URLs. */
export function parseInitialCluster(raw: string): InitialMember[] {
  const byName = new Map<string, string[]>();
  for (const part of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--initial-cluster: "${part}" is not NAME=URL`);
    const name = part.slice(0, eq);
    const url = part.slice(eq + 1);
    try {
      new URL(url);
    } catch {
      throw new UsageError(`--initial-cluster: "${url}" is not a URL`);
    }
    byName.set(name, [...(byName.get(name) ?? []), url]);
  }
  if (byName.size === 0) throw new UsageError('--initial-cluster is empty');
  return [...byName].map(([name, peerUrls]) => ({ name, peerUrls }));
}

/** etcd's client TLS flags: --cert-file and --key-file, optionally --trusted-ca-file with --client-cert-auth. */
function parseClientTls(p: Parsed): ServeConfig['clientTls'] {
  const cert = p.flags.get('cert-file');
  const key = p.flags.get('key-file');
  const ca = p.flags.get('trusted-ca-file');
  const auth = flagBool(p, 'client-cert-auth');
  if (cert === undefined && key === undefined) {
    if (ca !== undefined || auth) throw new UsageError('--trusted-ca-file and --client-cert-auth need --cert-file and --key-file');
    return undefined;
  }
  if (cert === undefined || key === undefined) throw new UsageError('client TLS needs both --cert-file and --key-file');
  if (auth && ca === undefined) throw new UsageError('--client-cert-auth needs --trusted-ca-file (the CA that signs client certificates)');
  for (const f of [cert, key, ...(ca !== undefined ? [ca] : [])]) if (!fs.existsSync(f)) throw new UsageError(`client TLS file ${f} does not exist`);
  return { certFile: cert, keyFile: key, caFile: ca, clientCertAuth: auth };
}

function retentionMs(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v);
  if (!m) throw new UsageError(`--auto-compaction-retention: "${v}" is not a number of hours or a duration like 30m`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'h';
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

export function parseServeArgs(args: string[]): ServeConfig {
  const p = parseFlags(args, serveSpec);
  if (p.positional.length > 0) throw new UsageError(`unexpected argument "${p.positional[0]}"`);
  const name = p.flags.get('name') ?? 'default';
  const listenClient = urlList(p, 'listen-client-urls', 'http://localhost:2379');
  const clientTls = parseClientTls(p);
  for (const u of listenClient) {
    if (u.startsWith('https:') !== (clientTls !== undefined)) throw new UsageError(`--listen-client-urls: "${u}": use https:// exactly when --cert-file and --key-file are given`);
  }
  const listenPeer = urlList(p, 'listen-peer-urls', 'http://localhost:2380');
  const advertisePeer = urlList(p, 'initial-advertise-peer-urls', listenPeer.join(','));
  const advertiseClient = urlList(p, 'advertise-client-urls', listenClient.join(','));
  const initialCluster = parseInitialCluster(p.flags.get('initial-cluster') ?? `${name}=${advertisePeer.join(`,${name}=`)}`);
  const me = initialCluster.find((m) => m.name === name);
  if (!me) throw new UsageError(`--initial-cluster has no member named "${name}" (--name)`);
  const mine = new Set(advertisePeer);
  if (!me.peerUrls.every((u) => mine.has(u)) || me.peerUrls.length !== advertisePeer.length) {
    throw new UsageError(`--initial-cluster lists ${name} at ${me.peerUrls.join(',')} but --initial-advertise-peer-urls is ${advertisePeer.join(',')}`);
  }
  const state = p.flags.get('initial-cluster-state') ?? 'new';
  if (state !== 'new' && state !== 'existing') throw new UsageError(`--initial-cluster-state must be new or existing, got "${state}"`);
  const heartbeatMs = flagInt(p, 'heartbeat-interval', 100, 1);
  const electionMs = flagInt(p, 'election-timeout', 1000, 1);
  if (electionMs < 5 * heartbeatMs) throw new UsageError(`--election-timeout (${electionMs}) must be at least 5 times --heartbeat-interval (${heartbeatMs})`);
  if (electionMs > 50_000) throw new UsageError('--election-timeout must be at most 50000 ms');
  const mode = p.flags.get('auto-compaction-mode') ?? 'periodic';
  if (mode !== 'periodic' && mode !== 'revision') throw new UsageError(`--auto-compaction-mode must be periodic or revision, got "${mode}"`);
  const retention = p.flags.get('auto-compaction-retention') ?? '0';
  let autoCompact: AutoCompactMode | undefined;
  if (mode === 'revision') {
    if (!/^\d+$/.test(retention)) throw new UsageError(`--auto-compaction-retention must be a number of revisions in revision mode, got "${retention}"`);
    if (Number(retention) > 0) autoCompact = { mode: 'revision', retain: Number(retention) };
  } else {
    const ms = retentionMs(retention);
    if (ms > 0) autoCompact = { mode: 'periodic', retainMs: ms };
  }
  const quota = flagInt(p, 'quota-backend-bytes', 2 * 1024 * 1024 * 1024, 0);
  const batchMs = flagDurationMs(p, 'backend-batch-interval', 100);
  if (batchMs < 1 || batchMs > backendBatchIntervalMsMax) throw new UsageError(`--backend-batch-interval must be between 1ms and ${backendBatchIntervalMsMax / 1000}s, got "${p.flags.get('backend-batch-interval')}"`);
  const batchLimit = flagInt(p, 'backend-batch-limit', 10_000, 1);
  if (batchLimit > backendBatchLimitMax) throw new UsageError(`--backend-batch-limit must be at most ${backendBatchLimitMax}`);
  const tlsFlags = ['peer-cert-file', 'peer-key-file', 'peer-trusted-ca-file'].filter((f) => p.flags.has(f));
  if (tlsFlags.length !== 0 && tlsFlags.length !== 3) throw new UsageError('peer TLS needs all of --peer-cert-file, --peer-key-file and --peer-trusted-ca-file');
  const peerTls = tlsFlags.length === 3 ? { certFile: p.flags.get('peer-cert-file')!, keyFile: p.flags.get('peer-key-file')!, caFile: p.flags.get('peer-trusted-ca-file')! } : undefined;
  for (const f of peerTls ? Object.values(peerTls) : []) if (!fs.existsSync(f)) throw new UsageError(`peer TLS file ${f} does not exist`);
  const allPeer = [...listenPeer, ...advertisePeer, ...initialCluster.flatMap((m) => m.peerUrls)];
  for (const u of allPeer) {
    if ((new URL(u).protocol === 'https:') !== (peerTls !== undefined)) throw new UsageError(`peer URL ${u}: use https:// exactly when peer TLS is configured`);
  }
  const idFlag = (f: string): number | undefined => {
    if (!p.flags.has(f)) return undefined;
    const v = parseHexId(p.flags.get(f), `--${f}`);
    if (v === 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`--${f} must be a non-zero id below 2^53`);
    return Number(v);
  };
  const memberId = idFlag('member-id');
  const clusterId = idFlag('cluster-id');
  if (state === 'existing' && (memberId === undefined || clusterId === undefined) && !fs.existsSync(path.join(p.flags.get('data-dir') ?? `${name}.keelson`, 'member.json'))) {
    throw new UsageError('joining an existing cluster needs --member-id and --cluster-id (printed by `keelson store member add`)');
  }
  if (flagBool(p, 'force-new-cluster')) throw new UsageError('--force-new-cluster is not supported; restore a snapshot into a new cluster instead');
  return {
    name,
    dataDir: p.flags.get('data-dir') ?? `${name}.keelson`,
    listenClientUrls: listenClient.map((u) => new URL(u)),
    advertiseClientUrls: advertiseClient,
    listenPeerUrls: listenPeer,
    advertisePeerUrls: advertisePeer,
    initialCluster,
    initialClusterState: state,
    clusterToken: p.flags.get('initial-cluster-token') ?? 'keelson-cluster',
    tickMs: heartbeatMs,
    electionTicks: Math.round(electionMs / heartbeatMs),
    autoCompact,
    quotaBackendBytes: quota,
    peerTls,
    clientTls,
    memberId,
    clusterId,
    corruptCheckMs: flagDurationMs(p, 'experimental-corrupt-check-time', 0),
    snapshotEntries: flagInt(p, 'snapshot-count', 10_000, 1),
    snapshotCatchUpEntries: flagInt(p, 'experimental-snapshot-catchup-entries', 5_000, 1),
    backendBatchIntervalMs: batchMs,
    backendBatchLimit: batchLimit,
  };
}

/**
 * The store the gRPC server serves: the member itself, except that lease
 * keep-alives and time-to-live questions, which only the leader's lessor can
 * answer, are forwarded to the leader's client URL when this member is a
 * follower (an in-process cluster shares stores; separate processes talk
 * over the client API). One client per leader, replaced when leadership moves.
 */
function withLeaseForwarding(store: EmbeddedStore, cfg: ServeConfig): { store: ClusterStore; close(): Promise<void> } {
  let remote: { leader: number; store: RemoteStore } | null = null;
  const leaderRemote = async (): Promise<RemoteStore | null> => {
    const lead = store.leaderId();
    if (lead === 0 || lead === store.memberId) return null;
    if (remote?.leader === lead) return remote.store;
    const members = await store.members();
    const urls = members.members.find((m) => m.id === lead)?.clientUrls ?? [];
    if (urls.length === 0) return null;
    const old = remote;
    const t = cfg.clientTls;
    // Over client TLS a member is a client of the others with its own
    // certificate (as etcd members are), so issue it for client auth too.
    // Without --trusted-ca-file the serving certificate must be its own root.
    const credentials = t === undefined ? undefined : {
      rootCertificate: fs.readFileSync(t.caFile ?? t.certFile),
      certChain: fs.readFileSync(t.certFile),
      privateKey: fs.readFileSync(t.keyFile),
    };
    remote = { leader: lead, store: new RemoteStore({ endpoints: urls, requestTimeoutMs: 5000, ...(credentials ? { etcd3: { credentials } } : {}) }) };
    if (old) void old.store.close().catch(() => {});
    return remote.store;
  };
  const forward = <A extends unknown[], R>(local: (...a: A) => Promise<R>, viaLeader: (r: RemoteStore, ...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      try {
        if (store.leaderId() === store.memberId) return await local(...a);
        const r = await leaderRemote();
        return r ? await viaLeader(r, ...a) : await local(...a);
      } catch (e) {
        if (!isKeelsonError(e, 'not leader')) throw e;
        const r = await leaderRemote();
        if (!r) throw e;
        return await viaLeader(r, ...a);
      }
    };
  const keepAlive = forward((id: number) => store.leaseKeepAlive(id), (r, id) => r.leaseKeepAlive(id));
  const timeToLive = forward((id: number, o?: { keys?: boolean }) => store.leaseTimeToLive(id, o), (r, id, o) => r.leaseTimeToLive(id, o));
  // Methods are bound once, not on every call of the request path.
  const bound = new Map<PropertyKey, unknown>([['leaseKeepAlive', keepAlive], ['leaseTimeToLive', timeToLive]]);
  const proxy = new Proxy(store, {
    get(target, prop) {
      const b = bound.get(prop);
      if (b !== undefined) return b;
      const v = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const f = v.bind(target);
      bound.set(prop, f);
      return f;
    },
  }) as ClusterStore;
  return {
    store: proxy,
    async close() {
      if (remote) await remote.store.close().catch(() => {});
      remote = null;
    },
  };
}

async function peerHashKV(store: EmbeddedStore, cfg: ServeConfig, id: number, revision: number): Promise<HashKVResponse> {
  const members = await store.members();
  const url = members.members.find((m) => m.id === id)?.clientUrls[0];
  if (!url) throw new Error(`member ${id.toString(16)} has no client URL`);
  const t = cfg.clientTls;
  const c = new EndpointClient(url, 10_000, t === undefined ? undefined : { caFile: t.caFile, certFile: t.certFile, keyFile: t.keyFile });
  try {
    const r = await c.unary('Maintenance', 'HashKV', { revision: String(revision) });
    return { header: { revision: Number(r.header.revision) }, hash: Number(r.hash), compactRevision: Number(r.compact_revision), hashRevision: revision };
  } finally {
    c.close();
  }
}

/** Rounds over the other members' peer URLs when asking for the member list; a member that just applied the add may lag by a moment. */
const joinMemberListRoundsMax = 3;
const joinMemberListRoundDelayMs = 500;
const joinMemberListTimeoutMs = 3000;

/**
 * The real member list of the cluster a member joins, asked of the members
 * named in --initial-cluster over their peer URLs. Any member may have been
 * removed and re-added before (memberAdd gives a random id), so the other
 * members' ids cannot be derived from names and URLs. Throws with the reason
 * when no member answers with a list that has the joiner in it.
 */
async function joinMemberList(cfg: ServeConfig, memberId: number, clusterId: number, tlsOpts: TcpTlsOptions | undefined): Promise<InitialMember[]> {
  const urls = cfg.initialCluster.filter((m) => m.name !== cfg.name).flatMap((m) => m.peerUrls);
  if (urls.length === 0) throw new Error('--initial-cluster-state=existing: --initial-cluster names no other member to join');
  const failures = new Map<string, string>();
  for (let round = 0; round < joinMemberListRoundsMax; round++) {
    if (round > 0) await new Promise((r) => setTimeout(r, joinMemberListRoundDelayMs));
    for (const url of urls) {
      try {
        const members = await fetchMemberList(url, { clusterId, tls: tlsOpts, timeoutMs: joinMemberListTimeoutMs });
        if (!members.some((m) => m.id === memberId)) {
          failures.set(url, `its member list has no member ${memberId.toString(16)} (add this member with \`keelson store member add\` first)`);
          continue;
        }
        return members.map((m) => ({
          id: m.id,
          // The joiner's own entry may not carry its name yet (it publishes it once running).
          name: m.id === memberId ? cfg.name : m.name,
          peerUrls: m.peerUrls,
          clientUrls: m.clientUrls,
        }));
      } catch (e) {
        failures.set(url, (e as Error).message);
      }
    }
  }
  throw new Error(`cannot join cluster ${clusterId.toString(16)}: ${[...failures].map(([u, why]) => `${u}: ${why}`).join('; ')}`);
}

export async function serve(args: string[]): Promise<number> {
  const cfg = parseServeArgs(args);
  // The transport must know the ids before the member opens: take them from
  // the data dir of a member that ran before, else from the flags.
  const memberFile = path.join(cfg.dataDir, 'member.json');
  let memberId: number;
  let clusterId: number;
  if (fs.existsSync(memberFile)) {
    const m = JSON.parse(fs.readFileSync(memberFile, 'utf8')) as { memberId: number; clusterId: number };
    memberId = m.memberId;
    clusterId = m.clusterId;
  } else {
    const ids = cfg.initialCluster.map((m) => memberIdOf(m, cfg.clusterToken));
    memberId = cfg.memberId ?? memberIdOf(cfg.initialCluster.find((m) => m.name === cfg.name)!, cfg.clusterToken);
    clusterId = cfg.clusterId ?? clusterIdOf(ids, cfg.clusterToken);
  }
  const transport = new TcpTransport({
    clusterId,
    memberId,
    listenUrls: cfg.listenPeerUrls,
    tls: cfg.peerTls,
    log: (line) => process.stderr.write(`keelson store: ${line}\n`),
  });
  try {
    await transport.listen();
  } catch (e) {
    process.stderr.write(`keelson store serve: cannot listen for peers on ${cfg.listenPeerUrls.join(',')}: ${(e as Error).message}\n`);
    return 2;
  }
  let initialCluster = cfg.initialCluster;
  if (cfg.initialClusterState === 'existing' && !fs.existsSync(memberFile)) {
    try {
      initialCluster = await joinMemberList(cfg, memberId, clusterId, cfg.peerTls);
    } catch (e) {
      await transport.close();
      process.stderr.write(`keelson store serve: ${(e as Error).message}\n`);
      return 2;
    }
  }
  let store: EmbeddedStore;
  try {
    store = new EmbeddedStore({
      dataDir: cfg.dataDir,
      name: cfg.name,
      memberId,
      clusterId,
      clusterToken: cfg.clusterToken,
      // Client URLs go in clientUrls only: every member then publishes its own
      // through the log, so all members agree on them.
      initialCluster,
      initialClusterState: cfg.initialClusterState,
      clientUrls: cfg.advertiseClientUrls,
      tickMs: cfg.tickMs,
      electionTicks: cfg.electionTicks,
      autoCompact: cfg.autoCompact,
      quotaBackendBytes: cfg.quotaBackendBytes,
      hashCheckMs: cfg.corruptCheckMs,
      snapshotEntries: cfg.snapshotEntries,
      snapshotCatchUpEntries: cfg.snapshotCatchUpEntries,
      backendBatchIntervalMs: cfg.backendBatchIntervalMs,
      backendBatchLimit: cfg.backendBatchLimit,
      // The hash check asks the other members over their client API.
      peerHashKV: (id, revision) => peerHashKV(store, cfg, id, revision),
      transport,
      onFatal: (err) => {
        process.stderr.write(`keelson store: fatal: ${err.message}\n`);
        process.exit(1);
      },
    });
  } catch (e) {
    await transport.close();
    process.stderr.write(`keelson store serve: ${(e as Error).message}\n`);
    return 2;
  }
  transport.serveMemberList(async () => (await store.members()).members);
  const served = withLeaseForwarding(store, cfg);
  const server = new EtcdServer({ store: served.store });
  const bound: string[] = [];
  try {
    for (const u of cfg.listenClientUrls) {
      const host = u.hostname.replace(/^\[|\]$/g, '');
      const port = await server.listen(host, Number(u.port), { tls: clientTlsOf(cfg) });
      bound.push(`${u.protocol}//${u.hostname}:${port}`);
    }
  } catch (e) {
    process.stderr.write(`keelson store serve: cannot listen for clients on ${cfg.listenClientUrls.map(String).join(',')}: ${(e as Error).message}\n`);
    await server.close();
    await store.close();
    await transport.close();
    return 2;
  }
  process.stdout.write(
    `keelson store: member ${memberId.toString(16)} (${cfg.name}) of cluster ${clusterId.toString(16)} ready; clients on ${bound.join(',')}, peers on ${transport.addresses().join(',')}, data in ${cfg.dataDir}\n`,
  );
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`keelson store: ${sig}, stopping\n`);
      void (async () => {
        try {
          await server.close();
          await served.close();
          await store.close();
          await transport.close();
          resolve(0);
        } catch (e) {
          process.stderr.write(`keelson store: error while stopping: ${(e as Error).message}\n`);
          resolve(1);
        }
      })();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/** The PEM files of --cert-file/--key-file/--trusted-ca-file, read for EtcdServer.listen. */
function clientTlsOf(cfg: ServeConfig): EtcdServerTls | undefined {
  const t = cfg.clientTls;
  if (t === undefined) return undefined;
  return {
    cert: fs.readFileSync(t.certFile),
    key: fs.readFileSync(t.keyFile),
    ...(t.caFile !== undefined ? { ca: fs.readFileSync(t.caFile) } : {}),
    clientCertAuth: t.clientCertAuth,
  };
}
