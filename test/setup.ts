import { afterAll } from 'vitest';
import { runFileCleanups } from './helpers/proc.js';

afterAll(async () => {
  await runFileCleanups();
});
