// The seam between the Raft driver and the network. The driver hands the
// transport the messages of a Ready, grouped per destination as Buffers of
// concatenated messages (docs/native-format.md); the transport delivers
// inbound batches back the same way. Raft tolerates loss, duplication and
// reordering, so delivery is best effort: a transport may drop a batch (a
// full queue, a broken connection) but must never corrupt or split one
// message. Implementations: MemoryTransport (in one process, tests and
// 3-member embedded clusters) and the TCP transport (separate processes).
//
// Bounds: every implementation states its per-peer queue bound in bytes and
// drops (and reports the peer unreachable) beyond it rather than growing.

export interface TransportHandler {
  /**
   * Inbound messages from one peer: one or more concatenated messages, all
   * addressed to this member. Called on the JS thread; must not throw for bad
   * input (the driver refuses a malformed batch with ERR_BAD_MESSAGE and
   * carries on).
   */
  onMessages(from: number, data: Buffer): void;
  /** A peer could not be reached (connect failed, queue overflowed, connection lost). */
  onUnreachable(peer: number): void;
  /**
   * Outcome of sending a message batch that carried a MsgSnap: ok when the
   * peer received all of it, false when the send failed part way.
   */
  onSnapshotStatus(peer: number, ok: boolean): void;
}

export interface Transport {
  /** Register the driver; called once before any send. */
  start(handler: TransportHandler): void;
  /**
   * Queue concatenated messages for one peer. Never blocks and never throws
   * for an unknown or unreachable peer (the batch is dropped and the peer
   * reported unreachable). `hasSnapshot` is set when the batch carries a
   * MsgSnap, so the transport reports its outcome with onSnapshotStatus.
   */
  send(to: number, data: Buffer, hasSnapshot?: boolean): void;
  /**
   * Optional: start writing what send() queued now rather than at the end of
   * the current event-loop turn (the driver calls it once per Ready).
   */
  flush?(): void;
  /** Learn or update how to reach a member (peer URLs for TCP; ignored in memory). */
  addPeer(id: number, urls: string[]): void;
  removePeer(id: number): void;
  /** Stop sending and receiving; pending batches are dropped. */
  close(): Promise<void>;
}
