/**
 * What the REST API knows of coordinator HA: who leads, and every coordinator's presence. A
 * single coordinator (the embedded default) has no view: it is always the leader.
 */
export interface CoordinatorView {
  id: string;
  api?: string;
  role: 'leader' | 'follower';
  /** the engine epoch the leader runs under (followers: the leader's, as last published) */
  epoch?: number;
  /** the lease term (rises with every change of leader) */
  term?: number;
  /** leader: ms since its lease was last seen renewed, by the coordinator answering */
  leaseAgeMs?: number;
  host?: string;
  pid?: number;
  /** ms since its presence record was written */
  seenAgoMs?: number;
}

export interface HaView {
  /** this coordinator's id */
  readonly self: string;
  isLeader(): boolean;
  /** the leader as this coordinator last saw it */
  leader(): { id?: string; api?: string; term?: number };
  coordinators(): Promise<CoordinatorView[]>;
}
