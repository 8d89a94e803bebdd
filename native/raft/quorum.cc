#include "raft/quorum.h"

#include <algorithm>
#include <limits>

namespace keelson::raft {

bool Contains(const std::vector<Id>& sorted, Id id) { return std::binary_search(sorted.begin(), sorted.end(), id); }

void InsertSorted(std::vector<Id>* sorted, Id id) {
  auto it = std::lower_bound(sorted->begin(), sorted->end(), id);
  if (it == sorted->end() || *it != id) sorted->insert(it, id);
}

void EraseSorted(std::vector<Id>* sorted, Id id) {
  auto it = std::lower_bound(sorted->begin(), sorted->end(), id);
  if (it != sorted->end() && *it == id) sorted->erase(it);
}

bool Config::isVoter(Id id) const { return Contains(voters, id) || Contains(votersOutgoing, id); }
bool Config::isLearner(Id id) const { return Contains(learners, id); }

std::vector<Id> Config::allVoters() const {
  std::vector<Id> out;
  std::set_union(voters.begin(), voters.end(), votersOutgoing.begin(), votersOutgoing.end(), std::back_inserter(out));
  return out;
}

ConfState Config::toConfState() const {
  ConfState cs;
  cs.voters = voters;
  cs.learners = learners;
  cs.votersOutgoing = votersOutgoing;
  cs.learnersNext = learnersNext;
  cs.autoLeave = autoLeave;
  return cs;
}

Config Config::fromConfState(const ConfState& cs) {
  Config c;
  auto norm = [](std::vector<Id> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
  };
  c.voters = norm(cs.voters);
  c.learners = norm(cs.learners);
  c.votersOutgoing = norm(cs.votersOutgoing);
  c.learnersNext = norm(cs.learnersNext);
  c.autoLeave = cs.autoLeave;
  return c;
}

Index MajorityCommitted(const std::vector<Id>& voters, const std::function<Index(Id)>& acked) {
  size_t n = voters.size();
  if (n == 0) return std::numeric_limits<Index>::max();
  // Small clusters are the norm: keep the indexes on the stack.
  Index stack[16] = {};
  std::vector<Index> heap;
  Index* v = stack;
  if (n > 16) {
    heap.resize(n);
    v = heap.data();
  }
  for (size_t i = 0; i < n; i++) v[i] = acked(voters[i]);
  std::sort(v, v + n);
  // With the indexes in ascending order, the one at position n - (n/2 + 1)
  // is acknowledged by n/2 + 1 voters: a majority.
  return v[n - (n / 2 + 1)];
}

Index JointCommitted(const Config& c, const std::function<Index(Id)>& acked) {
  Index a = MajorityCommitted(c.voters, acked);
  Index b = MajorityCommitted(c.votersOutgoing, acked);
  return std::min(a, b);
}

VoteResult MajorityVoteResult(const std::vector<Id>& voters, const std::map<Id, bool>& votes) {
  if (voters.empty()) return VoteResult::kWon;
  size_t yes = 0, missing = 0;
  for (Id id : voters) {
    auto it = votes.find(id);
    if (it == votes.end()) missing++;
    else if (it->second) yes++;
  }
  size_t q = voters.size() / 2 + 1;
  if (yes >= q) return VoteResult::kWon;
  if (yes + missing >= q) return VoteResult::kPending;
  return VoteResult::kLost;
}

VoteResult JointVoteResult(const Config& c, const std::map<Id, bool>& votes) {
  VoteResult a = MajorityVoteResult(c.voters, votes);
  VoteResult b = MajorityVoteResult(c.votersOutgoing, votes);
  if (a == b) return a;
  if (a == VoteResult::kLost || b == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace keelson::raft
