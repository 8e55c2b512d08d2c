import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseListen, startApiServer } from '../../coordinator/api/index.js';
import { silentLogger } from '../../lib/logger.js';
import { startTestApi } from '../helpers/api.js';
import { openssl } from '../helpers/pki.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const run = promisify(execFile);
const DROVER = join(process.cwd(), 'dist', 'drover.mjs');

function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'api.crt');
  const key = join(dir, 'api.key');
  const r = openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    '/CN=drover-test',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  if (r.code !== 0) throw new Error(r.out);
  return { cert, key };
}

function httpsGet(url: string, ca: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('API server start-up', () => {
  it('parses listen addresses and refuses bad ones', () => {
    expect(parseListen('127.0.0.1:7480')).toEqual({ host: '127.0.0.1', port: 7480 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':7480')).toEqual({ host: '0.0.0.0', port: 7480 });
    expect(() => parseListen('7480')).toThrow(/api.listen "7480" is not host:port/);
    expect(() => parseListen('x:99999')).toThrow(/not host:port/);
  });

  it('serves HTTPS with api.tls, bootstraps the admin token once (0600), and the CLI trusts the CA it is given', async () => {
    const t = await startTestApi();
    const dir = tempDir('api-tls');
    try {
      const tls = selfSigned(dir);
      const s = await startApiServer({
        listen: '127.0.0.1:0',
        tls,
        dataDir: dir,
        engine: t.engine,
        logger: silentLogger,
        natsConnected: () => true,
      });
      try {
        expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        expect(statSync(s.adminTokenFile).mode & 0o777).toBe(0o600);
        expect(statSync(join(dir, 'tokens.json')).mode & 0o777).toBe(0o600);
        const admin = readFileSync(s.adminTokenFile, 'utf8').trim();
        expect(readFileSync(join(dir, 'tokens.json'), 'utf8')).not.toContain(admin);
        const r = await httpsGet(`${s.url}/v1/status`, readFileSync(tls.cert, 'utf8'), admin);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body)).toMatchObject({ converged: true });

        const env = { PATH: process.env.PATH, HOME: dir, DROVER_URL: s.url, DROVER_TOKEN: admin };
        const untrusted = await run(process.execPath, [DROVER, 'status'], { env }).catch((e) => e);
        expect(untrusted.code).toBe(1);
        expect(untrusted.stderr).toMatch(/TLS certificate[\s\S]*not trusted[\s\S]*NODE_EXTRA_CA_CERTS/);
        const trusted = await run(process.execPath, [DROVER, 'status'], {
          env: { ...env, NODE_EXTRA_CA_CERTS: tls.cert },
        });
        expect(trusted.stdout).toMatch(/^converged/);
      } finally {
        await s.close();
      }
      // second start: the same tokens, no new admin token
      const before = readFileSync(join(dir, 'admin-token'), 'utf8');
      const s2 = await startApiServer({
        listen: '127.0.0.1:0',
        dataDir: dir,
        engine: t.engine,
        logger: silentLogger,
        natsConnected: () => true,
      });
      expect(s2.url).toMatch(/^http:/);
      expect(s2.tokens.list()).toHaveLength(1);
      expect(readFileSync(join(dir, 'admin-token'), 'utf8')).toBe(before);
      await s2.close();
    } finally {
      await t.close();
      rmrf(dir);
    }
  });

  it('refuses half a TLS configuration with a message naming the missing part', async () => {
    const t = await startTestApi();
    const dir = tempDir('api-tls');
    try {
      await expect(
        startApiServer({
          listen: '127.0.0.1:0',
          tls: { cert: join(dir, 'x.crt') },
          dataDir: dir,
          engine: t.engine,
          logger: silentLogger,
          natsConnected: () => true,
        }),
      ).rejects.toThrow(/api.tls needs both cert and key/);
      await expect(
        startApiServer({
          listen: '127.0.0.1:0',
          tls: { cert: join(dir, 'x.crt'), key: join(dir, 'x.key') },
          dataDir: dir,
          engine: t.engine,
          logger: silentLogger,
          natsConnected: () => true,
        }),
      ).rejects.toThrow(/cannot read api.tls.cert .*x\.crt/);
    } finally {
      await t.close();
      rmrf(dir);
    }
  });
});
