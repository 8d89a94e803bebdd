#include "raft/progress.h"

#include <algorithm>

namespace keelson::raft {

void Inflights::add(Index last, uint64_t bytes) {
  KEELSON_ASSERT(count_ < maxCount_, "adding to a full inflight window");
  if (count_ == ring_.size()) {
    // Grow lazily: most followers never use the whole window. Unroll the
    // ring first so that growing keeps it in order.
    if (start_ != 0) {
      std::rotate(ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(start_), ring_.end());
      start_ = 0;
    }
    ring_.resize(std::min(maxCount_, std::max<size_t>(ring_.size() * 2, 8)));
  }
  size_t slot = (start_ + count_) % ring_.size();
  ring_[slot] = {last, bytes};
  count_++;
  bytes_ += bytes;
}

void Inflights::freeLE(Index idx) {
  while (count_ > 0 && ring_[start_].first <= idx) {
    bytes_ -= ring_[start_].second;
    start_ = (start_ + 1) % ring_.size();
    count_--;
  }
  if (count_ == 0) start_ = 0;
}

void Progress::resetState(ProgressState s) {
  msgAppFlowPaused = false;
  pendingSnapshot = 0;
  stalledHeartbeats = 0;
  state = s;
  inflights.reset();
}

void Progress::becomeProbe() {
  if (state == ProgressState::kSnapshot) {
    Index pending = pendingSnapshot;
    resetState(ProgressState::kProbe);
    next = std::max(match + 1, pending + 1);
  } else {
    resetState(ProgressState::kProbe);
    next = match + 1;
  }
}

void Progress::becomeReplicate() {
  resetState(ProgressState::kReplicate);
  next = match + 1;
}

void Progress::becomeSnapshot(Index snapshotIndex) {
  resetState(ProgressState::kSnapshot);
  pendingSnapshot = snapshotIndex;
  next = snapshotIndex + 1;
}

bool Progress::maybeUpdate(Index n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    msgAppFlowPaused = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::maybeDecrTo(Index rejected, Index matchHint) {
  if (state == ProgressState::kReplicate) {
    // A rejection at or below match is stale (reordered); otherwise the
    // optimistic pipeline went wrong, restart from just after match.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe state only the answer to the outstanding probe counts.
  if (next - 1 != rejected) return false;
  next = std::max<Index>(std::min(rejected, matchHint + 1), match + 1);
  msgAppFlowPaused = false;
  return true;
}

bool Progress::isPaused() const {
  switch (state) {
    case ProgressState::kProbe: return msgAppFlowPaused;
    case ProgressState::kReplicate: return inflights.full();
    case ProgressState::kSnapshot: return true;
  }
  return true;
}

void Progress::sentEntries(Index last, size_t count, uint64_t bytes) {
  switch (state) {
    case ProgressState::kReplicate:
      if (count > 0) {
        next = last + 1;
        inflights.add(last, bytes);
      }
      break;
    case ProgressState::kProbe:
      // Any append in probe state is a probe: wait for its answer.
      msgAppFlowPaused = true;
      break;
    case ProgressState::kSnapshot:
      KEELSON_ASSERT(false, "sending entries to a member in snapshot state");
  }
}

const char* ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe: return "probe";
    case ProgressState::kReplicate: return "replicate";
    case ProgressState::kSnapshot: return "snapshot";
  }
  return "probe";
}

}  // namespace keelson::raft
