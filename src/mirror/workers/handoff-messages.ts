/**
 * The messages by which a mirror's primary hands accepted connections to its workers (over the cluster's
 * IPC channel). A worker says it is ready once its server runs, and when it stops taking connections; it says it took each connection as soon as
 * it has it, so the primary closes its own copy of the socket then, and only then.
 */
export const HANDOFF = 'mirrorgate:handoff';

export type HandoffMessage =
  | { type: typeof HANDOFF; kind: 'ready' }
  | { type: typeof HANDOFF; kind: 'closing' }
  | { type: typeof HANDOFF; kind: 'connection'; id: number }
  | { type: typeof HANDOFF; kind: 'taken'; id: number };

export function isHandoffMessage(message: unknown): message is HandoffMessage {
  const m = message as Partial<HandoffMessage> | null;
  return typeof m === 'object' && m !== null && m.type === HANDOFF && (m.kind === 'ready' || m.kind === 'closing' || ((m.kind === 'connection' || m.kind === 'taken') && typeof m.id === 'number'));
}

/** The environment variable that gives a worker the address its primary listens on (JSON of an AddressInfo). */
export const PRIMARY_ADDRESS_ENV = 'MIRRORGATE_PRIMARY_ADDRESS';
