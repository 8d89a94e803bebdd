// N-API binding of the WAL (native/wal). One JS object per open WAL.
//
// Threads: every method runs on the JS thread. The WAL's writer thread reports
// progress through a thread-safe function whose queue holds at most one call:
// the JS callback reads the latest durable position itself, so a call that
// finds the queue full loses nothing. sync() promises wait in a JS-thread-only
// queue ordered by the position they need; consecutive sync() calls with no
// append in between share one promise, so that queue never holds more entries
// than there are distinct unsynced appends (bounded by the WAL's pending and
// in-flight bytes).
//
// Lifetime: while the WAL is open the JS object holds a strong reference to
// itself, released by the thread-safe function's finalizer after close(). An
// environment cleanup hook closes a WAL that is still open at exit, so the
// writer thread never outlives the runtime. The thread-safe function is
// unreferenced whenever no sync() is outstanding, so an open WAL alone does not
// keep the process alive.
#include <napi.h>

#include <cmath>
#include <deque>
#include <memory>
#include <string>

#include "addon/register.h"
#include "wal/wal.h"

namespace keelson::addon {
namespace {

namespace kw = keelson::wal;

constexpr double kMaxSafeInteger = 9007199254740991.0;

const char* CodeName(kw::ErrorCode c) {
  switch (c) {
    case kw::ErrorCode::kBadArgument: return "ERR_BAD_ARGUMENT";
    case kw::ErrorCode::kCorrupt: return "ERR_WAL_CORRUPT";
    case kw::ErrorCode::kMismatch: return "ERR_WAL_MISMATCH";
    case kw::ErrorCode::kIo: return "ERR_WAL_IO";
    case kw::ErrorCode::kClosed: return "ERR_WAL_CLOSED";
  }
  return "ERR_WAL_IO";
}

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Error FromWalError(Napi::Env env, const kw::WalError& e) { return MakeError(env, CodeName(e.code), e.what()); }

Napi::Error BadArgument(Napi::Env env, const std::string& msg) { return MakeError(env, "ERR_BAD_ARGUMENT", msg); }

// A non-negative safe integer from `v`, or ERR_BAD_ARGUMENT naming `what`.
uint64_t ToIndex(Napi::Env env, Napi::Value v, const std::string& what) {
  if (!v.IsNumber()) throw BadArgument(env, what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > kMaxSafeInteger || std::floor(d) != d)
    throw BadArgument(env, what + " must be a non-negative safe integer, got " + v.ToString().Utf8Value());
  return uint64_t(d);
}

uint64_t FieldIndex(Napi::Env env, Napi::Object o, const char* name, const std::string& prefix) {
  return ToIndex(env, o.Get(name), prefix + "." + name);
}

std::vector<uint64_t> IdList(Napi::Env env, Napi::Object o, const char* name, bool optional) {
  Napi::Value v = o.Get(name);
  std::vector<uint64_t> out;
  if (v.IsUndefined() && optional) return out;
  if (!v.IsArray()) throw BadArgument(env, std::string("snapshot.confState.") + name + " must be an array of member ids");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 1000000) throw BadArgument(env, std::string("snapshot.confState.") + name + " is too long");
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(ToIndex(env, a.Get(i), std::string("snapshot.confState.") + name + "[]"));
  return out;
}

Napi::Object ConfStateToJs(Napi::Env env, const kw::ConfState& c) {
  auto list = [&](const std::vector<uint64_t>& ids) {
    Napi::Array a = Napi::Array::New(env, ids.size());
    for (size_t i = 0; i < ids.size(); i++) a.Set(uint32_t(i), Napi::Number::New(env, double(ids[i])));
    return a;
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("voters", list(c.voters));
  o.Set("learners", list(c.learners));
  o.Set("votersOutgoing", list(c.votersOutgoing));
  o.Set("learnersNext", list(c.learnersNext));
  o.Set("autoLeave", Napi::Boolean::New(env, c.autoLeave));
  return o;
}

class WalWrap;

void OnProgress(Napi::Env env, Napi::Function, WalWrap* self, std::nullptr_t*);
using ProgressFn = Napi::TypedThreadSafeFunction<WalWrap, std::nullptr_t, OnProgress>;

class WalWrap : public Napi::ObjectWrap<WalWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Wal",
                       {
                           StaticMethod<&WalWrap::Open>("open"),
                           InstanceAccessor<&WalWrap::Recovered>("recovered"),
                           InstanceMethod<&WalWrap::AppendEntries>("appendEntries"),
                           InstanceMethod<&WalWrap::AppendHardState>("appendHardState"),
                           InstanceMethod<&WalWrap::AppendSnapshot>("appendSnapshot"),
                           InstanceMethod<&WalWrap::Sync>("sync"),
                           InstanceMethod<&WalWrap::ReleaseBefore>("releaseBefore"),
                           InstanceMethod<&WalWrap::Close>("close"),
                           InstanceMethod<&WalWrap::Stats>("stats"),
                       });
  }

  WalWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WalWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw BadArgument(env, "Wal.open(options): options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    kw::Options opts;
    if (!o.Get("dir").IsString()) throw BadArgument(env, "options.dir must be a string");
    opts.dir = o.Get("dir").As<Napi::String>().Utf8Value();
    opts.clusterId = FieldIndex(env, o, "clusterId", "options");
    opts.memberId = FieldIndex(env, o, "memberId", "options");
    if (!o.Get("segmentBytes").IsUndefined()) opts.segmentBytes = FieldIndex(env, o, "segmentBytes", "options");
    if (!o.Get("pendingBytesMax").IsUndefined()) opts.pendingBytesMax = FieldIndex(env, o, "pendingBytesMax", "options");
    if (!o.Get("testingFailFdatasyncAfter").IsUndefined())
      opts.testingFailFdatasyncAfter = FieldIndex(env, o, "testingFailFdatasyncAfter", "options");

    auto rec = std::make_unique<kw::Recovered>();
    try {
      wal_ = kw::Wal::Open(opts, rec.get());
    } catch (const kw::WalError& e) {
      throw FromWalError(env, e);
    }

    Napi::Object r = Napi::Object::New(env);
    if (rec->hardState) {
      Napi::Object hs = Napi::Object::New(env);
      hs.Set("term", Napi::Number::New(env, double(rec->hardState->term)));
      hs.Set("vote", Napi::Number::New(env, double(rec->hardState->vote)));
      hs.Set("commit", Napi::Number::New(env, double(rec->hardState->commit)));
      r.Set("hardState", hs);
    }
    if (rec->snapshot) {
      Napi::Object s = Napi::Object::New(env);
      s.Set("index", Napi::Number::New(env, double(rec->snapshot->index)));
      s.Set("term", Napi::Number::New(env, double(rec->snapshot->term)));
      s.Set("confState", ConfStateToJs(env, rec->snapshot->conf));
      r.Set("snapshot", s);
    }
    // Hand the recovered entries to JS without a copy; the finalizer frees them.
    auto* entries = new std::vector<uint8_t>(std::move(rec->entries));
    r.Set("entries", Napi::Buffer<uint8_t>::New(env, entries->data(), entries->size(),
                                                [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, entries));
    r.Set("entryCount", Napi::Number::New(env, double(rec->entryCount)));
    r.Set("truncatedBytes", Napi::Number::New(env, double(rec->truncatedBytes)));
    recovered_ = Napi::Persistent(r);

    progress_ = ProgressFn::New(env, "keelsonWalProgress", 1, 1, this, [](Napi::Env, void*, WalWrap* self) {
      // Runs on the JS thread after close() released the function: nothing can
      // call back into this object any more, so it may now be collected.
      self->self_.Unref();
    });
    progress_.Unref(env);
    self_ = Napi::Persistent(info.This().As<Napi::Object>());
    wal_->SetNotify([this] { progress_.NonBlockingCall(nullptr); });
    wal_->StartWriter();
    cleanup_ = env.AddCleanupHook(std::function<void()>([this] { wal_->Close(); }));
    open_ = true;
  }

  ~WalWrap() override {
    if (wal_) wal_->Close();
  }

  // Called on the JS thread whenever the writer made progress or failed.
  void Progress(Napi::Env env) {
    uint64_t durable = wal_->DurableBytes();
    while (!waiters_.empty() && waiters_.front().target <= durable) {
      waiters_.front().deferred.Resolve(env.Undefined());
      waiters_.pop_front();
    }
    std::string failed = wal_->FailedMessage();
    if (!failed.empty()) {
      while (!waiters_.empty()) {
        waiters_.front().deferred.Reject(MakeError(env, "ERR_WAL_IO", "WAL failed: " + failed).Value());
        waiters_.pop_front();
      }
    }
    if (waiters_.empty() && progressRefed_) {
      progress_.Unref(env);
      progressRefed_ = false;
    }
  }

 private:
  struct Waiter {
    uint64_t target;
    Napi::Promise::Deferred deferred;
    Napi::ObjectReference promise;
  };

  // Wal.open(options): `this` is the class itself, so no global constructor
  // reference is needed (which keeps the addon safe to load in workers).
  static Napi::Value Open(const Napi::CallbackInfo& info) {
    if (!info.This().IsFunction()) throw BadArgument(info.Env(), "call open as Wal.open(options)");
    return info.This().As<Napi::Function>().New({info.Length() > 0 ? info[0] : info.Env().Undefined()});
  }

  void CheckOpen(Napi::Env env) {
    if (!open_) throw MakeError(env, "ERR_WAL_CLOSED", "WAL is closed");
  }

  Napi::Value Recovered(const Napi::CallbackInfo&) { return recovered_.Value(); }

  Napi::Value AppendEntries(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw BadArgument(env, "appendEntries(entries): entries must be a Buffer or Uint8Array");
    Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
    try {
      wal_->AppendEntries(a.Data(), a.ByteLength());
    } catch (const kw::WalError& e) {
      throw FromWalError(env, e);
    }
    return env.Undefined();
  }

  Napi::Value AppendHardState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 1 || !info[0].IsObject()) throw BadArgument(env, "appendHardState(hs): hs must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    kw::HardState hs;
    hs.term = FieldIndex(env, o, "term", "hardState");
    hs.vote = FieldIndex(env, o, "vote", "hardState");
    hs.commit = FieldIndex(env, o, "commit", "hardState");
    try {
      wal_->AppendHardState(hs);
    } catch (const kw::WalError& e) {
      throw FromWalError(env, e);
    }
    return env.Undefined();
  }

  Napi::Value AppendSnapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 1 || !info[0].IsObject()) throw BadArgument(env, "appendSnapshot(meta): meta must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    kw::SnapshotMeta s;
    s.index = FieldIndex(env, o, "index", "snapshot");
    s.term = FieldIndex(env, o, "term", "snapshot");
    if (!o.Get("confState").IsObject()) throw BadArgument(env, "snapshot.confState must be an object");
    Napi::Object c = o.Get("confState").As<Napi::Object>();
    s.conf.voters = IdList(env, c, "voters", false);
    s.conf.learners = IdList(env, c, "learners", true);
    s.conf.votersOutgoing = IdList(env, c, "votersOutgoing", true);
    s.conf.learnersNext = IdList(env, c, "learnersNext", true);
    Napi::Value al = c.Get("autoLeave");
    if (!al.IsUndefined() && !al.IsBoolean()) throw BadArgument(env, "snapshot.confState.autoLeave must be a boolean");
    s.conf.autoLeave = al.IsBoolean() && al.As<Napi::Boolean>().Value();
    try {
      wal_->AppendSnapshot(s);
    } catch (const kw::WalError& e) {
      throw FromWalError(env, e);
    }
    return env.Undefined();
  }

  Napi::Value Sync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Reject(MakeError(env, "ERR_WAL_CLOSED", "WAL is closed").Value());
      return d.Promise();
    }
    uint64_t target;
    try {
      target = wal_->RequestSync();
    } catch (const kw::WalError& e) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Reject(FromWalError(env, e).Value());
      return d.Promise();
    }
    if (target <= wal_->DurableBytes()) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Resolve(env.Undefined());
      return d.Promise();
    }
    // No append since the last sync(): the same durability point, the same promise.
    if (!waiters_.empty() && waiters_.back().target == target) return waiters_.back().promise.Value();
    auto d = Napi::Promise::Deferred::New(env);
    Napi::Object p = d.Promise();
    waiters_.push_back(Waiter{target, d, Napi::Persistent(p)});
    if (!progressRefed_) {
      progress_.Ref(env);
      progressRefed_ = true;
    }
    return p;
  }

  Napi::Value ReleaseBefore(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint64_t index = ToIndex(env, info.Length() > 0 ? info[0] : env.Undefined(), "releaseBefore(index): index");
    try {
      return Napi::Number::New(env, double(wal_->ReleaseBefore(index)));
    } catch (const kw::WalError& e) {
      throw FromWalError(env, e);
    }
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    kw::Stats s = wal_->GetStats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("fdatasyncs", double(s.fdatasyncs));
    o.Set("appendedBytes", double(s.appendedBytes));
    o.Set("durableBytes", double(s.durableBytes));
    o.Set("segments", double(s.segments));
    o.Set("segmentsCreated", double(s.segmentsCreated));
    o.Set("segmentsRemoved", double(s.segmentsRemoved));
    o.Set("lastIndex", double(s.lastIndex));
    o.Set("snapshotIndex", double(s.snapshotIndex));
    o.Set("backpressureWaits", double(s.backpressureWaits));
    return o;
  }

  // Closing joins the writer thread (after its final write and fdatasync), so
  // it runs on the libuv pool, not on the JS thread.
  class CloseWorker : public Napi::AsyncWorker {
   public:
    CloseWorker(Napi::Env env, WalWrap* self) : Napi::AsyncWorker(env, "keelsonWalClose"), self_(self), deferred_(Napi::Promise::Deferred::New(env)) {}
    Napi::Promise Promise() { return deferred_.Promise(); }
    void Execute() override { self_->wal_->Close(); }
    void OnOK() override {
      Napi::Env env = Env();
      self_->Progress(env);
      // Anything not durable now never will be: the writer has stopped.
      while (!self_->waiters_.empty()) {
        self_->waiters_.front().deferred.Reject(MakeError(env, "ERR_WAL_CLOSED", "WAL closed before the sync completed").Value());
        self_->waiters_.pop_front();
      }
      self_->cleanup_.Remove(env);
      self_->progress_.Release();
      deferred_.Resolve(env.Undefined());
    }

   private:
    WalWrap* self_;
    Napi::Promise::Deferred deferred_;
  };

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) {
      if (!closing_.IsEmpty()) return closing_.Value();
      auto d = Napi::Promise::Deferred::New(env);
      d.Resolve(env.Undefined());
      return d.Promise();
    }
    open_ = false;
    auto* w = new CloseWorker(env, this);
    Napi::Promise p = w->Promise();
    closing_ = Napi::Persistent(p.As<Napi::Object>());
    w->Queue();
    return p;
  }

  std::unique_ptr<kw::Wal> wal_;
  Napi::ObjectReference recovered_;
  Napi::ObjectReference self_;
  Napi::ObjectReference closing_;
  ProgressFn progress_;
  bool progressRefed_ = false;
  Napi::Env::CleanupHook<std::function<void()>> cleanup_;
  bool open_ = false;
  std::deque<Waiter> waiters_;
};

void OnProgress(Napi::Env env, Napi::Function, WalWrap* self, std::nullptr_t*) {
  if (env != nullptr) self->Progress(env);
}

}  // namespace

void RegisterWal(Napi::Env env, Napi::Object exports) {
  exports.Set("Wal", WalWrap::Define(env));
}

}  // namespace keelson::addon
