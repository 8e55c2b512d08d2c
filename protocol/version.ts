/** The protocol version every message carries in its `v` field. Bump on an incompatible change. */
export const PROTOCOL_VERSION = 1 as const;
export const SUPPORTED_VERSIONS: readonly number[] = [PROTOCOL_VERSION];
