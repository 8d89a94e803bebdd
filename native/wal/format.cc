#include "wal/format.h"

namespace keelson::wal {

std::vector<uint8_t> EncodeHardState(const HardState& hs) {
  std::vector<uint8_t> p(kHardStatePayloadBytes);
  Put64(p.data(), hs.term);
  Put64(p.data() + 8, hs.vote);
  Put64(p.data() + 16, hs.commit);
  return p;
}

HardState DecodeHardState(const uint8_t* p) {
  HardState hs;
  hs.term = Get64(p);
  hs.vote = Get64(p + 8);
  hs.commit = Get64(p + 16);
  return hs;
}

std::vector<uint8_t> EncodeSnapshot(const SnapshotMeta& s) {
  const std::vector<uint64_t>* lists[4] = {&s.conf.voters, &s.conf.learners, &s.conf.votersOutgoing, &s.conf.learnersNext};
  size_t n = 17;
  for (auto* l : lists) n += 4 + 8 * l->size();
  std::vector<uint8_t> p(n);
  uint8_t* w = p.data();
  Put64(w, s.index);
  Put64(w + 8, s.term);
  w[16] = s.conf.autoLeave ? 1 : 0;
  w += 17;
  for (auto* l : lists) {
    Put32(w, uint32_t(l->size()));
    w += 4;
    for (uint64_t id : *l) {
      Put64(w, id);
      w += 8;
    }
  }
  return p;
}

bool DecodeSnapshot(const uint8_t* p, size_t len, SnapshotMeta* out) {
  if (len < 17) return false;
  out->index = Get64(p);
  out->term = Get64(p + 8);
  if (p[16] > 1) return false;
  out->conf.autoLeave = p[16] == 1;
  size_t at = 17;
  std::vector<uint64_t>* lists[4] = {&out->conf.voters, &out->conf.learners, &out->conf.votersOutgoing, &out->conf.learnersNext};
  for (auto* l : lists) {
    if (len - at < 4) return false;
    uint32_t n = Get32(p + at);
    at += 4;
    if ((len - at) / 8 < n) return false;
    l->clear();
    for (uint32_t i = 0; i < n; i++, at += 8) l->push_back(Get64(p + at));
  }
  return at == len;
}

}  // namespace keelson::wal
