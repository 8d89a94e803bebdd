#include "raft/raft.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace keelson::raft {

namespace {

// Bound on the bytes of committed entries handed out in one Ready; the rest
// follows in the next one. At least one entry is always handed out.
constexpr uint64_t kCommittedBytesPerReadyMax = uint64_t{64} << 20;
// Bound on ReadIndex requests waiting on the leader (per state).
constexpr size_t kReadsPendingMax = 8192;
// Bound on remembered configurations (one per applied membership change
// since the last snapshot); older ones are dropped.
constexpr size_t kConfHistoryMax = 256;
// Heartbeat responses with a full, unacknowledged inflight window before
// the leader assumes the pipeline lost messages and probes again.
constexpr uint32_t kFullWindowHeartbeatsMax = 2;
// Election timeouts a snapshot may stay unacknowledged (and unreported by
// the host through reportSnapshot) before the leader probes and, when still
// needed, sends it again. Generous, because a large snapshot takes time.
constexpr uint32_t kSnapshotWaitElectionTimeouts = 4;

[[noreturn]] void Fail(ErrorCode code, const std::string& msg, Id leader = 0) { throw RaftError(code, msg, leader); }

bool ValidId(Id id) { return id != 0 && id <= kMaxSafeInteger; }

}  // namespace

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kCandidate: return "candidate";
    case Role::kPreCandidate: return "precandidate";
    case Role::kLeader: return "leader";
  }
  return "follower";
}

// ---------------------------------------------------------------------------
// Construction and restore.
// ---------------------------------------------------------------------------

Raft::Raft(const RaftOptions& opts, const RestoreState* restore) : opts_(opts), id_(opts.id) {
  if (!ValidId(id_)) Fail(ErrorCode::kBadArgument, "config.id must be an integer in [1, 2^53)");
  if (opts_.electionTicks < 2) Fail(ErrorCode::kBadArgument, "config.electionTicks must be at least 2");
  if (opts_.heartbeatTicks < 1 || opts_.heartbeatTicks >= opts_.electionTicks)
    Fail(ErrorCode::kBadArgument, "config.heartbeatTicks must be at least 1 and below electionTicks");
  if (opts_.maxInflightMsgs < 1) Fail(ErrorCode::kBadArgument, "config.maxInflightMsgs must be at least 1");
  if (opts_.maxUncommittedEntriesBytes < 1) Fail(ErrorCode::kBadArgument, "config.maxUncommittedEntriesBytes must be at least 1");
  for (const auto* list : {&opts_.voters, &opts_.learners})
    for (Id id : *list)
      if (!ValidId(id)) Fail(ErrorCode::kBadArgument, "member ids must be integers in [1, 2^53)");
  Config base;
  {
    ConfState cs;
    cs.voters = opts_.voters;
    cs.learners = opts_.learners;
    base = Config::fromConfState(cs);
    if (base.voters.size() != opts_.voters.size() || base.learners.size() != opts_.learners.size())
      Fail(ErrorCode::kBadArgument, "config.voters and config.learners must not repeat an id");
    for (Id id : base.learners)
      if (Contains(base.voters, id)) Fail(ErrorCode::kBadArgument, "a member cannot be both voter and learner");
  }
  rng_ = opts_.seed ^ (id_ * 0x9E3779B97F4A7C15ull);

  HardState hs;
  bool restoring = restore != nullptr && (restore->hasHardState || restore->hasSnapshot || restore->entriesLen > 0);
  if (restoring && restore->hasSnapshot) {
    const SnapshotMeta& s = restore->snapshot;
    if (s.index == 0 || s.term == 0 || s.index > kMaxSafeInteger || s.term > kMaxSafeInteger)
      Fail(ErrorCode::kBadArgument, "restore.snapshot index and term must be positive integers");
    base = Config::fromConfState(s.conf);
    if (base.voters.empty()) Fail(ErrorCode::kBadArgument, "restore.snapshot.confState has no voters");
    log_.reset(s.index, s.term);
    hasSnapshot_ = true;
    snapshot_ = s;
    snapshot_.conf = base.toConfState();
    snapshotData_ = restore->snapshotData;
    committed_ = s.index;
    configIndex_ = s.index;
  }
  if (restoring && restore->entriesLen > 0) {
    // Entries at or below the snapshot are covered by it and skipped; the
    // rest must continue the log without a gap.
    const uint8_t* p = restore->entries;
    size_t n = restore->entriesLen;
    size_t off = 0;
    size_t startOff = 0;
    uint32_t count = 0;
    Index expect = 0;
    Term prevTerm = log_.lastTerm();
    while (off < n) {
      if (n - off < kEntryHeaderBytes) Fail(ErrorCode::kBadArgument, "restore.entries: truncated entry header");
      const uint8_t* h = p + off;
      Index idx = LoadU64(h);
      Term t = LoadU64(h + 8);
      uint32_t len = LoadU32(h + 17);
      if (h[16] > 1) Fail(ErrorCode::kBadArgument, "restore.entries: unknown entry type");
      if (n - off - kEntryHeaderBytes < len) Fail(ErrorCode::kBadArgument, "restore.entries: entry data truncated");
      if (idx == 0 || idx > kMaxSafeInteger || t == 0 || t > kMaxSafeInteger)
        Fail(ErrorCode::kBadArgument, "restore.entries: entry index or term out of range");
      size_t rec = kEntryHeaderBytes + len;
      if (idx <= log_.offset()) {
        if (count > 0) Fail(ErrorCode::kBadArgument, "restore.entries: indexes go backwards");
        off += rec;
        startOff = off;
        continue;
      }
      if (count == 0) expect = log_.offset() + 1;
      if (idx != expect + count)
        Fail(ErrorCode::kBadArgument, "restore.entries: entry " + std::to_string(idx) + " does not continue the log at " +
                                          std::to_string(expect + count));
      if (t < prevTerm) Fail(ErrorCode::kBadArgument, "restore.entries: entry terms go down");
      prevTerm = t;
      count++;
      off += rec;
    }
    if (count > 0) log_.appendRecords(p + startOff, n - startOff, count);
  }
  if (restoring && restore->hasHardState) {
    hs = restore->hardState;
    if (hs.term > kMaxSafeInteger || hs.vote > kMaxSafeInteger || hs.commit > kMaxSafeInteger)
      Fail(ErrorCode::kBadArgument, "restore.hardState fields out of range");
    if (hs.commit > log_.lastIndex())
      Fail(ErrorCode::kBadArgument, "restore.hardState.commit " + std::to_string(hs.commit) + " is beyond the last entry " +
                                        std::to_string(log_.lastIndex()) + " (log lost or truncated?)");
    committed_ = std::max(committed_, hs.commit);
  }
  stabled_ = persisting_ = log_.lastIndex();
  if (opts_.applied > committed_)
    Fail(ErrorCode::kBadArgument, "config.applied " + std::to_string(opts_.applied) + " is above the commit index " +
                                      std::to_string(committed_));
  applied_ = applying_ = std::max(opts_.applied, log_.offset());

  config_ = base;
  switchToConfig(base);
  confHistory_.push_back({log_.offset(), config_});
  // Membership changes the host applied before the restart (up to
  // `applied`) are not in the snapshot; replay them from the log.
  for (Index i = log_.offset() + 1; i <= applied_; i++) {
    const EntryMeta& m = log_.meta(i);
    if (m.type != EntryType::kConfChange) continue;
    ConfChange cc;
    if (!DecodeConfChange(log_.data(i), m.len, &cc).empty()) continue;
    try {
      Config next = ApplyConfChange(config_, cc);
      configIndex_ = i;
      switchToConfig(next);
      confHistory_.push_back({i, config_});
    } catch (const RaftError&) {
      // Refused when it was first applied too; the configuration stayed.
    }
  }
  while (confHistory_.size() > kConfHistoryMax) confHistory_.pop_front();

  // The hard state's term is never below the log's last term; take the
  // larger so that a restore without a hard state still starts consistent.
  term_ = std::max<Term>({hs.term, 1, log_.lastTerm()});
  vote_ = hs.vote;
  prevHardState_ = hs;
  becomeFollower(term_, 0);
  checkInvariants();
}

// ---------------------------------------------------------------------------
// Role transitions.
// ---------------------------------------------------------------------------

void Raft::reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = 0;
  }
  lead_ = 0;
  electionElapsed_ = 0;
  heartbeatElapsed_ = 0;
  resetRandomizedElectionTimeout();
  abortLeaderTransfer();
  votes_.clear();
  Index last = log_.lastIndex();
  for (auto& [id, pr] : progress_) {
    bool learner = pr.isLearner;
    pr = Progress(opts_.maxInflightMsgs, opts_.maxInflightBytes);
    pr.isLearner = learner;
    pr.next = last + 1;
    if (id == id_) pr.match = stabled_;
  }
  pendingConfIndex_ = 0;
  uncommittedBytes_ = 0;
  reads_.clear();
  rounds_.clear();
  readsBeforeCommit_.clear();
  roundOpen_ = false;
}

void Raft::becomeFollower(Term term, Id lead) {
  reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
}

void Raft::becomePreCandidate() {
  KEELSON_ASSERT(role_ != Role::kLeader, "invalid transition leader -> precandidate");
  // Pre-vote (thesis 9.6) changes neither the term nor the vote: a member
  // that cannot win does not disrupt the cluster by raising the term.
  votes_.clear();
  role_ = Role::kPreCandidate;
  lead_ = 0;
}

void Raft::becomeCandidate() {
  KEELSON_ASSERT(role_ != Role::kLeader, "invalid transition leader -> candidate");
  reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Raft::becomeLeader() {
  KEELSON_ASSERT(role_ != Role::kFollower, "invalid transition follower -> leader");
  reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  for (auto& [id, buf] : outbox_) {
    if (buf.empty()) continue;
    bool found = false;
    for (auto& [hid, hbuf] : heldOutbox_) {
      if (hid != id) continue;
      hbuf.append(buf);
      found = true;
    }
    if (!found) heldOutbox_.emplace_back(id, buf);
    buf.clear();
    heldArmed_ = false;
  }
  Progress* self = progress(id_);
  KEELSON_ASSERT(self != nullptr, "leader without its own progress");
  self->becomeReplicate();
  self->recentActive = true;
  // Any membership change in the uncommitted tail of the log may still be
  // pending; refuse new ones until everything up to here is applied.
  pendingConfIndex_ = log_.lastIndex();
  // An empty entry of the new term lets the leader commit (thesis 3.6.2) and
  // serve ReadIndex (6.4). It is exempt from the uncommitted-bytes bound.
  log_.append(term_, EntryType::kNormal, nullptr, 0);
}

// ---------------------------------------------------------------------------
// Ticks and elections.
// ---------------------------------------------------------------------------

void Raft::tick() {
  if (role_ == Role::kLeader) tickHeartbeat();
  else tickElection();
  checkInvariants();
}

void Raft::tickElection() {
  electionElapsed_++;
  if (promotable() && electionElapsed_ >= randomizedElectionTimeout_) {
    electionElapsed_ = 0;
    hup(opts_.preVote ? CampaignType::kPreElection : CampaignType::kElection);
    return;
  }
  // A voter that heard from a leader within the election timeout ignores
  // (pre-)vote requests without answering (the lease in stepOne). When the
  // leader has died, the survivors' leases end within about a tick of each
  // other, so the first survivor to campaign may find another one still
  // inside its lease; nothing would ask that voter again before this
  // member's next election timeout (up to twice the timeout later). So an
  // open campaign asks the voters that have not answered again, once per
  // heartbeat interval. Liveness only: a re-sent request is the same request
  // (term, last log position), answered as the first one would be.
  if ((role_ == Role::kPreCandidate || role_ == Role::kCandidate) && opts_.heartbeatTicks > 0 &&
      electionElapsed_ % opts_.heartbeatTicks == 0)
    resendVoteRequests();
}

void Raft::resendVoteRequests() {
  bool pre = role_ == Role::kPreCandidate;
  for (Id id : config_.allVoters()) {
    if (id == id_ || votes_.count(id) != 0) continue;
    Message m;
    m.type = pre ? MsgType::kPreVote : MsgType::kVote;
    m.to = id;
    m.term = pre ? term_ + 1 : term_;
    m.index = log_.lastIndex();
    m.logTerm = log_.lastTerm();
    send(m);
  }
}

void Raft::tickHeartbeat() {
  heartbeatElapsed_++;
  electionElapsed_++;
  if (electionElapsed_ >= opts_.electionTicks) {
    electionElapsed_ = 0;
    // Check-quorum (thesis 6.2): a leader that did not hear from a quorum
    // within an election timeout may be partitioned away; step down so that
    // clients go elsewhere.
    if (opts_.checkQuorum && !quorumActiveAndReset()) {
      becomeFollower(term_, 0);
      return;
    }
    // A transfer that did not finish within an election timeout is aborted
    // (thesis 3.10) so that proposals are accepted again.
    if (leadTransferee_ != 0) abortLeaderTransfer();
  }
  if (role_ != Role::kLeader) return;
  if (heartbeatElapsed_ >= opts_.heartbeatTicks) {
    heartbeatElapsed_ = 0;
    bcastHeartbeat(nullptr, 0);
  }
}

bool Raft::quorumActiveAndReset() {
  std::map<Id, bool> active;
  for (auto& [id, pr] : progress_) {
    if (id == id_) {
      active[id] = true;
      continue;
    }
    if (pr.recentActive) active[id] = true;
    pr.recentActive = false;
  }
  return JointVoteResult(config_, active) == VoteResult::kWon;
}

bool Raft::promotable() const {
  auto it = progress_.find(id_);
  return it != progress_.end() && !it->second.isLearner && config_.isVoter(id_);
}

bool Raft::hasUnappliedConfChanges() const {
  for (Index i = std::max(applied_, log_.offset()) + 1; i <= committed_; i++)
    if (log_.meta(i).type == EntryType::kConfChange) return true;
  return false;
}

void Raft::campaign() {
  hup(opts_.preVote ? CampaignType::kPreElection : CampaignType::kElection);
  checkInvariants();
}

void Raft::hup(CampaignType t) {
  if (role_ == Role::kLeader) return;
  if (!promotable()) return;
  // A member must not campaign with a configuration it has not caught up
  // with (thesis 4.1): it could count the wrong quorum.
  if (hasUnappliedConfChanges()) return;
  campaignAs(t);
}

void Raft::campaignAs(CampaignType t) {
  MsgType voteType;
  Term msgTerm;
  if (t == CampaignType::kPreElection) {
    becomePreCandidate();
    voteType = MsgType::kPreVote;
    msgTerm = term_ + 1;
  } else {
    becomeCandidate();
    voteType = MsgType::kVote;
    msgTerm = term_;
  }
  if (poll(id_, true) == VoteResult::kWon) {
    // A single voter wins at once.
    if (t == CampaignType::kPreElection) {
      campaignAs(CampaignType::kElection);
    } else {
      becomeLeader();
      bcastAppend();
    }
    return;
  }
  for (Id id : config_.allVoters()) {
    if (id == id_) continue;
    Message m;
    m.type = voteType;
    m.to = id;
    m.term = msgTerm;
    m.index = log_.lastIndex();
    m.logTerm = log_.lastTerm();
    if (t == CampaignType::kTransfer) {
      m.context = reinterpret_cast<const uint8_t*>(kCampaignTransferContext);
      m.contextLen = sizeof(kCampaignTransferContext) - 1;
    }
    send(m);
  }
}

VoteResult Raft::poll(Id id, bool granted) {
  votes_.emplace(id, granted);
  return JointVoteResult(config_, votes_);
}

// ---------------------------------------------------------------------------
// Stepping messages.
// ---------------------------------------------------------------------------

void Raft::step(const uint8_t* p, size_t n) {
  std::string err = DecodeMessages(p, n, id_, &scratch_);
  if (!err.empty()) {
    scratch_.clear();
    Fail(ErrorCode::kBadMessage, "bad message: " + err);
  }
  for (const Message& m : scratch_) stepOne(m);
  scratch_.clear();
  checkInvariants();
}

void Raft::stepOne(const Message& m) {
  if (m.term == 0) {
    // A forwarded proposal or read request: not bound to a term.
  } else if (m.term > term_) {
    if (m.type == MsgType::kVote || m.type == MsgType::kPreVote) {
      bool force = m.contextLen == sizeof(kCampaignTransferContext) - 1 &&
                   std::memcmp(m.context, kCampaignTransferContext, m.contextLen) == 0;
      bool inLease = opts_.checkQuorum && lead_ != 0 && electionElapsed_ < opts_.electionTicks;
      // Leader lease for votes (thesis 4.2.3 / 6.2): a member that heard
      // from a live leader within the minimum election timeout ignores the
      // request, so a removed or partitioned member cannot depose it.
      if (!force && inLease) return;
    }
    if (m.type == MsgType::kPreVote) {
      // Never change the term for a pre-vote.
    } else if (m.type == MsgType::kPreVoteResp && !m.reject) {
      // The term is raised when the pre-candidate wins the pre-vote.
    } else if (m.type == MsgType::kApp || m.type == MsgType::kHeartbeat || m.type == MsgType::kSnap) {
      becomeFollower(m.term, m.from);
    } else {
      becomeFollower(m.term, 0);
    }
  } else if (m.term < term_) {
    if ((opts_.checkQuorum || opts_.preVote) && (m.type == MsgType::kHeartbeat || m.type == MsgType::kApp)) {
      // A stale leader may be stuck below our term (we moved on while it
      // was partitioned and pre-vote/check-quorum keep us from raising
      // terms it would see): tell it our term so that it steps down.
      Message r;
      r.type = MsgType::kAppResp;
      r.to = m.from;
      send(r);
    } else if (m.type == MsgType::kPreVote) {
      Message r;
      r.type = MsgType::kPreVoteResp;
      r.to = m.from;
      r.reject = true;
      send(r);
    }
    return;
  }

  if (m.type == MsgType::kVote || m.type == MsgType::kPreVote) {
    bool canVote = vote_ == m.from || (vote_ == 0 && lead_ == 0) || (m.type == MsgType::kPreVote && m.term > term_);
    if (canVote && m.type == MsgType::kPreVote && role_ == Role::kPreCandidate) {
      // Two members whose election timeouts fire within a round trip of
      // each other would each grant the other's pre-vote, both become
      // candidates, vote for themselves and split the vote, costing another
      // randomized election timeout. So a pre-candidate grants another
      // pre-candidate only a strictly more up-to-date log, or an equally
      // up-to-date one from a lower member id: of two concurrent
      // pre-candidates exactly one can get the other's grant. Liveness
      // only: a pre-vote changes no term, vote or log.
      bool newer = m.logTerm > log_.lastTerm() || (m.logTerm == log_.lastTerm() && m.index > log_.lastIndex());
      bool same = m.logTerm == log_.lastTerm() && m.index == log_.lastIndex();
      if (!newer && !(same && m.from < id_)) canVote = false;
    }
    Message r;
    r.to = m.from;
    r.type = m.type == MsgType::kVote ? MsgType::kVoteResp : MsgType::kPreVoteResp;
    if (canVote && log_.isUpToDate(m.index, m.logTerm)) {
      // The response carries the request's term so that a pre-candidate
      // (whose own term is one lower) counts it.
      r.term = m.term;
      send(r);
      if (m.type == MsgType::kVote) {
        electionElapsed_ = 0;
        vote_ = m.from;
      }
    } else {
      r.reject = true;
      send(r);
    }
    return;
  }

  switch (role_) {
    case Role::kLeader: stepLeader(m); break;
    case Role::kCandidate:
    case Role::kPreCandidate: stepCandidate(m); break;
    case Role::kFollower: stepFollower(m); break;
  }
}

void Raft::stepLeader(const Message& m) {
  switch (m.type) {
    case MsgType::kProp: {
      std::vector<ProposedEntry> ents;
      ents.reserve(m.entryCount);
      const uint8_t* e = m.entries;
      for (uint32_t i = 0; i < m.entryCount; i++) {
        uint32_t len = LoadU32(e + 17);
        ents.push_back({static_cast<EntryType>(e[16]), e + kEntryHeaderBytes, len});
        e += kEntryHeaderBytes + len;
      }
      leaderPropose(ents.data(), ents.size(), false);
      return;
    }
    case MsgType::kReadIndex: leaderRead(m.from, m.context, m.contextLen, false); return;
    case MsgType::kTransferLeader: transfer(m.index, false); return;
    default: break;
  }
  Progress* pr = progress(m.from);
  if (pr == nullptr) return;
  switch (m.type) {
    case MsgType::kAppResp: {
      pr->recentActive = true;
      if (m.reject) {
        // Fast backtracking (thesis 3.5): the follower names the last index
        // at or below the probe whose term is at most the probe's term; the
        // leader skips to the last entry of its own log that could match.
        Index nextProbe = m.rejectHint;
        if (m.logTerm > 0) {
          Index i = std::min(m.rejectHint, log_.lastIndex());
          Term t;
          while (i > log_.offset() && log_.term(i, &t) && t > m.logTerm) i--;
          nextProbe = i;
        }
        if (pr->maybeDecrTo(m.index, nextProbe)) {
          if (pr->state == ProgressState::kReplicate) pr->becomeProbe();
          maybeSendAppend(m.from, *pr, true);
        }
        return;
      }
      if (m.index > log_.lastIndex())
        Fail(ErrorCode::kBadMessage, "append response from " + std::to_string(m.from) + " acknowledges index " +
                                         std::to_string(m.index) + " beyond the leader's last index " +
                                         std::to_string(log_.lastIndex()));
      bool oldPaused = pr->isPaused();
      if (pr->maybeUpdate(m.index) || (pr->match == m.index && pr->state == ProgressState::kProbe)) {
        pr->stalledHeartbeats = 0;
        if (pr->state == ProgressState::kProbe) {
          pr->becomeReplicate();
        } else if (pr->state == ProgressState::kSnapshot && pr->match + 1 >= log_.firstIndex()) {
          pr->becomeProbe();
          pr->becomeReplicate();
        } else if (pr->state == ProgressState::kReplicate) {
          pr->inflights.freeLE(m.index);
        }
        if (maybeCommit()) {
          bcastAppend();
        } else if (oldPaused) {
          maybeSendAppend(m.from, *pr, true);
        }
        // Fill the window: the loop ends when it is full or nothing is left.
        while (maybeSendAppend(m.from, *pr, false)) {
        }
        if (m.from == leadTransferee_ && pr->match == log_.lastIndex()) sendTimeoutNow(m.from);
      }
      return;
    }
    case MsgType::kHeartbeatResp: {
      pr->recentActive = true;
      pr->msgAppFlowPaused = false;
      if (pr->state == ProgressState::kReplicate && pr->inflights.full()) {
        if (++pr->stalledHeartbeats >= kFullWindowHeartbeatsMax) pr->becomeProbe();
      } else if (pr->state == ProgressState::kSnapshot) {
        uint32_t wait = kSnapshotWaitElectionTimeouts * std::max<uint32_t>(1, opts_.electionTicks / opts_.heartbeatTicks);
        if (++pr->stalledHeartbeats >= wait) pr->becomeProbe();
      }
      if (pr->match < log_.lastIndex() || pr->state == ProgressState::kProbe) maybeSendAppend(m.from, *pr, true);
      onReadAck(m.from, m.context, m.contextLen);
      return;
    }
    default: return;
  }
}

void Raft::stepCandidate(const Message& m) {
  MsgType myResp = role_ == Role::kPreCandidate ? MsgType::kPreVoteResp : MsgType::kVoteResp;
  switch (m.type) {
    case MsgType::kApp:
      becomeFollower(m.term, m.from);
      handleAppendEntries(m);
      return;
    case MsgType::kHeartbeat:
      becomeFollower(m.term, m.from);
      handleHeartbeat(m);
      return;
    case MsgType::kSnap:
      becomeFollower(m.term, m.from);
      handleSnapshot(m);
      return;
    default: break;
  }
  if (m.type != myResp) return;  // proposals, reads, transfers: no leader to serve them
  switch (poll(m.from, !m.reject)) {
    case VoteResult::kWon:
      KEELSON_ASSERT(promotable(), "a member that cannot vote won an election");
      if (role_ == Role::kPreCandidate) {
        campaignAs(CampaignType::kElection);
      } else {
        becomeLeader();
        bcastAppend();
      }
      return;
    case VoteResult::kLost:
      becomeFollower(term_, 0);
      return;
    case VoteResult::kPending: return;
  }
}

void Raft::stepFollower(const Message& m) {
  switch (m.type) {
    case MsgType::kProp:
    case MsgType::kReadIndex:
    case MsgType::kTransferLeader: {
      if (lead_ == 0) return;
      if (m.type == MsgType::kProp && opts_.disableProposalForwarding) return;
      Message f = m;
      f.to = lead_;
      f.term = 0;
      send(f);
      return;
    }
    case MsgType::kApp:
      electionElapsed_ = 0;
      lead_ = m.from;
      handleAppendEntries(m);
      return;
    case MsgType::kHeartbeat:
      electionElapsed_ = 0;
      lead_ = m.from;
      handleHeartbeat(m);
      return;
    case MsgType::kSnap:
      electionElapsed_ = 0;
      lead_ = m.from;
      handleSnapshot(m);
      return;
    case MsgType::kTimeoutNow:
      // The leader hands over (thesis 3.10): campaign at once, skipping
      // pre-vote and the vote lease.
      hup(CampaignType::kTransfer);
      return;
    case MsgType::kReadIndexResp:
      readStates_.push_back(ReadState{m.index, std::string(reinterpret_cast<const char*>(m.context), m.contextLen)});
      return;
    default: return;
  }
}

// ---------------------------------------------------------------------------
// Log replication.
// ---------------------------------------------------------------------------

void Raft::handleAppendEntries(const Message& m) {
  Message r;
  r.type = MsgType::kAppResp;
  r.to = m.from;
  if (m.index < committed_) {
    r.index = committed_;
    send(r);
    return;
  }
  if (!log_.matchTerm(m.index, m.logTerm)) {
    // Reject with a hint (thesis 3.5): the largest index at or below the
    // probe whose term is at most the probe's term, and that term.
    Index hint = std::min(m.index, log_.lastIndex());
    Term t = 0;
    while (hint > log_.offset() && log_.term(hint, &t) && t > m.logTerm) hint--;
    r.index = m.index;
    r.reject = true;
    r.rejectHint = hint;
    r.logTerm = log_.termOrZero(hint);
    send(r);
    return;
  }
  Index lastNew = m.index + m.entryCount;
  // Find the first entry that is new or conflicts with ours; entries before
  // it are duplicates of what we hold.
  const uint8_t* e = m.entries;
  for (uint32_t i = 0; i < m.entryCount; i++) {
    Index idx = m.index + 1 + i;
    Term t = LoadU64(e + 8);
    if (!log_.matchTerm(idx, t)) {
      if (idx <= committed_) {
        // Raft never overwrites a committed entry (Leader Completeness);
        // refuse the message instead of losing acknowledged data.
        Fail(ErrorCode::kBadMessage, "append from " + std::to_string(m.from) + " conflicts with committed entry " +
                                         std::to_string(idx) + " (commit " + std::to_string(committed_) +
                                         "): safety violation, refused");
      }
      log_.truncateAfter(idx - 1);
      stabled_ = std::min(stabled_, idx - 1);
      persisting_ = std::min(persisting_, idx - 1);
      size_t rest = m.entriesLen - static_cast<size_t>(e - m.entries);
      log_.appendRecords(e, rest, m.entryCount - i);
      break;
    }
    e += kEntryHeaderBytes + LoadU32(e + 17);
  }
  commitTo(std::min(m.commit, lastNew));
  r.index = lastNew;
  send(r);
}

void Raft::handleHeartbeat(const Message& m) {
  if (m.commit > log_.lastIndex())
    Fail(ErrorCode::kBadMessage, "heartbeat commit " + std::to_string(m.commit) + " is beyond the last entry " +
                                     std::to_string(log_.lastIndex()) + " (was acknowledged data lost?)");
  commitTo(m.commit);
  Message r;
  r.type = MsgType::kHeartbeatResp;
  r.to = m.from;
  r.context = m.context;
  r.contextLen = m.contextLen;
  send(r);
}

void Raft::handleSnapshot(const Message& m) {
  Message r;
  r.type = MsgType::kAppResp;
  r.to = m.from;
  r.index = restoreSnapshot(m) ? log_.lastIndex() : committed_;
  send(r);
}

bool Raft::restoreSnapshot(const Message& m) {
  const SnapshotMeta& s = m.snap;
  if (s.index <= committed_) return false;
  KEELSON_ASSERT(role_ == Role::kFollower, "restoring a snapshot while not a follower");
  if (log_.matchTerm(s.index, s.term)) {
    // We already hold the snapshot's last entry: just move the commit.
    commitTo(s.index);
    return false;
  }
  log_.reset(s.index, s.term);
  stabled_ = persisting_ = s.index;
  committed_ = s.index;
  hasSnapshot_ = true;
  snapshot_ = s;
  snapshotData_.assign(reinterpret_cast<const char*>(m.snapData), m.snapDataLen);
  snapshotToPersist_ = true;
  Config c = Config::fromConfState(s.conf);
  configIndex_ = s.index;
  confHistory_.clear();
  confHistory_.push_back({s.index, c});
  switchToConfig(c);
  return true;
}

void Raft::commitTo(Index i) {
  if (i <= committed_) return;
  KEELSON_ASSERT(i <= log_.lastIndex(), "commit index beyond the last log entry");
  committed_ = i;
}

bool Raft::maybeCommit() {
  Index mci = JointCommitted(config_, [this](Id id) -> Index {
    auto it = progress_.find(id);
    return it == progress_.end() ? 0 : it->second.match;
  });
  if (mci == std::numeric_limits<Index>::max() || mci <= committed_) return false;
  // Raft paper 5.4.2: only entries of the leader's own term are committed by
  // counting replicas; earlier ones are committed indirectly with them.
  if (!opts_.bugCommitPreviousTerm && log_.termOrZero(mci) != term_) return false;
  commitTo(mci);
  if (!readsBeforeCommit_.empty() && committedEntryInCurrentTerm()) {
    std::vector<ReadRequest> waiting;
    waiting.swap(readsBeforeCommit_);
    for (const ReadRequest& r : waiting)
      leaderRead(r.from, reinterpret_cast<const uint8_t*>(r.ctx.data()), r.ctx.size(), false);
  }
  return true;
}

bool Raft::outboxEmpty() const {
  for (const auto& [id, buf] : outbox_)
    if (!buf.empty()) return false;
  return true;
}

std::string& Raft::outboxFor(Id to) {
  for (auto& [id, buf] : outbox_)
    if (id == to) return buf;
  outbox_.emplace_back(to, std::string());
  return outbox_.back().second;
}

void Raft::send(Message& m) {
  KEELSON_ASSERT(m.to != 0 && m.to != id_, "message to nobody or to self");
  m.from = id_;
  if (m.term == 0 && m.type != MsgType::kProp && m.type != MsgType::kReadIndex) m.term = term_;
  EncodeMessage(outboxFor(m.to), m);
}

bool Raft::maybeSendAppend(Id to, Progress& pr, bool sendIfEmpty) {
  if (pr.isPaused()) return false;
  Index prevIndex = pr.next - 1;
  Term prevTerm = 0;
  if (!log_.term(prevIndex, &prevTerm)) return maybeSendSnapshot(to, pr);
  Index last = log_.lastIndex();
  Message m;
  m.type = MsgType::kApp;
  m.to = to;
  m.index = prevIndex;
  m.logTerm = prevTerm;
  m.commit = committed_;
  Index hi = prevIndex;
  if (pr.next <= last) {
    hi = log_.limitBySize(pr.next, last, opts_.maxSizePerMsgBytes);
    auto [p, n] = log_.bytes(pr.next, hi);
    m.entries = p;
    m.entriesLen = n;
    m.entryCount = static_cast<uint32_t>(hi - pr.next + 1);
  }
  if (m.entryCount == 0 && !sendIfEmpty) return false;
  send(m);
  pr.sentEntries(hi, m.entryCount, m.entriesLen);
  return true;
}

bool Raft::maybeSendSnapshot(Id to, Progress& pr) {
  // Only a member we heard from recently gets a (possibly large) snapshot.
  if (!pr.recentActive) return false;
  KEELSON_ASSERT(hasSnapshot_ && snapshot_.index >= log_.offset(), "log compacted past the latest snapshot");
  Message m;
  m.type = MsgType::kSnap;
  m.to = to;
  m.hasSnapshot = true;
  m.snap = snapshot_;
  m.snapData = reinterpret_cast<const uint8_t*>(snapshotData_.data());
  m.snapDataLen = snapshotData_.size();
  send(m);
  pr.becomeSnapshot(snapshot_.index);
  return true;
}

void Raft::bcastAppend() {
  for (auto& [id, pr] : progress_)
    if (id != id_) maybeSendAppend(id, pr, true);
}

void Raft::bcastHeartbeat(const uint8_t* ctx, size_t len) {
  for (auto& [id, pr] : progress_) {
    if (id == id_) continue;
    Message m;
    m.type = MsgType::kHeartbeat;
    m.to = id;
    // Never tell a follower to commit beyond what it is known to hold.
    m.commit = std::min(pr.match, committed_);
    m.context = ctx;
    m.contextLen = len;
    send(m);
  }
}

void Raft::sendTimeoutNow(Id to) {
  Message m;
  m.type = MsgType::kTimeoutNow;
  m.to = to;
  send(m);
}

// ---------------------------------------------------------------------------
// Proposals.
// ---------------------------------------------------------------------------

void Raft::appendAsLeader(const ProposedEntry* ents, size_t count) {
  for (size_t i = 0; i < count; i++) {
    log_.append(term_, ents[i].type, ents[i].data, ents[i].len);
    if (ents[i].type == EntryType::kConfChange) pendingConfIndex_ = log_.lastIndex();
    uncommittedBytes_ += ents[i].len;
  }
}

void Raft::leaderPropose(const ProposedEntry* in, size_t count, bool local) {
  if (progress(id_) == nullptr) {
    if (local) Fail(ErrorCode::kProposalDropped, "proposal dropped: this member was removed from the configuration");
    return;
  }
  if (leadTransferee_ != 0) {
    if (local)
      Fail(ErrorCode::kProposalDropped,
           "proposal dropped: leadership transfer to " + std::to_string(leadTransferee_) + " in progress");
    return;
  }
  std::vector<ProposedEntry> ents(in, in + count);
  bool confAccepted = false;
  uint64_t total = 0;
  for (ProposedEntry& e : ents) {
    if (e.len > opts_.maxSizePerMsgBytes || e.len > opts_.maxUncommittedEntriesBytes) {
      if (local)
        Fail(ErrorCode::kTooLarge, "proposal of " + std::to_string(e.len) + " bytes exceeds maxSizePerMsgBytes " +
                                       std::to_string(opts_.maxSizePerMsgBytes) + " or maxUncommittedEntriesBytes " +
                                       std::to_string(opts_.maxUncommittedEntriesBytes));
      return;
    }
    total += e.len;
    if (e.type != EntryType::kConfChange) continue;
    std::string refused;
    if (confAccepted) {
      refused = "only one membership change per proposal";
    } else if (pendingConfIndex_ > applied_) {
      refused = "a membership change (entry " + std::to_string(pendingConfIndex_) + ") is not applied yet";
    } else {
      ConfChange cc;
      refused = DecodeConfChange(e.data, e.len, &cc);
      if (refused.empty()) {
        try {
          ApplyConfChange(config_, cc);
        } catch (const RaftError& err) {
          refused = err.what();
        }
      }
    }
    if (!refused.empty()) {
      if (local) Fail(ErrorCode::kConfChange, refused);
      // A forwarded change that is not allowed becomes an empty entry so
      // that the rest of the batch still goes through.
      total -= e.len;
      e = ProposedEntry{EntryType::kNormal, nullptr, 0};
      continue;
    }
    confAccepted = true;
  }
  if (total > 0 && uncommittedBytes_ + total > opts_.maxUncommittedEntriesBytes) {
    if (local)
      Fail(ErrorCode::kUncommittedLimit, "proposal of " + std::to_string(total) + " bytes would exceed the " +
                                             std::to_string(opts_.maxUncommittedEntriesBytes) +
                                             " bytes of uncommitted entries allowed (" +
                                             std::to_string(uncommittedBytes_) + " pending)");
    return;
  }
  appendAsLeader(ents.data(), ents.size());
  bcastAppend();
}

void Raft::forwardProposal(const ProposedEntry* ents, size_t count) {
  std::string buf;
  for (size_t i = 0; i < count; i++) AppendEntryRecord(buf, 0, 0, ents[i].type, ents[i].data, ents[i].len);
  Message m;
  m.type = MsgType::kProp;
  m.to = lead_;
  m.entries = reinterpret_cast<const uint8_t*>(buf.data());
  m.entriesLen = buf.size();
  m.entryCount = static_cast<uint32_t>(count);
  send(m);
}

namespace {
void CheckProposalSize(const RaftOptions& o, size_t len) {
  if (len > o.maxSizePerMsgBytes || len > o.maxUncommittedEntriesBytes || len > UINT32_MAX)
    Fail(ErrorCode::kTooLarge, "proposal of " + std::to_string(len) + " bytes exceeds maxSizePerMsgBytes " +
                                   std::to_string(o.maxSizePerMsgBytes) + " or maxUncommittedEntriesBytes " +
                                   std::to_string(o.maxUncommittedEntriesBytes));
}
}  // namespace

void Raft::propose(const uint8_t* data, size_t len) {
  CheckProposalSize(opts_, len);
  ProposedEntry e{EntryType::kNormal, data, static_cast<uint32_t>(len)};
  if (role_ == Role::kLeader) {
    leaderPropose(&e, 1, true);
  } else {
    if (opts_.disableProposalForwarding) Fail(ErrorCode::kNotLeader, "not the leader", lead_);
    if (lead_ == 0) Fail(ErrorCode::kProposalDropped, "proposal dropped: no leader known");
    forwardProposal(&e, 1);
  }
  checkInvariants();
}

void Raft::proposeBatch(const uint8_t* p, size_t n, uint32_t count) {
  // Every record takes at least its 4-byte length: a count beyond that is
  // refused before anything is allocated for it.
  if (count > n / 4) Fail(ErrorCode::kBadArgument, "proposeBatch: " + std::to_string(count) + " records cannot fit in " + std::to_string(n) + " bytes");
  std::vector<ProposedEntry> ents;
  ents.reserve(count);
  size_t off = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (n - off < 4) Fail(ErrorCode::kBadArgument, "proposeBatch: record " + std::to_string(i) + " is truncated");
    uint32_t len = LoadU32(p + off);
    if (n - off - 4 < len) Fail(ErrorCode::kBadArgument, "proposeBatch: record " + std::to_string(i) + " exceeds the buffer");
    CheckProposalSize(opts_, len);
    ents.push_back({EntryType::kNormal, p + off + 4, len});
    off += 4 + size_t{len};
  }
  if (off != n) Fail(ErrorCode::kBadArgument, "proposeBatch: bytes left after " + std::to_string(count) + " records");
  if (count == 0) return;
  if (role_ == Role::kLeader) {
    leaderPropose(ents.data(), ents.size(), true);
  } else {
    if (opts_.disableProposalForwarding) Fail(ErrorCode::kNotLeader, "not the leader", lead_);
    if (lead_ == 0) Fail(ErrorCode::kProposalDropped, "proposal dropped: no leader known");
    forwardProposal(ents.data(), ents.size());
  }
  checkInvariants();
}

void Raft::proposeConfChange(const ConfChange& cc) {
  if (cc.changes.size() > kConfChangeChangesMax) Fail(ErrorCode::kBadArgument, "too many changes in one conf change");
  for (const ConfChangeSingle& c : cc.changes)
    if (!ValidId(c.nodeId)) Fail(ErrorCode::kBadArgument, "conf change node ids must be integers in [1, 2^53)");
  std::string data = EncodeConfChange(cc);
  CheckProposalSize(opts_, data.size());
  ProposedEntry e{EntryType::kConfChange, reinterpret_cast<const uint8_t*>(data.data()), static_cast<uint32_t>(data.size())};
  if (role_ == Role::kLeader) {
    leaderPropose(&e, 1, true);
  } else {
    if (opts_.disableProposalForwarding) Fail(ErrorCode::kNotLeader, "not the leader", lead_);
    if (lead_ == 0) Fail(ErrorCode::kProposalDropped, "proposal dropped: no leader known");
    forwardProposal(&e, 1);
  }
  checkInvariants();
}

// ---------------------------------------------------------------------------
// Membership.
// ---------------------------------------------------------------------------

ConfState Raft::applyConfChange(const uint8_t* data, size_t len) {
  ConfChange cc;
  std::string err = DecodeConfChange(data, len, &cc);
  if (!err.empty()) Fail(ErrorCode::kBadArgument, "applyConfChange: " + err);
  Index idx = std::max(applied_, applying_);
  if (!confToApply_.empty()) {
    idx = confToApply_.front();
    confToApply_.pop_front();
  }
  // A snapshot restored meanwhile already contains this change.
  if (idx != 0 && idx <= configIndex_) return config_.toConfState();
  Config next = ApplyConfChange(config_, cc);
  configIndex_ = idx;
  switchToConfig(next);
  confHistory_.push_back({idx, config_});
  while (confHistory_.size() > kConfHistoryMax) confHistory_.pop_front();
  checkInvariants();
  return config_.toConfState();
}

void Raft::switchToConfig(const Config& c) {
  config_ = c;
  std::vector<Id> members = config_.allVoters();
  for (Id id : config_.learners) InsertSorted(&members, id);
  for (Id id : config_.learnersNext) InsertSorted(&members, id);
  for (auto it = progress_.begin(); it != progress_.end();) {
    if (!Contains(members, it->first)) it = progress_.erase(it);
    else ++it;
  }
  Index last = log_.lastIndex();
  for (Id id : members) {
    auto it = progress_.find(id);
    if (it == progress_.end()) {
      Progress pr(opts_.maxInflightMsgs, opts_.maxInflightBytes);
      pr.next = last + 1;
      if (id == id_) pr.match = stabled_;
      // A new member counts as active so that it can be sent a snapshot.
      pr.recentActive = true;
      it = progress_.emplace(id, std::move(pr)).first;
    }
    it->second.isLearner = config_.isLearner(id);
  }
  if ((role_ == Role::kCandidate || role_ == Role::kPreCandidate) && !promotable()) {
    // A member that is no longer a voter stops campaigning: it must not win
    // with the votes of a configuration it is not part of.
    becomeFollower(term_, 0);
    return;
  }
  if (role_ != Role::kLeader) return;
  if (!config_.isVoter(id_)) {
    // The leader left the configuration (thesis 4.2.2): step down once the
    // change that removed it is applied.
    becomeFollower(term_, 0);
    return;
  }
  if (maybeCommit()) {
    bcastAppend();
  } else {
    for (auto& [id, pr] : progress_)
      if (id != id_) maybeSendAppend(id, pr, false);
  }
  if (leadTransferee_ != 0 && !config_.isVoter(leadTransferee_)) abortLeaderTransfer();
}

void Raft::transfer(Id to, bool local) {
  Progress* pr = progress(to);
  if (pr == nullptr || pr->isLearner || !config_.isVoter(to)) {
    if (local) Fail(ErrorCode::kBadArgument, "transferLeader: " + std::to_string(to) + " is not a voter");
    return;
  }
  if (leadTransferee_ != 0) {
    if (leadTransferee_ == to) return;
    abortLeaderTransfer();
  }
  if (to == id_) return;
  // The transfer must finish within an election timeout (tickHeartbeat).
  electionElapsed_ = 0;
  leadTransferee_ = to;
  if (pr->match == log_.lastIndex()) sendTimeoutNow(to);
  else maybeSendAppend(to, *pr, true);
}

void Raft::transferLeader(Id to) {
  if (!ValidId(to)) Fail(ErrorCode::kBadArgument, "transferLeader: the transferee must be an id in [1, 2^53)");
  if (role_ == Role::kLeader) {
    transfer(to, true);
  } else {
    if (lead_ == 0) Fail(ErrorCode::kProposalDropped, "transfer dropped: no leader known");
    Message m;
    m.type = MsgType::kTransferLeader;
    m.to = lead_;
    m.index = to;
    send(m);
  }
  checkInvariants();
}

// ---------------------------------------------------------------------------
// ReadIndex (thesis 6.4).
// ---------------------------------------------------------------------------

void Raft::readIndex(const uint8_t* ctx, size_t len) {
  if (len > UINT32_MAX) Fail(ErrorCode::kBadArgument, "readIndex: context too large");
  if (role_ == Role::kLeader) {
    leaderRead(id_, ctx, len, true);
  } else {
    if (lead_ == 0) Fail(ErrorCode::kProposalDropped, "read dropped: no leader known");
    Message m;
    m.type = MsgType::kReadIndex;
    m.to = lead_;
    m.context = ctx;
    m.contextLen = len;
    send(m);
  }
  checkInvariants();
}

void Raft::leaderRead(Id from, const uint8_t* ctx, size_t len, bool local) {
  ReadRequest req{0, committed_, from, std::string(reinterpret_cast<const char*>(ctx), len)};
  if (config_.voters.size() == 1 && !config_.joint() && config_.voters[0] == id_) {
    // A single voter is its own quorum.
    releaseRead(req);
    return;
  }
  if (!committedEntryInCurrentTerm()) {
    // A new leader does not know the commit index until an entry of its own
    // term commits (thesis 6.4 step 1); hold the read until then.
    if (readsBeforeCommit_.size() >= kReadsPendingMax) {
      if (local) Fail(ErrorCode::kProposalDropped, "read dropped: too many reads waiting");
      return;
    }
    readsBeforeCommit_.push_back(std::move(req));
    return;
  }
  if (reads_.size() >= kReadsPendingMax) {
    if (local) Fail(ErrorCode::kProposalDropped, "read dropped: too many reads waiting");
    return;
  }
  // Reads batch behind one heartbeat round per Ready: the heartbeats leave
  // only when the host takes the Ready, so every read that joins the round
  // before that is confirmed by heartbeats sent after it arrived.
  if (!roundOpen_) {
    ReadRound round;
    round.id = nextRoundId_++;
    round.acks[id_] = true;
    rounds_.push_back(std::move(round));
    roundOpen_ = true;
    uint8_t b[8];
    StoreU64(b, rounds_.back().id);
    bcastHeartbeat(b, 8);
  }
  req.round = rounds_.back().id;
  reads_.push_back(std::move(req));
}

void Raft::releaseRead(const ReadRequest& r) {
  if (r.from == id_) {
    readStates_.push_back(ReadState{r.index, r.ctx});
    return;
  }
  Message m;
  m.type = MsgType::kReadIndexResp;
  m.to = r.from;
  m.index = r.index;
  m.context = reinterpret_cast<const uint8_t*>(r.ctx.data());
  m.contextLen = r.ctx.size();
  send(m);
}

void Raft::onReadAck(Id from, const uint8_t* ctx, size_t len) {
  if (len != 8) return;
  uint64_t rid = LoadU64(ctx);
  for (ReadRound& round : rounds_) {
    if (round.id != rid) continue;
    round.acks[from] = true;
    if (JointVoteResult(config_, round.acks) != VoteResult::kWon) return;
    // Leadership is confirmed for this round and so for every earlier one.
    while (!reads_.empty() && reads_.front().round <= rid) {
      releaseRead(reads_.front());
      reads_.pop_front();
    }
    while (!rounds_.empty() && rounds_.front().id <= rid) rounds_.pop_front();
    return;
  }
}

// ---------------------------------------------------------------------------
// Ready / advance.
// ---------------------------------------------------------------------------

bool Raft::hasReady() const {
  if (readyOutstanding_) return false;
  if (!softStateKnown_ || lead_ != prevLead_ || role_ != prevRole_) return true;
  if (HardState{term_, vote_, committed_} != prevHardState_) return true;
  if (log_.lastIndex() > stabled_) return true;
  if (committed_ > std::max(applied_, log_.offset())) return true;
  if (!heldOutbox_.empty() && (heldArmed_ || role_ != Role::kLeader)) return true;
  return !outboxEmpty() || snapshotToPersist_ || !readStates_.empty();
}

ReadyOut Raft::ready() {
  if (readyOutstanding_) Fail(ErrorCode::kBadArgument, "ready() called again before advance()");
  ReadyOut rd;
  rd.lead = lead_;
  rd.role = role_;
  prevLead_ = lead_;
  prevRole_ = role_;
  softStateKnown_ = true;
  HardState hs{term_, vote_, committed_};
  if (hs != prevHardState_) {
    rd.hasHardState = true;
    rd.hardState = hs;
    rd.mustSync = hs.term != prevHardState_.term || hs.vote != prevHardState_.vote;
    prevHardState_ = hs;
  }
  if (snapshotToPersist_) {
    rd.hasSnapshot = true;
    rd.snapshot = snapshot_;
    rd.snapshotData = &snapshotData_;
    rd.mustSync = true;
    snapshotToPersist_ = false;
    readyHadSnapshot_ = true;
    readySnapshotIndex_ = snapshot_.index;
  }
  Index last = log_.lastIndex();
  if (last > stabled_) {
    auto [p, n] = log_.bytes(stabled_ + 1, last);
    rd.entries = p;
    rd.entriesLen = n;
    rd.entryCount = static_cast<uint32_t>(last - stabled_);
    rd.mustSync = true;
  }
  persisting_ = last;
  Index from = std::max(applied_, log_.offset()) + 1;
  applying_ = applied_;
  if (committed_ >= from) {
    Index hi = log_.limitBySize(from, committed_, kCommittedBytesPerReadyMax);
    auto [p, n] = log_.bytes(from, hi);
    rd.committed = p;
    rd.committedLen = n;
    rd.committedCount = static_cast<uint32_t>(hi - from + 1);
    uint64_t payload = 0;
    for (Index i = from; i <= hi; i++) {
      const EntryMeta& m = log_.meta(i);
      payload += m.len;
      if (m.type == EntryType::kConfChange) confToApply_.push_back(i);
    }
    if (role_ == Role::kLeader) uncommittedBytes_ -= std::min(payload, uncommittedBytes_);
    applying_ = hi;
  }
  if (!heldOutbox_.empty()) {
    if (role_ != Role::kLeader || heldArmed_) {
      // Either this Ready is persisted before it is sent (not a leader) or
      // the state the held messages depend on was in the previous one.
      for (auto& [id, buf] : heldOutbox_) outboxFor(id).insert(0, buf);
      heldOutbox_.clear();
      heldArmed_ = false;
    } else {
      heldArmed_ = true;
    }
  }
  // Members leave and join rarely; drop buffers of destinations that had
  // nothing to send, and bound the capacity kept for reuse.
  constexpr size_t kOutboxKeepBytesMax = size_t{64} << 20;
  for (auto& [id, buf] : handedOut_) {
    buf.clear();
    if (buf.capacity() > kOutboxKeepBytesMax) buf.shrink_to_fit();
  }
  std::swap(outbox_, handedOut_);
  outbox_.erase(std::remove_if(outbox_.begin(), outbox_.end(),
                               [this](const std::pair<Id, std::string>& p) { return progress_.count(p.first) == 0; }),
                outbox_.end());
  rd.messages = &handedOut_;
  rd.readStates = std::move(readStates_);
  readStates_.clear();
  roundOpen_ = false;
  readyOutstanding_ = true;
  return rd;
}

void Raft::advance() {
  if (!readyOutstanding_) Fail(ErrorCode::kBadArgument, "advance() without an outstanding ready()");
  readyOutstanding_ = false;
  if (readyHadSnapshot_) {
    applied_ = std::max(applied_, readySnapshotIndex_);
    readyHadSnapshot_ = false;
  }
  stabled_ = std::max(stabled_, persisting_);
  persisting_ = stabled_;
  applied_ = std::max(applied_, applying_);
  applying_ = applied_;
  if (role_ == Role::kLeader) {
    // Thesis 10.2.1: the leader's own log counts toward the quorum only once
    // it is durable, which is what advance() tells us.
    Progress* self = progress(id_);
    if (self != nullptr && self->maybeUpdate(stabled_) && maybeCommit()) bcastAppend();
    if (role_ == Role::kLeader && config_.autoLeave && config_.joint() && applied_ >= pendingConfIndex_ &&
        leadTransferee_ == 0) {
      ConfChange leave;
      std::string data = EncodeConfChange(leave);
      ProposedEntry e{EntryType::kConfChange, reinterpret_cast<const uint8_t*>(data.data()),
                      static_cast<uint32_t>(data.size())};
      appendAsLeader(&e, 1);
      bcastAppend();
    }
  }
  checkInvariants();
}

// ---------------------------------------------------------------------------
// Snapshots and compaction.
// ---------------------------------------------------------------------------

void Raft::createSnapshot(Index index, const uint8_t* data, size_t len) {
  Index appliedHi = std::max(applied_, applying_);
  if (index == 0 || index > appliedHi)
    Fail(ErrorCode::kSnapshot, "createSnapshot: index " + std::to_string(index) + " is not in [1, applied " +
                                   std::to_string(appliedHi) + "]");
  if (hasSnapshot_ && index <= snapshot_.index)
    Fail(ErrorCode::kSnapshot, "createSnapshot: index " + std::to_string(index) + " is not above the current snapshot " +
                                   std::to_string(snapshot_.index));
  Term t = 0;
  if (!log_.term(index, &t))
    Fail(ErrorCode::kCompacted, "createSnapshot: index " + std::to_string(index) + " is below the compacted log");
  const Config* conf = nullptr;
  for (const auto& [at, c] : confHistory_)
    if (at <= index) conf = &c;
  if (conf == nullptr)
    Fail(ErrorCode::kSnapshot, "createSnapshot: the configuration at index " + std::to_string(index) +
                                   " is no longer known (too many membership changes since the last snapshot)");
  snapshot_.index = index;
  snapshot_.term = t;
  snapshot_.conf = conf->toConfState();
  snapshotData_.assign(reinterpret_cast<const char*>(data), len);
  hasSnapshot_ = true;
  while (confHistory_.size() >= 2 && confHistory_[1].first <= index) confHistory_.pop_front();
  Index to = std::min(index, stabled_ + 1);
  if (to > log_.offset() + 1) log_.compactTo(to);
  checkInvariants();
}

void Raft::compact(Index index) {
  if (index < log_.firstIndex())
    Fail(ErrorCode::kCompacted, "compact: index " + std::to_string(index) + " is below the first index " +
                                    std::to_string(log_.firstIndex()));
  if (index == log_.firstIndex()) return;
  if (index > std::max(applied_, applying_) + 1)
    Fail(ErrorCode::kBadArgument, "compact: index " + std::to_string(index) + " is beyond applied + 1");
  if (!hasSnapshot_ || snapshot_.index + 1 < index)
    Fail(ErrorCode::kSnapshot, "compact: entries up to " + std::to_string(index - 1) +
                                   " are not covered by a snapshot (createSnapshot first)");
  Index to = std::min(index, stabled_ + 1);
  if (to > log_.offset() + 1) log_.compactTo(to);
  checkInvariants();
}

void Raft::reportUnreachable(Id id) {
  if (role_ != Role::kLeader) return;
  Progress* pr = progress(id);
  // The pipeline to it is broken: fall back to probing.
  if (pr != nullptr && pr->state == ProgressState::kReplicate) pr->becomeProbe();
}

void Raft::reportSnapshot(Id id, bool ok) {
  if (role_ != Role::kLeader) return;
  Progress* pr = progress(id);
  if (pr == nullptr || pr->state != ProgressState::kSnapshot) return;
  if (!ok) pr->pendingSnapshot = 0;
  // Either way, wait for the next heartbeat response before probing.
  pr->becomeProbe();
  pr->msgAppFlowPaused = true;
}

RaftStatus Raft::status() const {
  RaftStatus s;
  s.id = id_;
  s.role = role_;
  s.lead = lead_;
  s.term = term_;
  s.vote = vote_;
  s.commit = committed_;
  s.applied = applied_;
  s.lastIndex = log_.lastIndex();
  s.firstIndex = log_.firstIndex();
  s.leadTransferee = leadTransferee_;
  s.conf = config_.toConfState();
  if (role_ == Role::kLeader) {
    for (const auto& [id, pr] : progress_)
      s.progress.push_back(ProgressStatus{id, pr.match, pr.next, pr.state, pr.inflights.count(), pr.recentActive,
                                          pr.isLearner});
  }
  return s;
}

// ---------------------------------------------------------------------------

Progress* Raft::progress(Id id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

void Raft::checkInvariants() const {
  KEELSON_ASSERT(applied_ <= committed_, "applied > committed");
  KEELSON_ASSERT(committed_ <= log_.lastIndex(), "committed > last index");
  KEELSON_ASSERT(log_.offset() <= stabled_ && stabled_ <= log_.lastIndex(), "stabled out of range");
  KEELSON_ASSERT(persisting_ <= log_.lastIndex() && stabled_ <= persisting_, "persisting out of range");
  KEELSON_ASSERT(role_ != Role::kLeader || lead_ == id_, "leader does not lead itself");
  KEELSON_ASSERT(leadTransferee_ == 0 || role_ == Role::kLeader, "transfer without leadership");
}

uint64_t Raft::nextRandom() {
  // splitmix64: small, fast and good enough for election jitter.
  uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void Raft::resetRandomizedElectionTimeout() {
  // [election, 1.5 * election): the spread only has to separate the
  // survivors' timeouts by more than a vote round trip (ms against a spread
  // of 500 ms with the default 1 s timeout); a wider one only delays the
  // first survivor to notice a dead leader (with [e, 2e) the earlier of two
  // survivors fired at p99 1.9 e).
  const uint32_t spread = std::max<uint32_t>(1, opts_.electionTicks / 2);
  randomizedElectionTimeout_ = opts_.electionTicks + static_cast<uint32_t>(nextRandom() % spread);
}

}  // namespace keelson::raft
