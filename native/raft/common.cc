#include "raft/common.h"

#include <cstdio>
#include <cstdlib>

namespace keelson::raft {

void AssertFail(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "keelson raft: invariant violated at %s:%d: %s (%s)\n", file, line, msg, expr);
  std::fflush(stderr);
  std::abort();
}

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotLeader: return "ERR_NOT_LEADER";
    case ErrorCode::kProposalDropped: return "ERR_PROPOSAL_DROPPED";
    case ErrorCode::kTooLarge: return "ERR_TOO_LARGE";
    case ErrorCode::kUncommittedLimit: return "ERR_UNCOMMITTED_LIMIT";
    case ErrorCode::kBadMessage: return "ERR_BAD_MESSAGE";
    case ErrorCode::kBadArgument: return "ERR_BAD_ARGUMENT";
    case ErrorCode::kConfChange: return "ERR_CONF_CHANGE";
    case ErrorCode::kSnapshot: return "ERR_SNAPSHOT";
    case ErrorCode::kCompacted: return "ERR_COMPACTED";
  }
  return "ERR_BAD_ARGUMENT";
}

}  // namespace keelson::raft
