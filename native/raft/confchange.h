// Membership changes (Raft thesis 4.1 and 4.3).
//
// A simple change alters at most one voter; any two majorities of the old and
// the new configuration then overlap, so it is safe to switch in one step. A
// change of more voters goes through a joint configuration: first the members
// move to (incoming, outgoing) where decisions need majorities of both, and a
// second change leaves it for the incoming half alone. With autoLeave the
// leader proposes that second change by itself once the first is applied.
//
// Changes are validated against the configuration they apply to; a change
// that is not allowed (entering joint twice, leaving when not joint, removing
// every voter, several voters in a simple change) raises ERR_CONF_CHANGE and
// the configuration stays as it was.
#pragma once

#include "raft/codec.h"
#include "raft/quorum.h"

namespace keelson::raft {

enum class ConfChangeKind { kSimple, kEnterJoint, kLeaveJoint };

// Decides how `cc` applies to `cur` (transition 'auto' becomes a simple change
// when at most one voter changes, an auto-leaving joint change otherwise).
ConfChangeKind ResolveConfChange(const Config& cur, const ConfChange& cc, bool* autoLeave);

// The configuration after applying `cc` to `cur`; throws RaftError(kConfChange).
Config ApplyConfChange(const Config& cur, const ConfChange& cc);

}  // namespace keelson::raft
