// Shared vocabulary of the Raft core: id/index/term types, the error type that
// crosses into the binding, and the invariant assertion.
//
// Expected failures (bad input from the network or the host) are reported with
// RaftError and change nothing. A broken internal invariant is a programming
// error: KEELSON_ASSERT prints the condition and aborts at once, because
// continuing with a corrupted Raft state could acknowledge data that is lost.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace keelson::raft {

using Id = uint64_t;
using Index = uint64_t;
using Term = uint64_t;

// Ids, indexes and terms cross into JavaScript as numbers, so they must stay
// exactly representable there.
constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

[[noreturn]] void AssertFail(const char* expr, const char* file, int line, const char* msg);

#define KEELSON_ASSERT(cond, msg)                                        \
  do {                                                                   \
    if (!(cond)) ::keelson::raft::AssertFail(#cond, __FILE__, __LINE__, msg); \
  } while (0)

enum class ErrorCode {
  kNotLeader,
  kProposalDropped,
  kTooLarge,
  kUncommittedLimit,
  kBadMessage,
  kBadArgument,
  kConfChange,
  kSnapshot,
  kCompacted,
};

// The string code the binding puts on the JavaScript Error (NativeErrorCode).
const char* ErrorCodeName(ErrorCode code);

class RaftError : public std::runtime_error {
 public:
  RaftError(ErrorCode code, const std::string& message, Id leader = 0)
      : std::runtime_error(message), code_(code), leader_(leader) {}
  ErrorCode code() const { return code_; }
  // For kNotLeader: the leader this member knows of, 0 when unknown.
  Id leader() const { return leader_; }

 private:
  ErrorCode code_;
  Id leader_;
};

}  // namespace keelson::raft
