/**
 * The one way to import @peculiar/x509 in Drover. The library needs a Reflect metadata polyfill
 * loaded before it (its DI container, tsyringe, throws at import time otherwise), and a crypto
 * provider; ESM evaluates imports in source order, so the polyfill import below runs first.
 * Import `x509` from here, never from '@peculiar/x509' directly.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Node's WebCrypto typed as the DOM `Crypto` that @peculiar/x509 expects. */
export const nodeCrypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(nodeCrypto);

export { x509 };
