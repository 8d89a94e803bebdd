// Slice-by-8 CRC32C. The tables are built once, at static initialisation, from
// the reflected polynomial: table[0] is the classic byte-at-a-time table, and
// table[k][b] is the CRC of byte b followed by k zero bytes, which lets the
// main loop fold eight input bytes per iteration with eight independent
// lookups.
#include "wal/crc32c.h"

#include <array>

namespace keelson::wal {
namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78u;

struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Tables() {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t c = b;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPolyReflected : c >> 1;
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
      for (int k = 1; k < 8; k++) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
  }
};

const Tables& GetTables() {
  static const Tables tables;
  return tables;
}

inline uint32_t Load32Le(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len) {
  const auto& t = GetTables().t;
  uint32_t c = ~crc;
  while (len >= 8) {
    uint32_t lo = Load32Le(data) ^ c;
    uint32_t hi = Load32Le(data + 4);
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    data += 8;
    len -= 8;
  }
  while (len-- > 0) c = (c >> 8) ^ t[0][(c ^ *data++) & 0xff];
  return ~c;
}

}  // namespace keelson::wal
