// LogShape: the Raft log as the WAL's records define it, used twice - by
// recovery (with each entry's bytes) and by the live WAL (terms only) to
// refuse appends that recovery could not make sense of. Keeping one
// implementation for both is what guarantees that everything the live WAL
// accepts, recovery rebuilds identically.
//
// Rules (docs/wal.md, "Recovery"):
// - An entry at index i supersedes every entry at index >= i: a follower
//   truncating a conflicting suffix (Raft paper 5.3). It is accepted only when
//   snapshotIndex < i <= lastIndex + 1, so the log stays contiguous.
// - A snapshot marker (s, t) drops entries <= s. Entries after s survive only
//   when the log holds entry s with term t; otherwise the snapshot replaced a
//   conflicting or shorter log and the whole log goes, which is what the Raft
//   core does when it restores such a snapshot (Raft paper section 7). When
//   entry s lies in a released (missing) range its term cannot be checked;
//   the suffix is then kept, because dropping entries that may have been
//   acknowledged is the one mistake a WAL must not make.
// - Markers never move backwards.
//
// Entries below `first_` that are above the snapshot are "missing": they were
// in segments released by releaseBefore. That is legitimate only while a later
// snapshot marker is still to come; Finish() refuses a log that ends with a gap.
#pragma once
#include <cstdint>
#include <deque>
#include <string>

namespace keelson::wal {

struct LogEntryRef {
  uint64_t term = 0;
  const uint8_t* record = nullptr;  // entries-format record (header + data); null when live
  uint32_t recordBytes = 0;
};

class LogShape {
 public:
  // Invariant: first_ >= snapIndex_ + 1; entries_[k] has index first_ + k.
  uint64_t snapIndex() const { return snapIndex_; }
  uint64_t snapTerm() const { return snapTerm_; }
  uint64_t first() const { return first_; }
  uint64_t last() const { return first_ + entries_.size() - 1; }
  const std::deque<LogEntryRef>& entries() const { return entries_; }

  // Starts the log after released segments: entries below `firstIndex` are missing.
  void StartAt(uint64_t firstIndex) {
    entries_.clear();
    first_ = firstIndex;
  }

  // Returns an empty string when `index` may be appended, else why not.
  std::string CheckEntry(uint64_t index) const {
    if (index <= snapIndex_)
      return "entry index " + std::to_string(index) + " is at or below the snapshot index " + std::to_string(snapIndex_);
    if (index > last() + 1)
      return "entry index " + std::to_string(index) + " leaves a gap after the last index " + std::to_string(last());
    return std::string();
  }

  // Precondition: CheckEntry(index) is empty.
  void AddEntry(uint64_t index, const LogEntryRef& e) {
    if (index < first_) {
      entries_.clear();
      first_ = index;
    } else {
      entries_.resize(index - first_);
    }
    entries_.push_back(e);
  }

  std::string CheckSnapshot(uint64_t index) const {
    if (index < snapIndex_)
      return "snapshot index " + std::to_string(index) + " is below the previous snapshot index " + std::to_string(snapIndex_);
    return std::string();
  }

  // Precondition: CheckSnapshot(index) is empty.
  void AddSnapshot(uint64_t index, uint64_t term) {
    if (index < first_) {
      // Entry `index` is covered by the previous snapshot or missing: keep the suffix (see above).
    } else if (index <= last() && entries_[index - first_].term == term) {
      entries_.erase(entries_.begin(), entries_.begin() + (index - first_ + 1));
      first_ = index + 1;
    } else {
      entries_.clear();
      first_ = index + 1;
    }
    snapIndex_ = index;
    snapTerm_ = term;
  }

  // The last index AddSnapshot(index, term) would leave.
  uint64_t LastAfterSnapshot(uint64_t index, uint64_t term) const {
    if (index < first_) return last();
    if (index <= last() && entries_[index - first_].term == term) return last();
    return index;
  }

  // Term of entry `index` when known (present, or the snapshot's), else 0.
  uint64_t TermAt(uint64_t index) const {
    if (index == snapIndex_) return snapTerm_;
    if (index >= first_ && index <= last()) return entries_[index - first_].term;
    return 0;
  }

  // Forgets the record pointers (recovery's buffers are gone), keeping terms.
  void DropRecords() {
    for (auto& e : entries_) e.record = nullptr, e.recordBytes = 0;
  }

  // Number of missing entries between the snapshot and the first present entry.
  uint64_t MissingCount() const { return first_ - snapIndex_ - 1; }

 private:
  uint64_t snapIndex_ = 0;
  uint64_t snapTerm_ = 0;
  uint64_t first_ = 1;
  std::deque<LogEntryRef> entries_;
};

}  // namespace keelson::wal
