// The addon's entry point: the only N-API module. Each wrapped concept lives in
// its own file (raft_node.cc, wal.cc) and registers itself here.
#include <napi.h>

#include "addon/register.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  keelson::addon::RegisterAll(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(keelson, Init)
