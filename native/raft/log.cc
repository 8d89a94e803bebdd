#include "raft/log.h"

namespace keelson::raft {

namespace {
// Dead space below this is never worth a memmove.
constexpr size_t kReclaimMinBytes = 1 << 20;
constexpr size_t kReclaimMinEntries = 4096;
}  // namespace

bool RaftLog::term(Index i, Term* t) const {
  if (i == offset_) {
    *t = offsetTerm_;
    return true;
  }
  if (i < offset_ || i > lastIndex()) return false;
  *t = meta_[head_ + (i - offset_ - 1)].term;
  return true;
}

void RaftLog::append(Term term, EntryType type, const uint8_t* data, uint32_t len) {
  KEELSON_ASSERT(term >= lastTerm(), "appending an entry with a term below the last term");
  uint64_t pos = endPos();
  AppendEntryRecord(arena_, lastIndex() + 1, term, type, data, len);
  meta_.push_back(EntryMeta{term, pos, len, type});
}

void RaftLog::appendRecords(const uint8_t* p, size_t n, uint32_t count) {
  uint64_t base = endPos();
  Index expect = lastIndex() + 1;
  arena_.append(reinterpret_cast<const char*>(p), n);
  size_t off = 0;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t* h = p + off;
    KEELSON_ASSERT(LoadU64(h) == expect + i, "appended records are not consecutive with the log");
    Term t = LoadU64(h + 8);
    KEELSON_ASSERT(t >= lastTerm(), "appended record term goes down");
    uint32_t len = LoadU32(h + 17);
    meta_.push_back(EntryMeta{t, base + off, len, static_cast<EntryType>(h[16])});
    off += kEntryHeaderBytes + len;
  }
  KEELSON_ASSERT(off == n, "appended records do not fill the bytes given");
}

void RaftLog::truncateAfter(Index i) {
  KEELSON_ASSERT(i >= offset_, "truncating below the compacted log");
  if (i >= lastIndex()) return;
  const EntryMeta& first = meta(i + 1);
  arena_.resize(first.pos - arenaBase_);
  meta_.resize(head_ + (i - offset_));
}

std::pair<const uint8_t*, size_t> RaftLog::bytes(Index lo, Index hi) const {
  if (hi < lo) return {nullptr, 0};
  const EntryMeta& a = meta(lo);
  const EntryMeta& b = meta(hi);
  uint64_t end = b.pos + kEntryHeaderBytes + b.len;
  return {reinterpret_cast<const uint8_t*>(arena_.data()) + (a.pos - arenaBase_), static_cast<size_t>(end - a.pos)};
}

Index RaftLog::limitBySize(Index lo, Index maxHi, uint64_t maxBytes) const {
  KEELSON_ASSERT(lo <= maxHi, "empty range");
  uint64_t start = meta(lo).pos;
  // Entries are laid out in order, so the byte span of [lo, hi] is monotonic
  // in hi and a binary search finds the bound without walking every entry.
  Index good = lo;
  Index l = lo + 1, r = maxHi;
  while (l <= r) {
    Index mid = l + (r - l) / 2;
    const EntryMeta& m = meta(mid);
    if (m.pos + kEntryHeaderBytes + m.len - start <= maxBytes) {
      good = mid;
      l = mid + 1;
    } else {
      r = mid - 1;
    }
  }
  return good;
}

void RaftLog::compactTo(Index i) {
  KEELSON_ASSERT(i > offset_ && i <= lastIndex() + 1, "compaction index out of range");
  Term t = termOrZero(i - 1);
  size_t drop = static_cast<size_t>(i - 1 - offset_);
  head_ += drop;
  offset_ = i - 1;
  offsetTerm_ = t;
  reclaim();
}

void RaftLog::reclaim() {
  uint64_t livePos = head_ < meta_.size() ? meta_[head_].pos : endPos();
  size_t deadBytes = static_cast<size_t>(livePos - arenaBase_);
  if (deadBytes >= kReclaimMinBytes && deadBytes * 2 >= arena_.size()) {
    arena_.erase(0, deadBytes);
    arenaBase_ = livePos;
  }
  if (head_ >= kReclaimMinEntries && head_ * 2 >= meta_.size()) {
    meta_.erase(meta_.begin(), meta_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void RaftLog::reset(Index index, Term term) {
  offset_ = index;
  offsetTerm_ = term;
  arenaBase_ = endPos();
  arena_.clear();
  meta_.clear();
  head_ = 0;
}

}  // namespace keelson::raft
