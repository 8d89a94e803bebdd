// The leader's view of one member's replication (Raft paper 5.3, thesis
// 3.5 and 4.2.1 for learners), with flow control:
//
//   probe:     the leader does not know where the follower's log matches.
//              It sends one append at a time and waits for the answer (or a
//              heartbeat response) before sending the next.
//   replicate: the logs match up to `match`; appends are pipelined
//              optimistically, bounded by the inflight window (messages AND
//              bytes), and `next` runs ahead of `match`.
//   snapshot:  the follower needs entries that were compacted away; a
//              snapshot is on its way and nothing else is sent until the host
//              reports the outcome (or the follower acknowledges).
#pragma once

#include <utility>
#include <vector>

#include "raft/common.h"

namespace keelson::raft {

// A ring of in-flight appends: (last index of the append, its bytes).
// Invariant: count_ <= maxCount_ and bytes_ is the sum over the ring.
class Inflights {
 public:
  Inflights(size_t maxCount, uint64_t maxBytes) : maxCount_(maxCount), maxBytes_(maxBytes) {}
  void add(Index last, uint64_t bytes);
  // Frees every append whose last index is <= idx (they were acknowledged).
  void freeLE(Index idx);
  bool full() const { return count_ >= maxCount_ || (maxBytes_ != 0 && bytes_ >= maxBytes_); }
  size_t count() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  void reset() {
    start_ = 0;
    count_ = 0;
    bytes_ = 0;
  }

 private:
  std::vector<std::pair<Index, uint64_t>> ring_;
  size_t start_ = 0;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
  size_t maxCount_;
  uint64_t maxBytes_;
};

enum class ProgressState : uint8_t { kProbe, kReplicate, kSnapshot };

struct Progress {
  Progress(size_t maxInflightMsgs, uint64_t maxInflightBytes) : inflights(maxInflightMsgs, maxInflightBytes) {}

  // Invariant: match < next.
  Index match = 0;
  Index next = 1;
  ProgressState state = ProgressState::kProbe;
  // In snapshot state: the index of the snapshot being sent.
  Index pendingSnapshot = 0;
  // Heard from within the current election timeout (check-quorum).
  bool recentActive = false;
  // In probe state: a probe is outstanding, wait for its answer.
  bool msgAppFlowPaused = false;
  bool isLearner = false;
  // Heartbeat responses seen while the member made no progress: with the
  // inflight window full (replicate) or a snapshot outstanding (snapshot).
  // Past a bound the leader assumes the messages were lost and probes again
  // instead of waiting forever for an answer (or a host report) that will
  // never come.
  uint32_t stalledHeartbeats = 0;
  Inflights inflights;

  void becomeProbe();
  void becomeReplicate();
  void becomeSnapshot(Index snapshotIndex);
  // The follower acknowledged entries up to n; false when that is stale.
  bool maybeUpdate(Index n);
  // The follower rejected an append after `rejected`; its log may match at
  // most up to `matchHint`. False when the rejection is stale.
  bool maybeDecrTo(Index rejected, Index matchHint);
  bool isPaused() const;
  // An append of `count` entries ending at `last` with `bytes` was sent.
  void sentEntries(Index last, size_t count, uint64_t bytes);

 private:
  void resetState(ProgressState s);
};

const char* ProgressStateName(ProgressState s);

}  // namespace keelson::raft
