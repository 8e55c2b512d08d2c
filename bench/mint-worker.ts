// Worker for bench/lib.ts `mintNodeUsers`: opens a BusAuth on a copy of the bus's keys and mints
// node user JWTs with `BusAuth.nodeUser`, exactly as the coordinator does at join. (Minting signs
// with tweetnacl in pure JS, tens of ms each on a slow machine: 5,000 of them are spread over the
// cores before anything is measured.)
import { parentPort, workerData } from 'node:worker_threads';
import { BusAuth } from '../coordinator/bus/auth.js';

const { dir, items } = workerData as { dir: string; items: Array<{ nodeId: string; publicKey: string }> };
const auth = await BusAuth.open(dir);
const jwts: string[] = [];
for (const i of items) jwts.push((await auth.nodeUser(i.nodeId, i.publicKey)).jwt);
parentPort!.postMessage(jwts);
