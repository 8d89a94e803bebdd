// Registration hooks for the wrapped concepts. Each concept's file defines its
// Register* function; RegisterAll calls them in a fixed order.
#pragma once
#include <napi.h>

namespace keelson::addon {

void RegisterRaft(Napi::Env env, Napi::Object exports);
void RegisterWal(Napi::Env env, Napi::Object exports);

inline void RegisterAll(Napi::Env env, Napi::Object exports) {
  RegisterRaft(env, exports);
  RegisterWal(env, exports);
}

}  // namespace keelson::addon
