// Binary formats that cross the N-API seam (docs/native-format.md is the
// reference; keep the two in step).
//
// Entries: a concatenation of records
//   [u64 index][u64 term][u8 type][u32 dataLength][data]
// little-endian, no padding (21-byte header). The core keeps its log in this
// exact format so that Ready.entries, Ready.committed and append messages are
// produced by copying byte ranges, never by re-encoding entry by entry.
//
// Messages: [u32 totalLength][u8 type][u8 flags][u16 reserved] then a fixed
// body (to, from, term, logTerm, index, commit, rejectHint, section lengths)
// and the variable sections (context, entries, snapshot). Decoding validates
// every length and range before anything is handed to the state machine, so a
// malformed buffer is refused as a whole and changes nothing.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "raft/common.h"

namespace keelson::raft {

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the Keelson wire formats are little-endian; this build assumes a little-endian host"
#endif

constexpr size_t kEntryHeaderBytes = 21;
constexpr size_t kMessageHeaderBytes = 80;

enum class EntryType : uint8_t { kNormal = 0, kConfChange = 1 };

// Message types. Numbers are part of the wire format. Only the types listed in
// IsWireType travel between members; everything local is a method call.
enum class MsgType : uint8_t {
  kProp = 2,
  kApp = 3,
  kAppResp = 4,
  kVote = 5,
  kVoteResp = 6,
  kSnap = 7,
  kHeartbeat = 8,
  kHeartbeatResp = 9,
  kTransferLeader = 13,
  kTimeoutNow = 14,
  kReadIndex = 15,
  kReadIndexResp = 16,
  kPreVote = 17,
  kPreVoteResp = 18,
};

bool IsWireType(uint8_t t);
const char* MsgTypeName(MsgType t);
// All wire types, for the binding's `messageTypes` export.
std::vector<MsgType> AllMsgTypes();

// Context sent with a vote request that a leadership transfer triggered; it
// lets the vote bypass the followers' leader lease (Raft thesis 6.4.1 / 3.10).
constexpr char kCampaignTransferContext[] = "keelson:transfer";

struct ConfState {
  std::vector<Id> voters;
  std::vector<Id> learners;
  std::vector<Id> votersOutgoing;
  std::vector<Id> learnersNext;
  bool autoLeave = false;
};

struct SnapshotMeta {
  Index index = 0;
  Term term = 0;
  ConfState conf;
};

// A decoded or to-be-encoded message. Byte sections are views: into the
// caller's input buffer while stepping, into the log or state while sending.
struct Message {
  MsgType type = MsgType::kApp;
  Id to = 0;
  Id from = 0;
  Term term = 0;
  Term logTerm = 0;
  Index index = 0;
  Index commit = 0;
  Index rejectHint = 0;
  bool reject = false;
  const uint8_t* context = nullptr;
  size_t contextLen = 0;
  const uint8_t* entries = nullptr;
  size_t entriesLen = 0;
  uint32_t entryCount = 0;
  bool hasSnapshot = false;
  SnapshotMeta snap;
  const uint8_t* snapData = nullptr;
  size_t snapDataLen = 0;
};

inline uint64_t LoadU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void StoreU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline void StoreU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Appends one entry record to `out`.
void AppendEntryRecord(std::string& out, Index index, Term term, EntryType type, const uint8_t* data, uint32_t len);

// Checks that [p, p+n) is exactly `count` well-formed entry records. Fields
// are range-checked (known type, index/term below 2^53). Returns "" when
// valid, otherwise the reason.
std::string ValidateEntries(const uint8_t* p, size_t n, uint64_t count);

// Encodes `m` and appends it to `out`.
void EncodeMessage(std::string& out, const Message& m);

// Decodes a concatenation of messages; all or nothing. Returns "" when valid,
// otherwise the reason (the caller raises ERR_BAD_MESSAGE). `self` is the
// receiving member: every message must be addressed to it.
std::string DecodeMessages(const uint8_t* p, size_t n, Id self, std::vector<Message>* out);

// ConfChange entry payload:
//   [u8 version=1][u8 transition][u32 changeCount]
//   changeCount x ([u8 type][u64 nodeId])
//   [u32 contextLength][context]
// transition: 0 auto, 1 implicit (joint, leave automatically), 2 explicit
// (joint, leave by proposing an empty change). Change type: 0 addNode,
// 1 removeNode, 2 addLearner. A change list of length 0 means "leave the
// joint configuration".
enum class ConfChangeTransition : uint8_t { kAuto = 0, kImplicit = 1, kExplicit = 2 };
enum class ConfChangeType : uint8_t { kAddNode = 0, kRemoveNode = 1, kAddLearner = 2 };
struct ConfChangeSingle {
  ConfChangeType type;
  Id nodeId;
};
struct ConfChange {
  ConfChangeTransition transition = ConfChangeTransition::kAuto;
  std::vector<ConfChangeSingle> changes;
  std::string context;
};
constexpr uint32_t kConfChangeChangesMax = 1024;

std::string EncodeConfChange(const ConfChange& cc);
// Returns "" when valid, otherwise the reason.
std::string DecodeConfChange(const uint8_t* p, size_t n, ConfChange* out);

}  // namespace keelson::raft
