/**
 * drover-standin: a SIMULATED Kubernetes component for the lab, used only when the real binary is
 * not installed. It is not Kubernetes. It accepts the flags Drover's catalog renders, listens on
 * the same address and port, serves /livez, /readyz and /healthz (HTTPS where the real component
 * does, with a self-signed or the given serving certificate), and checks its dependencies:
 * - kube-apiserver needs one of `--etcd-servers` to answer /health;
 * - the others need the API endpoint named in their `--kubeconfig` to answer /livez.
 * When a dependency is gone, the health endpoints answer 503 naming it.
 *
 * Usage: drover-standin <component> [the component's flags…]
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import * as x509 from '@peculiar/x509';
import YAML from 'yaml';

type Component =
  | 'kube-apiserver'
  | 'kube-scheduler'
  | 'kube-controller-manager'
  | 'kubelet'
  | 'kube-proxy'
  | 'workload-controller-manager'
  | 'dashboard';

interface Listen {
  host: string;
  port: number;
  tls: boolean;
}

const DEFAULTS: Record<Component, Listen> = {
  'kube-apiserver': { host: '0.0.0.0', port: 6443, tls: true },
  'kube-scheduler': { host: '0.0.0.0', port: 10259, tls: true },
  'kube-controller-manager': { host: '0.0.0.0', port: 10257, tls: true },
  kubelet: { host: '0.0.0.0', port: 10248, tls: false },
  'kube-proxy': { host: '0.0.0.0', port: 10256, tls: false },
  // The real one serves no health endpoint and takes no address flag: the stand-in's own endpoint
  // (for humans) takes a free loopback port, so several on one machine (the lab) never collide.
  'workload-controller-manager': { host: '127.0.0.1', port: 0, tls: false },
  dashboard: { host: '0.0.0.0', port: 9090, tls: false },
};

export function parseFlags(argv: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        flags.set(a.slice(2), next);
        i++;
      } else flags.set(a.slice(2), 'true');
    }
  }
  return flags;
}

function splitHostPort(s: string): { host: string; port?: number } {
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(s);
  return { host: m?.[1] || '0.0.0.0', port: m?.[2] ? Number(m[2]) : undefined };
}

/** Where the real component listens for health, from its flags (and kubelet's config file). */
export function listenFor(component: Component, f: Map<string, string>): Listen {
  const d = { ...DEFAULTS[component] };
  switch (component) {
    case 'kube-apiserver':
    case 'kube-scheduler':
    case 'kube-controller-manager':
      return {
        host: f.get('bind-address') ?? f.get('advertise-address') ?? d.host,
        port: Number(f.get('secure-port') ?? d.port),
        tls: true,
      };
    case 'kubelet': {
      let host = f.get('healthz-bind-address') ?? f.get('address') ?? d.host;
      let port = Number(f.get('healthz-port') ?? d.port);
      const cfg = f.get('config');
      if (cfg && existsSync(cfg)) {
        const doc = YAML.parse(readFileSync(cfg, 'utf8')) as {
          healthzBindAddress?: string;
          healthzPort?: number;
          address?: string;
        } | null;
        host = doc?.healthzBindAddress ?? doc?.address ?? host;
        port = doc?.healthzPort ?? port;
      }
      return { host, port, tls: false };
    }
    case 'kube-proxy': {
      const hp = splitHostPort(f.get('healthz-bind-address') ?? `${d.host}:${d.port}`);
      return { host: hp.host, port: Number(f.get('healthz-port') ?? hp.port ?? d.port), tls: false };
    }
    default: {
      const hp = f.get('healthz-bind-address') ? splitHostPort(f.get('healthz-bind-address')!) : undefined;
      return {
        host: hp?.host ?? f.get('bind-address') ?? f.get('address') ?? d.host,
        port: Number(f.get('port') ?? f.get('secure-port') ?? hp?.port ?? d.port),
        tls: false,
      };
    }
  }
}

function kubeconfigServer(path: string | undefined): string | undefined {
  if (!path || !existsSync(path)) return undefined;
  try {
    const doc = YAML.parse(readFileSync(path, 'utf8')) as {
      clusters?: Array<{ cluster?: { server?: string } }>;
    } | null;
    return doc?.clusters?.[0]?.cluster?.server;
  } catch {
    return undefined;
  }
}

/** A client certificate the probe presents (etcd over mutual TLS: --etcd-cafile/certfile/keyfile). */
interface ProbeTls {
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * Kept-alive connections for the dependency checks: a check every second would otherwise make a
 * TLS handshake (with a client certificate, for etcd) per dependency per second, which a loaded
 * machine can take longer than the timeout for.
 */
const keepAlive = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

function probe(url: string, path: string, tls: ProbeTls = {}, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(path, url);
    } catch {
      resolve(false);
      return;
    }
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      {
        method: 'GET',
        timeout: timeoutMs,
        agent: u.protocol === 'https:' ? keepAlive.https : keepAlive.http,
        // verified against the CA when one is given (etcd), else any certificate (a stand-in's own)
        rejectUnauthorized: tls.ca !== undefined,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
      },
      (res) => {
        res.resume();
        resolve((res.statusCode ?? 500) < 400);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function selfSigned(host: string): Promise<{ cert: string; key: string }> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const isIp = /^[\d.]+$/.test(host) || host.includes(':');
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Date.now().toString(16),
    name: 'CN=drover-standin (SIMULATED)',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * 86400_000),
    keys: keys as CryptoKeyPair,
    signingAlgorithm: alg,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        isIp ? { type: 'ip', value: host } : { type: 'dns', value: host },
        { type: 'dns', value: 'localhost' },
      ]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const key = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trim()}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString('pem'), key };
}

async function main(): Promise<void> {
  const [component, ...rest] = process.argv.slice(2) as [Component | undefined, ...string[]];
  if (!component || !(component in DEFAULTS)) {
    process.stderr.write(
      `drover-standin: first argument must be one of ${Object.keys(DEFAULTS).join(', ')}\n`,
    );
    process.exit(2);
  }
  const flags = parseFlags(rest);
  const listen = listenFor(component, flags);
  const deps: Array<{ name: string; urls: string[]; path: string; tls?: () => ProbeTls }> = [];
  if (component === 'kube-apiserver') {
    const etcd = (flags.get('etcd-servers') ?? '').split(',').filter(Boolean);
    // etcd over mutual TLS: present the apiserver-etcd-client certificate, as kube-apiserver does
    const file = (flag: string) => {
      const p = flags.get(flag);
      return p && existsSync(p) ? readFileSync(p, 'utf8') : undefined;
    };
    deps.push({
      name: 'etcd',
      urls: etcd,
      path: '/health',
      tls: () => ({ ca: file('etcd-cafile'), cert: file('etcd-certfile'), key: file('etcd-keyfile') }),
    });
  } else if (component !== 'dashboard') {
    // Arktos passes one kubeconfig per partition in a single, space-separated --kubeconfig
    const kubeconfigs = [
      ...(flags.get('kubeconfig') ?? '').split(/\s+/),
      ...(flags.get('kubeconfigs') ?? '').split(','),
    ].filter((p): p is string => !!p);
    const servers = kubeconfigs.map(kubeconfigServer).filter((s): s is string => !!s);
    deps.push({ name: 'kube-apiserver', urls: servers.length ? servers : [], path: '/livez' });
  }
  const state = { healthy: deps.length === 0, reason: 'checking dependencies' };
  const check = async () => {
    for (const d of deps) {
      if (d.urls.length === 0) {
        state.healthy = false;
        state.reason = `no ${d.name} endpoint configured`;
        return;
      }
      const tls = d.tls?.() ?? {};
      const ok = await Promise.all(d.urls.map((u) => probe(u, d.path, tls)));
      if (!ok.some(Boolean)) {
        state.healthy = false;
        state.reason = `cannot reach ${d.name} at ${d.urls.join(',')}`;
        return;
      }
    }
    state.healthy = true;
    state.reason = 'ok';
  };
  await check();
  setInterval(() => void check(), 1000).unref();

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    res.setHeader('x-drover-simulated', 'true');
    if (path === '/livez' || path === '/readyz' || path === '/healthz') {
      res.writeHead(state.healthy ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(state.healthy ? 'ok' : `[-]${state.reason} (SIMULATED ${component})`);
      return;
    }
    if (path === '/version') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          gitVersion: 'v0.0.0-drover-standin',
          simulated: true,
          component,
          healthy: state.healthy,
        }),
      );
      return;
    }
    res.writeHead(state.healthy ? 200 : 503, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'Status',
        simulated: true,
        component,
        message: state.healthy ? 'ok' : state.reason,
      }),
    );
  };
  let server: ReturnType<typeof createHttpServer>;
  if (listen.tls) {
    const certFile = flags.get('tls-cert-file');
    const keyFile = flags.get('tls-private-key-file');
    const creds =
      certFile && keyFile && existsSync(certFile) && existsSync(keyFile)
        ? { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') }
        : await selfSigned(listen.host);
    server = createHttpsServer(creds, handler) as unknown as ReturnType<typeof createHttpServer>;
  } else server = createHttpServer(handler);
  server.on('error', (err) => {
    process.stderr.write(
      `drover-standin ${component}: cannot listen on ${listen.host}:${listen.port}: ${err.message}\n`,
    );
    process.exit(1);
  });
  server.listen(listen.port, listen.host, () => {
    const port = (server.address() as { port: number } | null)?.port ?? listen.port;
    process.stdout.write(
      `SIMULATED ${component} (drover-standin, not the real component) listening on ${listen.tls ? 'https' : 'http'}://${listen.host}:${port}\n`,
    );
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
