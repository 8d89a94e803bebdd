// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
// WAL record. Portable slice-by-8 table implementation: no CPU intrinsics, so
// the same code runs (and gives the same answer) on every platform we build on.
#pragma once
#include <cstddef>
#include <cstdint>

namespace keelson::wal {

// Extends a running CRC32C over `len` bytes. Start with crc = 0; the function
// applies the standard pre- and post-inversion itself, so
// Crc32c(Crc32c(0, a), b) == Crc32c(0, a ++ b).
uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len);

}  // namespace keelson::wal
