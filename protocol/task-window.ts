/**
 * How long a signed task is valid. The coordinator stamps `expiresAt = issuedAt + timeoutMs +
 * TASK_REPLY_MARGIN_MS`: exactly as long as it waits for the agent's answer, so a task that
 * arrives after the coordinator gave up on it never starts. The agent accepts a task only while
 * `issuedAt - skew <= now <= expiresAt + skew`, and refuses windows longer than
 * TASK_MAX_WINDOW_MS, so the set of task ids it must remember (to refuse replays) stays bounded.
 */
export const TASK_REPLY_MARGIN_MS = 2000;
/** clock skew tolerated between the coordinator's and the agent's clocks */
export const TASK_CLOCK_SKEW_MS = 30_000;
/** the longest `expiresAt - issuedAt` an agent accepts: the longest task timeout plus a margin */
export const TASK_MAX_WINDOW_MS = 3_600_000 + 60_000;
