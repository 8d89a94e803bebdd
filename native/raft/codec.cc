#include "raft/codec.h"

#include <algorithm>

namespace keelson::raft {

namespace {

constexpr size_t kSnapshotFixedBytes = 8 + 8 + 1 + 4 * 4;

bool InRange(uint64_t v) { return v <= kMaxSafeInteger; }

std::string Fmt(const char* what, uint64_t a) { return std::string(what) + " " + std::to_string(a); }

void PutIds(std::string& out, const std::vector<Id>& ids) {
  uint8_t b[8];
  for (Id id : ids) {
    StoreU64(b, id);
    out.append(reinterpret_cast<const char*>(b), 8);
  }
}

// Reads `count` ids, checking each is a valid member id and the list has no
// duplicates. The list is returned sorted.
bool GetIds(const uint8_t* p, uint32_t count, std::vector<Id>* out) {
  out->clear();
  out->reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Id id = LoadU64(p + 8 * size_t{i});
    if (id == 0 || !InRange(id)) return false;
    out->push_back(id);
  }
  std::sort(out->begin(), out->end());
  return std::adjacent_find(out->begin(), out->end()) == out->end();
}

}  // namespace

bool IsWireType(uint8_t t) {
  switch (static_cast<MsgType>(t)) {
    case MsgType::kProp:
    case MsgType::kApp:
    case MsgType::kAppResp:
    case MsgType::kVote:
    case MsgType::kVoteResp:
    case MsgType::kSnap:
    case MsgType::kHeartbeat:
    case MsgType::kHeartbeatResp:
    case MsgType::kTransferLeader:
    case MsgType::kTimeoutNow:
    case MsgType::kReadIndex:
    case MsgType::kReadIndexResp:
    case MsgType::kPreVote:
    case MsgType::kPreVoteResp:
      return true;
  }
  return false;
}

const char* MsgTypeName(MsgType t) {
  switch (t) {
    case MsgType::kProp: return "MsgProp";
    case MsgType::kApp: return "MsgApp";
    case MsgType::kAppResp: return "MsgAppResp";
    case MsgType::kVote: return "MsgVote";
    case MsgType::kVoteResp: return "MsgVoteResp";
    case MsgType::kSnap: return "MsgSnap";
    case MsgType::kHeartbeat: return "MsgHeartbeat";
    case MsgType::kHeartbeatResp: return "MsgHeartbeatResp";
    case MsgType::kTransferLeader: return "MsgTransferLeader";
    case MsgType::kTimeoutNow: return "MsgTimeoutNow";
    case MsgType::kReadIndex: return "MsgReadIndex";
    case MsgType::kReadIndexResp: return "MsgReadIndexResp";
    case MsgType::kPreVote: return "MsgPreVote";
    case MsgType::kPreVoteResp: return "MsgPreVoteResp";
  }
  return "MsgUnknown";
}

std::vector<MsgType> AllMsgTypes() {
  return {MsgType::kProp,      MsgType::kApp,           MsgType::kAppResp,        MsgType::kVote,
          MsgType::kVoteResp,  MsgType::kSnap,          MsgType::kHeartbeat,      MsgType::kHeartbeatResp,
          MsgType::kTransferLeader, MsgType::kTimeoutNow, MsgType::kReadIndex,  MsgType::kReadIndexResp,
          MsgType::kPreVote,   MsgType::kPreVoteResp};
}

void AppendEntryRecord(std::string& out, Index index, Term term, EntryType type, const uint8_t* data, uint32_t len) {
  uint8_t h[kEntryHeaderBytes];
  StoreU64(h, index);
  StoreU64(h + 8, term);
  h[16] = static_cast<uint8_t>(type);
  StoreU32(h + 17, len);
  out.append(reinterpret_cast<const char*>(h), kEntryHeaderBytes);
  if (len > 0) out.append(reinterpret_cast<const char*>(data), len);
}

std::string ValidateEntries(const uint8_t* p, size_t n, uint64_t count) {
  if (count > n / kEntryHeaderBytes) return Fmt("entry count exceeds the bytes given:", count);
  size_t off = 0;
  for (uint64_t i = 0; i < count; i++) {
    if (n - off < kEntryHeaderBytes) return Fmt("entry record truncated at entry", i);
    const uint8_t* h = p + off;
    if (!InRange(LoadU64(h)) || !InRange(LoadU64(h + 8))) return Fmt("entry index or term out of range at entry", i);
    if (h[16] > static_cast<uint8_t>(EntryType::kConfChange)) return Fmt("unknown entry type", h[16]);
    uint32_t len = LoadU32(h + 17);
    if (n - off - kEntryHeaderBytes < len) return Fmt("entry data length exceeds the bytes given at entry", i);
    off += kEntryHeaderBytes + len;
  }
  if (off != n) return Fmt("trailing bytes after the entries:", n - off);
  return "";
}

void EncodeMessage(std::string& out, const Message& m) {
  size_t snapLen = 0;
  if (m.hasSnapshot) {
    const ConfState& c = m.snap.conf;
    snapLen = kSnapshotFixedBytes +
              8 * (c.voters.size() + c.learners.size() + c.votersOutgoing.size() + c.learnersNext.size()) + 4 +
              m.snapDataLen;
  }
  size_t total = kMessageHeaderBytes + m.contextLen + m.entriesLen + snapLen;
  KEELSON_ASSERT(total <= UINT32_MAX, "message exceeds 4 GiB");
  uint8_t h[kMessageHeaderBytes];
  StoreU32(h, static_cast<uint32_t>(total));
  h[4] = static_cast<uint8_t>(m.type);
  h[5] = m.reject ? 1 : 0;
  h[6] = 0;
  h[7] = 0;
  StoreU64(h + 8, m.to);
  StoreU64(h + 16, m.from);
  StoreU64(h + 24, m.term);
  StoreU64(h + 32, m.logTerm);
  StoreU64(h + 40, m.index);
  StoreU64(h + 48, m.commit);
  StoreU64(h + 56, m.rejectHint);
  StoreU32(h + 64, static_cast<uint32_t>(m.contextLen));
  StoreU32(h + 68, m.entryCount);
  StoreU32(h + 72, static_cast<uint32_t>(m.entriesLen));
  StoreU32(h + 76, static_cast<uint32_t>(snapLen));
  out.reserve(out.size() + total);
  out.append(reinterpret_cast<const char*>(h), kMessageHeaderBytes);
  if (m.contextLen) out.append(reinterpret_cast<const char*>(m.context), m.contextLen);
  if (m.entriesLen) out.append(reinterpret_cast<const char*>(m.entries), m.entriesLen);
  if (m.hasSnapshot) {
    const ConfState& c = m.snap.conf;
    uint8_t s[kSnapshotFixedBytes];
    StoreU64(s, m.snap.index);
    StoreU64(s + 8, m.snap.term);
    s[16] = c.autoLeave ? 1 : 0;
    StoreU32(s + 17, static_cast<uint32_t>(c.voters.size()));
    StoreU32(s + 21, static_cast<uint32_t>(c.learners.size()));
    StoreU32(s + 25, static_cast<uint32_t>(c.votersOutgoing.size()));
    StoreU32(s + 29, static_cast<uint32_t>(c.learnersNext.size()));
    out.append(reinterpret_cast<const char*>(s), kSnapshotFixedBytes);
    PutIds(out, c.voters);
    PutIds(out, c.learners);
    PutIds(out, c.votersOutgoing);
    PutIds(out, c.learnersNext);
    uint8_t d[4];
    StoreU32(d, static_cast<uint32_t>(m.snapDataLen));
    out.append(reinterpret_cast<const char*>(d), 4);
    if (m.snapDataLen) out.append(reinterpret_cast<const char*>(m.snapData), m.snapDataLen);
  }
}

namespace {

std::string DecodeSnapshot(const uint8_t* p, size_t n, Message* m) {
  if (n < kSnapshotFixedBytes + 4) return "snapshot section truncated";
  SnapshotMeta& s = m->snap;
  s.index = LoadU64(p);
  s.term = LoadU64(p + 8);
  if (s.index == 0 || s.term == 0 || !InRange(s.index) || !InRange(s.term)) return "snapshot index or term out of range";
  if (p[16] > 1) return "snapshot autoLeave flag out of range";
  s.conf.autoLeave = p[16] == 1;
  uint64_t counts[4];
  uint64_t ids = 0;
  for (int i = 0; i < 4; i++) {
    counts[i] = LoadU32(p + 17 + 4 * i);
    ids += counts[i];
  }
  if (ids > (n - kSnapshotFixedBytes - 4) / 8) return "snapshot member lists exceed the section";
  const uint8_t* q = p + kSnapshotFixedBytes;
  std::vector<Id>* lists[4] = {&s.conf.voters, &s.conf.learners, &s.conf.votersOutgoing, &s.conf.learnersNext};
  for (int i = 0; i < 4; i++) {
    if (!GetIds(q, static_cast<uint32_t>(counts[i]), lists[i])) return "snapshot member list has a zero, out-of-range or duplicate id";
    q += 8 * counts[i];
  }
  if (s.conf.voters.empty()) return "snapshot configuration has no voters";
  size_t used = static_cast<size_t>(q - p);
  uint32_t dataLen = LoadU32(q);
  if (n - used - 4 != dataLen) return "snapshot data length does not match the section";
  m->snapData = q + 4;
  m->snapDataLen = dataLen;
  m->hasSnapshot = true;
  return "";
}

std::string DecodeOne(const uint8_t* p, size_t total, Id self, Message* m) {
  uint8_t type = p[4];
  if (!IsWireType(type)) return Fmt("unknown message type", type);
  m->type = static_cast<MsgType>(type);
  if (p[5] > 1) return "unknown message flags";
  if (p[6] != 0 || p[7] != 0) return "reserved message bytes are not zero";
  m->reject = p[5] == 1;
  m->to = LoadU64(p + 8);
  m->from = LoadU64(p + 16);
  m->term = LoadU64(p + 24);
  m->logTerm = LoadU64(p + 32);
  m->index = LoadU64(p + 40);
  m->commit = LoadU64(p + 48);
  m->rejectHint = LoadU64(p + 56);
  if (m->to != self) return Fmt("message addressed to another member:", m->to);
  if (m->from == 0 || !InRange(m->from)) return "message sender id is 0 or out of range";
  if (m->from == self) return "message claims to come from the receiving member";
  if (!InRange(m->term) || !InRange(m->logTerm) || !InRange(m->index) || !InRange(m->commit) ||
      !InRange(m->rejectHint))
    return "message term or index out of range";
  uint64_t ctxLen = LoadU32(p + 64);
  uint64_t count = LoadU32(p + 68);
  uint64_t entLen = LoadU32(p + 72);
  uint64_t snapLen = LoadU32(p + 76);
  if (kMessageHeaderBytes + ctxLen + entLen + snapLen != total) return "message section lengths do not add up to its length";
  const uint8_t* q = p + kMessageHeaderBytes;
  m->context = ctxLen ? q : nullptr;
  m->contextLen = ctxLen;
  q += ctxLen;
  bool local = m->type == MsgType::kProp || m->type == MsgType::kReadIndex;
  if (local ? m->term != 0 : m->term == 0) return local ? "forwarded request carries a term" : "message term is 0";
  bool mayCarryEntries = m->type == MsgType::kProp || m->type == MsgType::kApp;
  if (!mayCarryEntries && (count != 0 || entLen != 0)) return Fmt("entries on a message of type", type);
  if (m->type == MsgType::kProp && count == 0) return "proposal without entries";
  std::string err = ValidateEntries(q, entLen, count);
  if (!err.empty()) return err;
  m->entries = entLen ? q : nullptr;
  m->entriesLen = entLen;
  m->entryCount = static_cast<uint32_t>(count);
  // Check the sequence of the entries against the message: an append carries
  // consecutive indexes after `index`, with terms that never go down and lie
  // between logTerm and the sender's term.
  {
    const uint8_t* e = q;
    Term prevTerm = m->logTerm;
    for (uint64_t i = 0; i < count; i++) {
      Index idx = LoadU64(e);
      Term t = LoadU64(e + 8);
      if (m->type == MsgType::kProp) {
        if (idx != 0 || t != 0) return "proposed entries carry an index or term";
      } else {
        if (idx != m->index + 1 + i) return Fmt("appended entries are not consecutive at entry", i);
        if (t < prevTerm || t > m->term) return Fmt("appended entry term out of order at entry", i);
        prevTerm = t;
      }
      e += kEntryHeaderBytes + LoadU32(e + 17);
    }
  }
  q += entLen;
  if (m->type == MsgType::kApp && m->index == 0 && m->logTerm != 0) return "append after index 0 with a nonzero log term";
  if (m->type == MsgType::kSnap) {
    if (snapLen == 0) return "snapshot message without a snapshot";
    err = DecodeSnapshot(q, snapLen, m);
    if (!err.empty()) return err;
    if (m->snap.term > m->term) return "snapshot term above the message term";
  } else if (snapLen != 0) {
    return "snapshot on a message that is not MsgSnap";
  }
  if (m->type == MsgType::kTransferLeader && (m->index == 0 || !InRange(m->index))) return "transfer without a transferee";
  return "";
}

}  // namespace

std::string DecodeMessages(const uint8_t* p, size_t n, Id self, std::vector<Message>* out) {
  out->clear();
  size_t off = 0;
  if (n == 0) return "empty message buffer";
  while (off < n) {
    if (n - off < 4) return Fmt("truncated message length at byte", off);
    uint32_t total = LoadU32(p + off);
    if (total < kMessageHeaderBytes) return Fmt("message shorter than its header at byte", off);
    if (total > n - off) return Fmt("message length exceeds the buffer at byte", off);
    Message m;
    std::string err = DecodeOne(p + off, total, self, &m);
    if (!err.empty()) return err + " (message at byte " + std::to_string(off) + ")";
    out->push_back(std::move(m));
    off += total;
  }
  return "";
}

std::string EncodeConfChange(const ConfChange& cc) {
  std::string out;
  uint8_t h[6];
  h[0] = 1;
  h[1] = static_cast<uint8_t>(cc.transition);
  StoreU32(h + 2, static_cast<uint32_t>(cc.changes.size()));
  out.append(reinterpret_cast<const char*>(h), 6);
  for (const ConfChangeSingle& c : cc.changes) {
    uint8_t b[9];
    b[0] = static_cast<uint8_t>(c.type);
    StoreU64(b + 1, c.nodeId);
    out.append(reinterpret_cast<const char*>(b), 9);
  }
  uint8_t l[4];
  StoreU32(l, static_cast<uint32_t>(cc.context.size()));
  out.append(reinterpret_cast<const char*>(l), 4);
  out.append(cc.context);
  return out;
}

std::string DecodeConfChange(const uint8_t* p, size_t n, ConfChange* out) {
  if (n < 10) return "conf change truncated";
  if (p[0] != 1) return Fmt("unknown conf change version", p[0]);
  if (p[1] > 2) return Fmt("unknown conf change transition", p[1]);
  out->transition = static_cast<ConfChangeTransition>(p[1]);
  uint32_t count = LoadU32(p + 2);
  if (count > kConfChangeChangesMax) return "too many changes in one conf change";
  if (uint64_t{count} * 9 > n - 10) return "conf change list exceeds the payload";
  out->changes.clear();
  const uint8_t* q = p + 6;
  for (uint32_t i = 0; i < count; i++) {
    if (q[0] > 2) return Fmt("unknown conf change type", q[0]);
    Id id = LoadU64(q + 1);
    if (id == 0 || !InRange(id)) return "conf change node id is 0 or out of range";
    out->changes.push_back({static_cast<ConfChangeType>(q[0]), id});
    q += 9;
  }
  uint32_t ctx = LoadU32(q);
  q += 4;
  if (static_cast<size_t>(q - p) + ctx != n) return "conf change context length does not match the payload";
  out->context.assign(reinterpret_cast<const char*>(q), ctx);
  return "";
}

}  // namespace keelson::raft
