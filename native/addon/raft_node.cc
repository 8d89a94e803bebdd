// N-API binding of the Raft core (native/raft): the RaftNode class and the
// `messageTypes` table. This file only converts values: JavaScript objects and
// Buffers in, RaftError out as a JavaScript Error with a string `code` (and
// `leader` for ERR_NOT_LEADER). All Raft logic lives in native/raft.
//
// Seam costs: every call crosses once; entries and messages cross as Buffers
// in the documented wire formats (docs/native-format.md), never as one
// JavaScript object per entry. Buffers are copied out of the core rather than
// adopted as external memory: N-API runs finalizers of external buffers only
// on a later event-loop turn, so a host that drains many Readies in one turn
// would hold all of them; copied buffers are reclaimed by the garbage
// collector alone (measured: copying is as fast in bench/raft.ts).
#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "addon/register.h"
#include "raft/raft.h"

namespace keelson::addon {

namespace {

using raft::ErrorCode;
using raft::RaftError;

[[noreturn]] void ThrowBadArgument(const std::string& msg) { throw RaftError(ErrorCode::kBadArgument, msg); }

Napi::Error ToJsError(Napi::Env env, const RaftError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, raft::ErrorCodeName(e.code())));
  if (e.code() == ErrorCode::kNotLeader) err.Set("leader", Napi::Number::New(env, static_cast<double>(e.leader())));
  return err;
}

// Runs `fn`, turning core errors into JavaScript exceptions with a code.
template <typename Fn>
auto Guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const RaftError& e) {
    throw ToJsError(env, e);
  } catch (const std::bad_alloc&) {
    Napi::Error err = Napi::Error::New(env, "keelson raft: out of memory");
    err.Set("code", Napi::String::New(env, "ERR_BAD_ARGUMENT"));
    throw err;
  }
}

uint64_t ToU64(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) ThrowBadArgument(std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > static_cast<double>(raft::kMaxSafeInteger) || std::floor(d) != d)
    ThrowBadArgument(std::string(what) + " must be an integer in [0, 2^53)");
  return static_cast<uint64_t>(d);
}

uint64_t GetU64(const Napi::Object& o, const char* key, const char* what, bool required, uint64_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) ThrowBadArgument(std::string(what) + " is required");
    return dflt;
  }
  return ToU64(v, what);
}

bool GetBool(const Napi::Object& o, const char* key, const char* what, bool dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsBoolean()) ThrowBadArgument(std::string(what) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::vector<uint64_t> GetIds(const Napi::Object& o, const char* key, const char* what) {
  std::vector<uint64_t> out;
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) ThrowBadArgument(std::string(what) + " must be an array of member ids");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 4096) ThrowBadArgument(std::string(what) + " has too many members");
  for (uint32_t i = 0; i < a.Length(); i++) {
    uint64_t id = ToU64(a.Get(i), what);
    if (id == 0) ThrowBadArgument(std::string(what) + " must not contain 0");
    out.push_back(id);
  }
  return out;
}

Napi::Buffer<uint8_t> GetBuffer(const Napi::Value& v, const char* what) {
  if (!v.IsBuffer()) ThrowBadArgument(std::string(what) + " must be a Buffer");
  return v.As<Napi::Buffer<uint8_t>>();
}

raft::ConfState GetConfState(const Napi::Value& v, const char* what) {
  if (!v.IsObject()) ThrowBadArgument(std::string(what) + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  raft::ConfState cs;
  cs.voters = GetIds(o, "voters", "confState.voters");
  cs.learners = GetIds(o, "learners", "confState.learners");
  cs.votersOutgoing = GetIds(o, "votersOutgoing", "confState.votersOutgoing");
  cs.learnersNext = GetIds(o, "learnersNext", "confState.learnersNext");
  cs.autoLeave = GetBool(o, "autoLeave", "confState.autoLeave", false);
  return cs;
}

Napi::Array IdArray(Napi::Env env, const std::vector<uint64_t>& ids) {
  Napi::Array a = Napi::Array::New(env, ids.size());
  for (uint32_t i = 0; i < ids.size(); i++) a.Set(i, Napi::Number::New(env, static_cast<double>(ids[i])));
  return a;
}

Napi::Object ConfStateObject(Napi::Env env, const raft::ConfState& cs) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("voters", IdArray(env, cs.voters));
  o.Set("learners", IdArray(env, cs.learners));
  o.Set("votersOutgoing", IdArray(env, cs.votersOutgoing));
  o.Set("learnersNext", IdArray(env, cs.learnersNext));
  o.Set("autoLeave", Napi::Boolean::New(env, cs.autoLeave));
  return o;
}

Napi::Number Num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

raft::RaftOptions ParseConfig(const Napi::Value& v) {
  if (!v.IsObject()) ThrowBadArgument("config must be an object");
  Napi::Object o = v.As<Napi::Object>();
  raft::RaftOptions r;
  r.id = GetU64(o, "id", "config.id", true, 0);
  r.voters = GetIds(o, "voters", "config.voters");
  r.learners = GetIds(o, "learners", "config.learners");
  uint64_t et = GetU64(o, "electionTicks", "config.electionTicks", true, 0);
  uint64_t ht = GetU64(o, "heartbeatTicks", "config.heartbeatTicks", true, 0);
  if (et > 1000000 || ht > 1000000) ThrowBadArgument("config.electionTicks and heartbeatTicks must be at most 1e6");
  r.electionTicks = static_cast<uint32_t>(et);
  r.heartbeatTicks = static_cast<uint32_t>(ht);
  r.preVote = GetBool(o, "preVote", "config.preVote", true);
  r.checkQuorum = GetBool(o, "checkQuorum", "config.checkQuorum", true);
  r.maxSizePerMsgBytes = GetU64(o, "maxSizePerMsgBytes", "config.maxSizePerMsgBytes", true, 0);
  if (r.maxSizePerMsgBytes > (uint64_t{1} << 31)) ThrowBadArgument("config.maxSizePerMsgBytes must be at most 2 GiB");
  uint64_t inflight = GetU64(o, "maxInflightMsgs", "config.maxInflightMsgs", true, 0);
  if (inflight > 1000000) ThrowBadArgument("config.maxInflightMsgs must be at most 1e6");
  r.maxInflightMsgs = static_cast<uint32_t>(inflight);
  r.maxInflightBytes = GetU64(o, "maxInflightBytes", "config.maxInflightBytes", true, 0);
  r.maxUncommittedEntriesBytes = GetU64(o, "maxUncommittedEntriesBytes", "config.maxUncommittedEntriesBytes", true, 0);
  r.disableProposalForwarding = GetBool(o, "disableProposalForwarding", "config.disableProposalForwarding", false);
  Napi::Value seed = o.Get("seed");
  if (!seed.IsNumber()) ThrowBadArgument("config.seed must be a number");
  double sd = seed.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(sd)) ThrowBadArgument("config.seed must be finite");
  r.seed = static_cast<uint64_t>(static_cast<int64_t>(sd));
  r.applied = GetU64(o, "applied", "config.applied", false, 0);
  Napi::Value bug = o.Get("testingBug");
  if (!bug.IsUndefined() && !bug.IsNull()) {
    if (!bug.IsString() || bug.As<Napi::String>().Utf8Value() != "commitPreviousTerm")
      ThrowBadArgument("config.testingBug must be 'commitPreviousTerm' when set");
    r.bugCommitPreviousTerm = true;
  }
  return r;
}

// Parses the restore state. Buffers stay referenced by the caller's value
// for the duration of the constructor call, so entries are read in place.
bool ParseRestore(const Napi::Value& v, raft::RestoreState* out) {
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsObject()) ThrowBadArgument("restore must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value hs = o.Get("hardState");
  if (!hs.IsUndefined() && !hs.IsNull()) {
    if (!hs.IsObject()) ThrowBadArgument("restore.hardState must be an object");
    Napi::Object h = hs.As<Napi::Object>();
    out->hasHardState = true;
    out->hardState.term = GetU64(h, "term", "restore.hardState.term", true, 0);
    out->hardState.vote = GetU64(h, "vote", "restore.hardState.vote", true, 0);
    out->hardState.commit = GetU64(h, "commit", "restore.hardState.commit", true, 0);
  }
  Napi::Value sn = o.Get("snapshot");
  if (!sn.IsUndefined() && !sn.IsNull()) {
    if (!sn.IsObject()) ThrowBadArgument("restore.snapshot must be an object");
    Napi::Object s = sn.As<Napi::Object>();
    out->hasSnapshot = true;
    out->snapshot.index = GetU64(s, "index", "restore.snapshot.index", true, 0);
    out->snapshot.term = GetU64(s, "term", "restore.snapshot.term", true, 0);
    out->snapshot.conf = GetConfState(s.Get("confState"), "restore.snapshot.confState");
    Napi::Value d = s.Get("data");
    if (!d.IsUndefined() && !d.IsNull()) {
      Napi::Buffer<uint8_t> b = GetBuffer(d, "restore.snapshot.data");
      out->snapshotData.assign(reinterpret_cast<const char*>(b.Data()), b.Length());
    }
  }
  Napi::Value en = o.Get("entries");
  if (!en.IsUndefined() && !en.IsNull()) {
    Napi::Buffer<uint8_t> b = GetBuffer(en, "restore.entries");
    out->entries = b.Data();
    out->entriesLen = b.Length();
  }
  return true;
}

class RaftNodeWrap : public Napi::ObjectWrap<RaftNodeWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RaftNode",
                       {
                           InstanceMethod<&RaftNodeWrap::Tick>("tick"),
                           InstanceMethod<&RaftNodeWrap::Step>("step"),
                           InstanceMethod<&RaftNodeWrap::Propose>("propose"),
                           InstanceMethod<&RaftNodeWrap::ProposeBatch>("proposeBatch"),
                           InstanceMethod<&RaftNodeWrap::ProposeConfChange>("proposeConfChange"),
                           InstanceMethod<&RaftNodeWrap::ApplyConfChange>("applyConfChange"),
                           InstanceMethod<&RaftNodeWrap::ReadIndex>("readIndex"),
                           InstanceMethod<&RaftNodeWrap::TransferLeader>("transferLeader"),
                           InstanceMethod<&RaftNodeWrap::Campaign>("campaign"),
                           InstanceMethod<&RaftNodeWrap::HasReady>("hasReady"),
                           InstanceMethod<&RaftNodeWrap::Ready>("ready"),
                           InstanceMethod<&RaftNodeWrap::Advance>("advance"),
                           InstanceMethod<&RaftNodeWrap::CreateSnapshot>("createSnapshot"),
                           InstanceMethod<&RaftNodeWrap::Compact>("compact"),
                           InstanceMethod<&RaftNodeWrap::ReportUnreachable>("reportUnreachable"),
                           InstanceMethod<&RaftNodeWrap::ReportSnapshot>("reportSnapshot"),
                           InstanceMethod<&RaftNodeWrap::Status>("status"),
                       });
  }

  explicit RaftNodeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RaftNodeWrap>(info) {
    Guard(info.Env(), [&] {
      raft::RaftOptions opts = ParseConfig(info[0]);
      raft::RestoreState rs;
      bool restoring = info.Length() > 1 && ParseRestore(info[1], &rs);
      core_ = std::make_unique<raft::Raft>(opts, restoring ? &rs : nullptr);
      return 0;
    });
  }

 private:
  Napi::Value Tick(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      core_->tick();
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      if (!info[0].IsBuffer()) throw RaftError(ErrorCode::kBadMessage, "step: messages must be a Buffer");
      Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
      core_->step(b.Data(), b.Length());
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value Propose(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      Napi::Buffer<uint8_t> b = GetBuffer(info[0], "propose: data");
      core_->propose(b.Data(), b.Length());
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value ProposeBatch(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      Napi::Buffer<uint8_t> b = GetBuffer(info[0], "proposeBatch: records");
      uint64_t count = ToU64(info[1], "proposeBatch: count");
      if (count > UINT32_MAX) ThrowBadArgument("proposeBatch: count too large");
      core_->proposeBatch(b.Data(), b.Length(), static_cast<uint32_t>(count));
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value ProposeConfChange(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      if (!info[0].IsObject()) ThrowBadArgument("proposeConfChange: the change must be an object");
      Napi::Object o = info[0].As<Napi::Object>();
      raft::ConfChange cc;
      Napi::Value tr = o.Get("transition");
      if (!tr.IsUndefined() && !tr.IsNull()) {
        std::string t = tr.IsString() ? tr.As<Napi::String>().Utf8Value() : "";
        if (t == "auto") cc.transition = raft::ConfChangeTransition::kAuto;
        else if (t == "implicit") cc.transition = raft::ConfChangeTransition::kImplicit;
        else if (t == "explicit") cc.transition = raft::ConfChangeTransition::kExplicit;
        else ThrowBadArgument("proposeConfChange: transition must be 'auto', 'implicit' or 'explicit'");
      }
      Napi::Value ch = o.Get("changes");
      if (!ch.IsArray()) ThrowBadArgument("proposeConfChange: changes must be an array");
      Napi::Array a = ch.As<Napi::Array>();
      if (a.Length() > raft::kConfChangeChangesMax) ThrowBadArgument("proposeConfChange: too many changes");
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Value e = a.Get(i);
        if (!e.IsObject()) ThrowBadArgument("proposeConfChange: each change must be an object");
        Napi::Object c = e.As<Napi::Object>();
        Napi::Value tv = c.Get("type");
        std::string t = tv.IsString() ? tv.As<Napi::String>().Utf8Value() : "";
        raft::ConfChangeSingle s;
        if (t == "addNode") s.type = raft::ConfChangeType::kAddNode;
        else if (t == "removeNode") s.type = raft::ConfChangeType::kRemoveNode;
        else if (t == "addLearner") s.type = raft::ConfChangeType::kAddLearner;
        else ThrowBadArgument("proposeConfChange: change type must be 'addNode', 'removeNode' or 'addLearner'");
        s.nodeId = GetU64(c, "nodeId", "proposeConfChange: nodeId", true, 0);
        if (s.nodeId == 0) ThrowBadArgument("proposeConfChange: nodeId must not be 0");
        cc.changes.push_back(s);
      }
      Napi::Value ctx = o.Get("context");
      if (!ctx.IsUndefined() && !ctx.IsNull()) {
        Napi::Buffer<uint8_t> b = GetBuffer(ctx, "proposeConfChange: context");
        cc.context.assign(reinterpret_cast<const char*>(b.Data()), b.Length());
      }
      core_->proposeConfChange(cc);
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value ApplyConfChange(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      Napi::Buffer<uint8_t> b = GetBuffer(info[0], "applyConfChange: entry data");
      raft::ConfState cs = core_->applyConfChange(b.Data(), b.Length());
      return ConfStateObject(info.Env(), cs);
    });
  }

  Napi::Value ReadIndex(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      Napi::Buffer<uint8_t> b = GetBuffer(info[0], "readIndex: ctx");
      core_->readIndex(b.Data(), b.Length());
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value TransferLeader(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      core_->transferLeader(ToU64(info[0], "transferLeader: id"));
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value Campaign(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      core_->campaign();
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value HasReady(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), core_->hasReady()); }

  Napi::Value Ready(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      raft::ReadyOut rd = core_->ready();
      Napi::Object o = Napi::Object::New(env);
      o.Set("lead", Num(env, rd.lead));
      o.Set("role", Napi::String::New(env, raft::RoleName(rd.role)));
      if (rd.hasHardState) {
        Napi::Object hs = Napi::Object::New(env);
        hs.Set("term", Num(env, rd.hardState.term));
        hs.Set("vote", Num(env, rd.hardState.vote));
        hs.Set("commit", Num(env, rd.hardState.commit));
        o.Set("hardState", hs);
      }
      // The byte views point into the core: copy them before anything else
      // can call into it.
      o.Set("entries", rd.entryCount ? Napi::Value(Napi::Buffer<uint8_t>::Copy(env, rd.entries, rd.entriesLen))
                                     : env.Null());
      o.Set("entryCount", Num(env, rd.entryCount));
      o.Set("committed", rd.committedCount
                             ? Napi::Value(Napi::Buffer<uint8_t>::Copy(env, rd.committed, rd.committedLen))
                             : env.Null());
      o.Set("committedCount", Num(env, rd.committedCount));
      if (rd.hasSnapshot) {
        Napi::Object s = Napi::Object::New(env);
        s.Set("index", Num(env, rd.snapshot.index));
        s.Set("term", Num(env, rd.snapshot.term));
        s.Set("confState", ConfStateObject(env, rd.snapshot.conf));
        s.Set("data", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(rd.snapshotData->data()),
                                                  rd.snapshotData->size()));
        o.Set("snapshot", s);
      }
      uint32_t nonEmpty = 0;
      for (const auto& [to, data] : *rd.messages)
        if (!data.empty()) nonEmpty++;
      Napi::Array msgs = Napi::Array::New(env, nonEmpty);
      uint32_t k = 0;
      for (const auto& [to, data] : *rd.messages) {
        if (data.empty()) continue;
        Napi::Object m = Napi::Object::New(env);
        m.Set("to", Num(env, to));
        m.Set("data", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(data.data()), data.size()));
        msgs.Set(k++, m);
      }
      o.Set("messages", msgs);
      Napi::Array reads = Napi::Array::New(env, rd.readStates.size());
      for (uint32_t i = 0; i < rd.readStates.size(); i++) {
        Napi::Object r = Napi::Object::New(env);
        r.Set("index", Num(env, rd.readStates[i].index));
        const std::string& c = rd.readStates[i].ctx;
        r.Set("ctx", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(c.data()), c.size()));
        reads.Set(i, r);
      }
      o.Set("readStates", reads);
      o.Set("mustSync", Napi::Boolean::New(env, rd.mustSync));
      return o;
    });
  }

  Napi::Value Advance(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      core_->advance();
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value CreateSnapshot(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      uint64_t index = ToU64(info[0], "createSnapshot: index");
      Napi::Buffer<uint8_t> b = GetBuffer(info[1], "createSnapshot: data");
      core_->createSnapshot(index, b.Data(), b.Length());
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value Compact(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      core_->compact(ToU64(info[0], "compact: index"));
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value ReportUnreachable(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      core_->reportUnreachable(ToU64(info[0], "reportUnreachable: id"));
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value ReportSnapshot(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] {
      uint64_t id = ToU64(info[0], "reportSnapshot: id");
      if (!info[1].IsBoolean()) ThrowBadArgument("reportSnapshot: ok must be a boolean");
      core_->reportSnapshot(id, info[1].As<Napi::Boolean>().Value());
      return 0;
    });
    return info.Env().Undefined();
  }

  Napi::Value Status(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    raft::RaftStatus s = core_->status();
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", Num(env, s.id));
    o.Set("role", Napi::String::New(env, raft::RoleName(s.role)));
    o.Set("lead", Num(env, s.lead));
    o.Set("term", Num(env, s.term));
    o.Set("vote", Num(env, s.vote));
    o.Set("commit", Num(env, s.commit));
    o.Set("applied", Num(env, s.applied));
    o.Set("lastIndex", Num(env, s.lastIndex));
    o.Set("firstIndex", Num(env, s.firstIndex));
    o.Set("leadTransferee", Num(env, s.leadTransferee));
    o.Set("confState", ConfStateObject(env, s.conf));
    if (s.role == raft::Role::kLeader) {
      Napi::Object prs = Napi::Object::New(env);
      for (const raft::ProgressStatus& p : s.progress) {
        Napi::Object po = Napi::Object::New(env);
        po.Set("match", Num(env, p.match));
        po.Set("next", Num(env, p.next));
        po.Set("state", Napi::String::New(env, raft::ProgressStateName(p.state)));
        po.Set("inflight", Num(env, p.inflight));
        po.Set("recentActive", Napi::Boolean::New(env, p.recentActive));
        po.Set("isLearner", Napi::Boolean::New(env, p.isLearner));
        prs.Set(Napi::Number::New(env, static_cast<double>(p.id)), po);
      }
      o.Set("progress", prs);
    }
    return o;
  }

  std::unique_ptr<raft::Raft> core_;
};

}  // namespace

void RegisterRaft(Napi::Env env, Napi::Object exports) {
  exports.Set("RaftNode", RaftNodeWrap::Define(env));
  Napi::Object types = Napi::Object::New(env);
  for (raft::MsgType t : raft::AllMsgTypes())
    types.Set(raft::MsgTypeName(t), Napi::Number::New(env, static_cast<double>(static_cast<uint8_t>(t))));
  types.Freeze();
  exports.Set("messageTypes", types);
}

}  // namespace keelson::addon
