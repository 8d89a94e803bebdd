// The Keelson Raft core: a pure, single-threaded state machine.
//
// Overview. The host drives the core by calling tick() on its clock, step()
// with messages from the network, propose*() / readIndex() / transferLeader()
// for client requests, and drains the results with ready() / advance(). The
// core owns no clock, socket, file or random source: time is the number of
// ticks, randomness is a PRNG seeded from the configuration, and every effect
// (entries to persist, messages to send, entries to apply) is handed to the
// host in a Ready.
//
// Algorithm (Raft paper and Ongaro's thesis; section numbers cite the thesis):
// - leader election with randomized timeouts in [election, 1.5*election) ticks
//   (3.4), optional pre-vote (9.6) and check-quorum with a vote lease (6.2,
//   9.6): a leader that has not heard from a quorum within an election
//   timeout steps down, and a member that heard from a leader within the
//   election timeout ignores vote requests (unless the request comes from a
//   leadership transfer).
// - log replication (3.5) with per-member flow control (see progress.h),
//   pipelining and batching bounded by bytes per message and an inflight
//   window in messages and bytes; mismatches are repaired with a hint of the
//   conflicting term so that one round trip skips a whole term.
// - commit only of current-term entries by counting replicas (3.6.2, paper
//   5.4.2). The leader counts its own log only up to what the host has made
//   durable (advance()), while followers' acknowledgments count on arrival
//   (10.2.1: the leader writes in parallel with replicating).
// - ReadIndex (6.4) batched behind one heartbeat round per Ready, leadership
//   transfer (3.10), learners (4.2.1), single-voter and joint membership
//   changes (4.1, 4.3), snapshots and log compaction (5).
//
// Failure modes. Malformed or out-of-range input (a bad message buffer, a bad
// argument) raises RaftError and leaves the state untouched: step() decodes
// and validates the whole buffer before acting on any of it. Expected
// conditions of a distributed system (stale terms, reordered or duplicated
// messages, unknown senders) are ignored as Raft prescribes. A violated
// internal invariant aborts the process (KEELSON_ASSERT).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "raft/codec.h"
#include "raft/common.h"
#include "raft/confchange.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/quorum.h"

namespace keelson::raft {

enum class Role { kFollower, kCandidate, kPreCandidate, kLeader };
const char* RoleName(Role r);

struct RaftOptions {
  Id id = 0;
  std::vector<Id> voters;
  std::vector<Id> learners;
  uint32_t electionTicks = 10;
  uint32_t heartbeatTicks = 1;
  bool preVote = true;
  bool checkQuorum = true;
  uint64_t maxSizePerMsgBytes = 1 << 20;
  uint32_t maxInflightMsgs = 256;
  uint64_t maxInflightBytes = 0;  // 0: no byte bound
  uint64_t maxUncommittedEntriesBytes = 1 << 30;
  bool disableProposalForwarding = false;
  uint64_t seed = 0;
  Index applied = 0;
  bool bugCommitPreviousTerm = false;
};

struct HardState {
  Term term = 0;
  Id vote = 0;
  Index commit = 0;
  bool operator==(const HardState& o) const { return term == o.term && vote == o.vote && commit == o.commit; }
  bool operator!=(const HardState& o) const { return !(*this == o); }
};

struct RestoreState {
  bool hasHardState = false;
  HardState hardState;
  bool hasSnapshot = false;
  SnapshotMeta snapshot;
  std::string snapshotData;
  const uint8_t* entries = nullptr;
  size_t entriesLen = 0;
};

struct ReadState {
  Index index;
  std::string ctx;
};

// One batch of work for the host; see the Ready type in src/native.ts for
// the ordering contract. Byte views (entries, committed, snapshot data) point
// into the core and are valid until the next call into it.
struct ReadyOut {
  Id lead = 0;
  Role role = Role::kFollower;
  bool hasHardState = false;
  HardState hardState;
  const uint8_t* entries = nullptr;
  size_t entriesLen = 0;
  uint32_t entryCount = 0;
  const uint8_t* committed = nullptr;
  size_t committedLen = 0;
  uint32_t committedCount = 0;
  // Per destination, a concatenation of messages; entries with an empty
  // string carry nothing. Valid until the next call into the core.
  const std::vector<std::pair<Id, std::string>>* messages = nullptr;
  bool hasSnapshot = false;
  SnapshotMeta snapshot;
  const std::string* snapshotData = nullptr;
  std::vector<ReadState> readStates;
  bool mustSync = false;
};

struct ProgressStatus {
  Id id;
  Index match, next;
  ProgressState state;
  size_t inflight;
  bool recentActive, isLearner;
};

struct RaftStatus {
  Id id;
  Role role;
  Id lead;
  Term term;
  Id vote;
  Index commit, applied, lastIndex, firstIndex;
  Id leadTransferee;
  ConfState conf;
  std::vector<ProgressStatus> progress;  // leader only
};

class Raft {
 public:
  // Throws RaftError(kBadArgument) for an invalid configuration or restore state.
  Raft(const RaftOptions& opts, const RestoreState* restore);

  void tick();
  void step(const uint8_t* p, size_t n);
  void propose(const uint8_t* data, size_t len);
  void proposeBatch(const uint8_t* records, size_t n, uint32_t count);
  void proposeConfChange(const ConfChange& cc);
  ConfState applyConfChange(const uint8_t* data, size_t len);
  void readIndex(const uint8_t* ctx, size_t len);
  void transferLeader(Id to);
  void campaign();
  bool hasReady() const;
  ReadyOut ready();
  void advance();
  void createSnapshot(Index index, const uint8_t* data, size_t len);
  void compact(Index index);
  void reportUnreachable(Id id);
  void reportSnapshot(Id id, bool ok);
  RaftStatus status() const;

 private:
  struct ProposedEntry {
    EntryType type;
    const uint8_t* data;
    uint32_t len;
  };
  struct ReadRequest {
    uint64_t round;
    Index index;
    Id from;
    std::string ctx;
  };
  struct ReadRound {
    uint64_t id;
    std::map<Id, bool> acks;
  };
  enum class CampaignType { kPreElection, kElection, kTransfer };

  // Role transitions (each resets the per-term state).
  void reset(Term term);
  void becomeFollower(Term term, Id lead);
  void becomePreCandidate();
  void becomeCandidate();
  void becomeLeader();

  void stepOne(const Message& m);
  void stepLeader(const Message& m);
  void stepCandidate(const Message& m);
  void stepFollower(const Message& m);

  void tickElection();
  void tickHeartbeat();
  void hup(CampaignType t);
  void campaignAs(CampaignType t);
  void resendVoteRequests();
  VoteResult poll(Id id, bool granted);
  bool promotable() const;
  bool hasUnappliedConfChanges() const;
  bool quorumActiveAndReset();

  // Sending.
  std::string& outboxFor(Id to);
  void send(Message& m);
  bool maybeSendAppend(Id to, Progress& pr, bool sendIfEmpty);
  bool maybeSendSnapshot(Id to, Progress& pr);
  void bcastAppend();
  void bcastHeartbeat(const uint8_t* ctx, size_t len);
  void sendTimeoutNow(Id to);
  void abortLeaderTransfer() { leadTransferee_ = 0; }

  // Log.
  void appendAsLeader(const ProposedEntry* ents, size_t count);
  void leaderPropose(const ProposedEntry* ents, size_t count, bool local);
  void forwardProposal(const ProposedEntry* ents, size_t count);
  bool maybeCommit();
  void commitTo(Index i);
  void truncateAndAppend(const Message& m, Index from);
  void handleAppendEntries(const Message& m);
  void handleHeartbeat(const Message& m);
  void handleSnapshot(const Message& m);
  bool restoreSnapshot(const Message& m);

  // Reads.
  void leaderRead(Id from, const uint8_t* ctx, size_t len, bool local);
  void releaseRead(const ReadRequest& r);
  void onReadAck(Id from, const uint8_t* ctx, size_t len);
  bool committedEntryInCurrentTerm() const { return log_.termOrZero(committed_) == term_; }

  // Membership.
  void switchToConfig(const Config& c);
  void transfer(Id to, bool local);

  void checkInvariants() const;
  uint64_t nextRandom();
  void resetRandomizedElectionTimeout();
  Progress* progress(Id id);

  RaftOptions opts_;
  Id id_;
  Role role_ = Role::kFollower;
  Term term_ = 0;
  Id vote_ = 0;
  Id lead_ = 0;
  Id leadTransferee_ = 0;

  RaftLog log_;
  // Invariant: applied_ <= committed_ <= log_.lastIndex(); log_.offset() <=
  // stabled_ <= persisting_ <= log_.lastIndex().
  Index committed_ = 0;
  Index applied_ = 0;    // advanced by the host
  Index applying_ = 0;   // handed out in the outstanding Ready
  Index stabled_ = 0;    // durable (advanced) entries
  Index persisting_ = 0; // handed out in the outstanding Ready

  Config config_;
  Index configIndex_ = 0;  // index of the entry (or snapshot) that made config_
  // Configurations by the index that established them, for createSnapshot
  // at an index below applied. Bounded: pruned at every snapshot.
  std::deque<std::pair<Index, Config>> confHistory_;
  // Indexes of ConfChange entries handed out for apply, in order; the host
  // applies them in the same order with applyConfChange.
  std::deque<Index> confToApply_;
  std::map<Id, Progress> progress_;
  std::map<Id, bool> votes_;
  Index pendingConfIndex_ = 0;
  uint64_t uncommittedBytes_ = 0;

  uint32_t electionElapsed_ = 0;
  uint32_t heartbeatElapsed_ = 0;
  uint32_t randomizedElectionTimeout_ = 0;
  uint64_t rng_;

  // Snapshot: the latest one recorded by the host or received from a leader.
  bool hasSnapshot_ = false;
  SnapshotMeta snapshot_;
  std::string snapshotData_;
  bool snapshotToPersist_ = false;

  // ReadIndex state (leader).
  std::deque<ReadRequest> reads_;
  std::deque<ReadRound> rounds_;
  std::vector<ReadRequest> readsBeforeCommit_;
  uint64_t nextRoundId_ = 1;
  bool roundOpen_ = false;
  std::vector<ReadState> readStates_;

  // Outbox, grouped per destination. Double-buffered: the half handed out in
  // a Ready is cleared (keeping its capacity) when the next Ready swaps it
  // back, so steady-state sending allocates nothing.
  std::vector<std::pair<Id, std::string>> outbox_;
  std::vector<std::pair<Id, std::string>> handedOut_;
  bool outboxEmpty() const;
  // Messages created before this member became leader, since the last
  // Ready: they may depend on state (a vote, appended entries) that is not
  // durable yet, and a leader's Ready is sent before its write. They are
  // held back until the Ready after the next one (after that write).
  std::vector<std::pair<Id, std::string>> heldOutbox_;
  bool heldArmed_ = false;

  // Ready bookkeeping.
  bool readyOutstanding_ = false;
  bool readyHadSnapshot_ = false;
  Index readySnapshotIndex_ = 0;
  HardState prevHardState_;
  Id prevLead_ = 0;
  Role prevRole_ = Role::kFollower;
  bool softStateKnown_ = false;

  // Scratch for step(); reused to avoid an allocation per call.
  std::vector<Message> scratch_;
};

}  // namespace keelson::raft
