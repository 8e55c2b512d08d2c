/** Quorum of an etcd cluster of n voting members. */
export function quorum(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * Whether replacing one member keeps quorum throughout: after removing the dead member the
 * cluster has n-1 voters, of which `healthy` answer; adding the new one makes n voters with the
 * new one not yet started. Both states need `healthy >= quorum`.
 */
export function replacementKeepsQuorum(members: number, healthy: number): { ok: boolean; reason?: string } {
  if (healthy < quorum(members)) {
    return {
      ok: false,
      reason: `only ${healthy} of ${members} etcd members are healthy; quorum needs ${quorum(members)}; a membership change now would lose quorum`,
    };
  }
  const afterRemove = members - 1;
  if (healthy < quorum(afterRemove))
    return {
      ok: false,
      reason: `removing a member leaves ${healthy} healthy of ${afterRemove}; below quorum`,
    };
  // The new member is added as a voter before it has started: n voters, `healthy` live.
  if (healthy < quorum(afterRemove + 1)) {
    return {
      ok: false,
      reason: `adding a member before it starts needs ${quorum(afterRemove + 1)} healthy members; only ${healthy}`,
    };
  }
  return { ok: true };
}
