// Quorums over a (possibly joint) configuration.
//
// A majority configuration is a set of voters; a joint configuration
// (Raft thesis 4.3) is two of them, incoming and outgoing, and every decision
// (commit, election) needs a majority of BOTH. An empty outgoing set means
// "not joint" and never constrains a decision.
#pragma once

#include <functional>
#include <map>
#include <vector>

#include "raft/codec.h"
#include "raft/common.h"

namespace keelson::raft {

// The membership configuration. All lists are sorted and duplicate-free.
// Invariant: voters, learners and learnersNext are pairwise disjoint; a
// learnersNext member is an outgoing voter (it becomes a learner when the
// joint configuration is left).
struct Config {
  std::vector<Id> voters;
  std::vector<Id> votersOutgoing;
  std::vector<Id> learners;
  std::vector<Id> learnersNext;
  bool autoLeave = false;

  bool joint() const { return !votersOutgoing.empty(); }
  bool isVoter(Id id) const;
  bool isLearner(Id id) const;
  // Every voter of either half, sorted and unique.
  std::vector<Id> allVoters() const;
  ConfState toConfState() const;
  static Config fromConfState(const ConfState& cs);
};

enum class VoteResult { kPending, kLost, kWon };

// The largest index acknowledged by a majority of `voters` (each voter's
// acknowledged index from `acked`). UINT64_MAX for an empty set, so that an
// empty half of a joint config never holds back a commit.
Index MajorityCommitted(const std::vector<Id>& voters, const std::function<Index(Id)>& acked);
Index JointCommitted(const Config& c, const std::function<Index(Id)>& acked);

VoteResult MajorityVoteResult(const std::vector<Id>& voters, const std::map<Id, bool>& votes);
VoteResult JointVoteResult(const Config& c, const std::map<Id, bool>& votes);

bool Contains(const std::vector<Id>& sorted, Id id);
void InsertSorted(std::vector<Id>* sorted, Id id);
void EraseSorted(std::vector<Id>* sorted, Id id);

}  // namespace keelson::raft
