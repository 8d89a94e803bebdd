// The in-memory Raft log.
//
// Entries live in one contiguous arena in the entries wire format, with a
// small fixed-size descriptor per entry (term, byte position, data length,
// type). Appending copies bytes once; handing entries to the host or to a
// follower copies one contiguous byte range; no entry ever owns a heap
// allocation. Dropping a prefix (compaction) only moves a head cursor; the
// dead bytes are reclaimed in one memmove once they make up more than half of
// the arena, so compaction is amortized O(1) per entry.
//
// Indexes: the log holds entries (offset, lastIndex()]. `offset` is the index
// of the last entry that was compacted away or covered by a snapshot; its term
// is kept so that a consistency check against it still works.
// Invariant: offset <= lastIndex(); entry i has index offset + (i - head) + 1.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "raft/codec.h"
#include "raft/common.h"

namespace keelson::raft {

struct EntryMeta {
  Term term;
  uint64_t pos;  // logical byte position of the record header in the arena
  uint32_t len;  // data length
  EntryType type;
};

class RaftLog {
 public:
  Index offset() const { return offset_; }
  Term offsetTerm() const { return offsetTerm_; }
  Index firstIndex() const { return offset_ + 1; }
  Index lastIndex() const { return offset_ + (meta_.size() - head_); }
  Term lastTerm() const { return lastIndex() == offset_ ? offsetTerm_ : meta_.back().term; }

  // The term of entry i; false when i is compacted away or beyond the log.
  bool term(Index i, Term* t) const;
  // The term of entry i, or 0 when unknown (no real entry has term 0).
  Term termOrZero(Index i) const {
    Term t = 0;
    return term(i, &t) ? t : 0;
  }
  bool matchTerm(Index i, Term t) const {
    Term have;
    return term(i, &have) && have == t;
  }
  // Raft paper 5.4.1: a candidate's log is at least as up to date as ours.
  bool isUpToDate(Index i, Term t) const { return t > lastTerm() || (t == lastTerm() && i >= lastIndex()); }

  const EntryMeta& meta(Index i) const {
    KEELSON_ASSERT(i > offset_ && i <= lastIndex(), "log entry out of range");
    return meta_[head_ + (i - offset_ - 1)];
  }
  const uint8_t* data(Index i) const {
    const EntryMeta& m = meta(i);
    return reinterpret_cast<const uint8_t*>(arena_.data()) + (m.pos - arenaBase_) + kEntryHeaderBytes;
  }

  // Appends one entry at lastIndex() + 1.
  void append(Term term, EntryType type, const uint8_t* data, uint32_t len);
  // Appends validated entry records whose first index is lastIndex() + 1.
  void appendRecords(const uint8_t* p, size_t n, uint32_t count);
  // Drops every entry after i. Requires offset <= i.
  void truncateAfter(Index i);
  // The contiguous wire bytes of entries [lo, hi]; pointers are valid until
  // the next mutation.
  std::pair<const uint8_t*, size_t> bytes(Index lo, Index hi) const;
  // The largest hi in [lo, maxHi] such that entries [lo, hi] take at most
  // maxBytes of wire bytes; at least lo, so that progress is always possible.
  Index limitBySize(Index lo, Index maxHi, uint64_t maxBytes) const;
  // Drops entries below i (keeps i). Requires offset < i <= lastIndex() + 1.
  void compactTo(Index i);
  // Replaces the whole log with an empty log after (index, term).
  void reset(Index index, Term term);

 private:
  uint64_t endPos() const { return arenaBase_ + arena_.size(); }
  void reclaim();

  Index offset_ = 0;
  Term offsetTerm_ = 0;
  std::string arena_;
  uint64_t arenaBase_ = 0;  // logical position of arena_[0]
  std::vector<EntryMeta> meta_;
  size_t head_ = 0;  // meta_[head_] describes entry offset_ + 1
};

}  // namespace keelson::raft
