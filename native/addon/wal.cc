// Placeholder until the WAL binding lands.
#include "addon/register.h"
namespace keelson::addon {
void RegisterWal(Napi::Env, Napi::Object) {}
}  // namespace keelson::addon
