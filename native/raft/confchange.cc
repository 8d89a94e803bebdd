#include "raft/confchange.h"

#include <algorithm>

namespace keelson::raft {

namespace {

[[noreturn]] void Refuse(const std::string& why) { throw RaftError(ErrorCode::kConfChange, "conf change refused: " + why); }

void ApplyChanges(Config* c, const ConfChange& cc) {
  for (const ConfChangeSingle& ch : cc.changes) {
    Id id = ch.nodeId;
    switch (ch.type) {
      case ConfChangeType::kAddNode:
        EraseSorted(&c->learners, id);
        EraseSorted(&c->learnersNext, id);
        InsertSorted(&c->voters, id);
        break;
      case ConfChangeType::kAddLearner:
        if (Contains(c->learners, id)) break;
        EraseSorted(&c->voters, id);
        // An outgoing voter must keep voting until the joint configuration
        // is left; it becomes a learner then.
        if (Contains(c->votersOutgoing, id)) InsertSorted(&c->learnersNext, id);
        else InsertSorted(&c->learners, id);
        break;
      case ConfChangeType::kRemoveNode:
        EraseSorted(&c->voters, id);
        EraseSorted(&c->learners, id);
        EraseSorted(&c->learnersNext, id);
        break;
    }
  }
  if (c->voters.empty()) Refuse("it removes every voter");
}

size_t SymmetricDifference(const std::vector<Id>& a, const std::vector<Id>& b) {
  std::vector<Id> out;
  std::set_symmetric_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out.size();
}

}  // namespace

ConfChangeKind ResolveConfChange(const Config& cur, const ConfChange& cc, bool* autoLeave) {
  *autoLeave = false;
  if (cc.changes.empty()) return ConfChangeKind::kLeaveJoint;
  switch (cc.transition) {
    case ConfChangeTransition::kAuto: {
      if (cur.joint()) return ConfChangeKind::kEnterJoint;  // refused by ApplyConfChange
      Config probe = cur;
      for (const ConfChangeSingle& ch : cc.changes) {
        if (ch.type == ConfChangeType::kAddNode) {
          EraseSorted(&probe.learners, ch.nodeId);
          InsertSorted(&probe.voters, ch.nodeId);
        } else {
          EraseSorted(&probe.voters, ch.nodeId);
        }
      }
      if (SymmetricDifference(cur.voters, probe.voters) <= 1) return ConfChangeKind::kSimple;
      *autoLeave = true;
      return ConfChangeKind::kEnterJoint;
    }
    case ConfChangeTransition::kImplicit:
      *autoLeave = true;
      return ConfChangeKind::kEnterJoint;
    case ConfChangeTransition::kExplicit:
      return ConfChangeKind::kEnterJoint;
  }
  return ConfChangeKind::kSimple;
}

Config ApplyConfChange(const Config& cur, const ConfChange& cc) {
  bool autoLeave = false;
  ConfChangeKind kind = ResolveConfChange(cur, cc, &autoLeave);
  Config next = cur;
  switch (kind) {
    case ConfChangeKind::kLeaveJoint:
      if (!cur.joint()) Refuse("not in a joint configuration, nothing to leave");
      for (Id id : next.learnersNext) InsertSorted(&next.learners, id);
      next.learnersNext.clear();
      next.votersOutgoing.clear();
      next.autoLeave = false;
      return next;
    case ConfChangeKind::kEnterJoint:
      if (cur.joint()) Refuse("already in a joint configuration");
      if (cur.voters.empty()) Refuse("cannot enter a joint configuration from zero voters");
      next.votersOutgoing = cur.voters;
      ApplyChanges(&next, cc);
      next.autoLeave = autoLeave;
      return next;
    case ConfChangeKind::kSimple:
      if (cur.joint()) Refuse("a simple change while in a joint configuration");
      ApplyChanges(&next, cc);
      if (SymmetricDifference(cur.voters, next.voters) > 1)
        Refuse("more than one voter changes; use a joint change");
      return next;
  }
  return next;
}

}  // namespace keelson::raft
