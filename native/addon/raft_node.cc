// Placeholder until the Raft core binding lands.
#include "addon/register.h"
namespace keelson::addon {
void RegisterRaft(Napi::Env, Napi::Object) {}
}  // namespace keelson::addon
