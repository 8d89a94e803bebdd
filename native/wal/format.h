// The WAL's on-disk record format (docs/wal.md has the full description).
//
// A segment file is a sequence of records, each
//
//   [u32 crc32c][u32 payloadLength][u8 type][u8 reserved = 0][u16 reserved = 0][payload]
//
// little-endian, 12-byte header. The CRC covers everything after itself: the
// length, the type, the reserved bytes and the payload, so a flipped length or
// type is caught as surely as a flipped payload byte. A header of all zeros is
// never a valid record (type 0 does not exist), which is what makes the zeroed,
// preallocated remainder of a segment read as "end of data".
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "wal/crc32c.h"

namespace keelson::wal {

constexpr size_t kRecordHeaderBytes = 12;
// Entries format of the Raft core: [u64 index][u64 term][u8 type][u32 dataLength][data].
constexpr size_t kEntryHeaderBytes = 21;
// Payload of a META record: magic, version, clusterId, memberId, seq, firstIndex.
constexpr uint64_t kMetaMagic = 0x314c4157534c454bull;  // "KELSWAL1" little-endian
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kMetaPayloadBytes = 8 + 4 + 8 + 8 + 8 + 8;
constexpr size_t kHardStatePayloadBytes = 24;

enum RecordType : uint8_t {
  kRecordMeta = 1,       // first record of every segment, and only there
  kRecordEntry = 2,      // one Raft entry, payload verbatim in the entries format
  kRecordHardState = 3,  // [u64 term][u64 vote][u64 commit]
  kRecordSnapshot = 4,   // [u64 index][u64 term][u8 autoLeave][4 x (u32 n, n x u64)]
};

enum class ErrorCode { kBadArgument, kCorrupt, kMismatch, kIo, kClosed };

// Every expected failure (bad input, corrupt or foreign files, I/O errors) is
// reported as a WalError; the binding maps `code` to the JS error code string.
struct WalError : std::runtime_error {
  ErrorCode code;
  WalError(ErrorCode c, const std::string& msg) : std::runtime_error(msg), code(c) {}
};

inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
inline void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i));
}
inline void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (8 * i));
}
inline uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
inline uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

// Appends one complete record (header with CRC, then payload) to `out`.
inline void AppendRecord(std::vector<uint8_t>* out, RecordType type, const uint8_t* payload, size_t len) {
  size_t at = out->size();
  out->resize(at + kRecordHeaderBytes + len);
  uint8_t* h = out->data() + at;
  Put32(h + 4, uint32_t(len));
  h[8] = type;
  h[9] = 0;
  Put16(h + 10, 0);
  if (len > 0) std::memcpy(h + kRecordHeaderBytes, payload, len);
  Put32(h, Crc32c(0, h + 4, kRecordHeaderBytes - 4 + len));
}

struct HardState {
  uint64_t term = 0;
  uint64_t vote = 0;
  uint64_t commit = 0;
};

struct ConfState {
  std::vector<uint64_t> voters, learners, votersOutgoing, learnersNext;
  bool autoLeave = false;
};

struct SnapshotMeta {
  uint64_t index = 0;
  uint64_t term = 0;
  ConfState conf;
};

std::vector<uint8_t> EncodeHardState(const HardState& hs);
HardState DecodeHardState(const uint8_t* p);  // exactly kHardStatePayloadBytes
std::vector<uint8_t> EncodeSnapshot(const SnapshotMeta& s);
bool DecodeSnapshot(const uint8_t* p, size_t len, SnapshotMeta* out);  // false when malformed

}  // namespace keelson::wal
