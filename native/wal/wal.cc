// Implementation of the WAL (see wal.h for the overview, docs/wal.md for the
// format). Failure modes handled here, and how:
// - Crash during a write: the last segment may end in a partial record, a
//   record whose sectors were only partly persisted, or zeros. Open truncates
//   that torn tail (zero-fills it, keeping the preallocation) and reports the
//   bytes cut. Only unacknowledged data can be there: an fdatasync that
//   covered any later byte of the file covered the torn record too.
// - Media corruption: a record that fails its checksum while a valid record
//   follows it is not a torn write; Open refuses it with the file and offset.
//   Nothing is ever repaired in the middle of the log.
// - A foreign WAL (other cluster or member): refused before anything is read.
// - Write or fsync errors: the WAL fails for good (see wal.h).
#include "wal/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace keelson::wal {
namespace {

constexpr size_t kSectorBytes = 512;
constexpr int kIoThreads = 2;
constexpr const char* kSegmentSuffix = ".wal";
constexpr const char* kTmpSuffix = ".wal.tmp";

std::string ErrnoText(int err) { return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")"; }

[[noreturn]] void ThrowIo(const std::string& what, const std::string& path, int err) {
  throw WalError(ErrorCode::kIo, what + " " + path + ": " + ErrnoText(err));
}

std::string Join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

std::string SegmentName(uint64_t seq, uint64_t firstIndex) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "-%016" PRIx64 "%s", seq, firstIndex, kSegmentSuffix);
  return buf;
}

bool EndsWith(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

bool ParseHex16(const std::string& s, size_t at, uint64_t* out) {
  uint64_t v = 0;
  for (size_t i = at; i < at + 16; i++) {
    char c = s[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    v = (v << 4) | uint64_t(d);
  }
  *out = v;
  return true;
}

// Parses "<seq:016x>-<firstIndex:016x>.wal".
bool ParseSegmentName(const std::string& name, uint64_t* seq, uint64_t* firstIndex) {
  if (name.size() != 16 + 1 + 16 + 4 || name[16] != '-' || !EndsWith(name, kSegmentSuffix)) return false;
  return ParseHex16(name, 0, seq) && ParseHex16(name, 17, firstIndex);
}

void FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowIo("cannot open directory", dir, errno);
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ThrowIo("cannot fsync directory", dir, err);
  }
  ::close(fd);
}

void Fdatasync(int fd, const std::string& path) {
  if (::fdatasync(fd) != 0) ThrowIo("fdatasync failed on", path, errno);
}

void PwriteAll(int fd, const uint8_t* p, size_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, off_t(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      ThrowIo("write failed at offset " + std::to_string(offset) + " of", path, errno);
    }
    p += w;
    n -= size_t(w);
    offset += uint64_t(w);
  }
}

// Reserves `bytes` for the file so that later writes within it change no file
// size. Filesystems without fallocate just go without preallocation.
void Preallocate(int fd, uint64_t bytes, const std::string& path) {
#ifdef __linux__
  if (::fallocate(fd, 0, 0, off_t(bytes)) == 0) return;
  if (errno != EOPNOTSUPP && errno != ENOSYS) ThrowIo("cannot preallocate", path, errno);
#endif
  int err = ::posix_fallocate(fd, 0, off_t(bytes));
  if (err != 0 && err != EOPNOTSUPP && err != EINVAL) ThrowIo("cannot preallocate", path, err);
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowIo("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    ThrowIo("cannot stat", path, err);
  }
  std::vector<uint8_t> buf(size_t(st.st_size));
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t r = ::pread(fd, buf.data() + got, buf.size() - got, off_t(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int err = errno;
      ::close(fd);
      ThrowIo("cannot read", path, err);
    }
    if (r == 0) break;
    got += size_t(r);
  }
  ::close(fd);
  buf.resize(got);
  return buf;
}

// True when a well-formed record with a matching checksum starts at `off`.
bool TryDecode(const std::vector<uint8_t>& b, size_t off, uint8_t* type, uint32_t* len) {
  if (off > b.size() || b.size() - off < kRecordHeaderBytes) return false;
  const uint8_t* h = b.data() + off;
  if (h[8] < kRecordMeta || h[8] > kRecordSnapshot || h[9] != 0 || h[10] != 0 || h[11] != 0) return false;
  uint32_t n = Get32(h + 4);
  if (n > b.size() - off - kRecordHeaderBytes) return false;
  if (Crc32c(0, h + 4, kRecordHeaderBytes - 4 + n) != Get32(h)) return false;
  *type = h[8];
  *len = n;
  return true;
}

[[noreturn]] void ThrowCorrupt(const std::string& path, uint64_t offset, const std::string& why) {
  throw WalError(ErrorCode::kCorrupt, "WAL corrupt: " + path + " at byte offset " + std::to_string(offset) + ": " + why +
                                          "; refusing to open (a corrupt WAL is never repaired automatically)");
}

}  // namespace

Wal::Wal(const Options& options) : opts_(options) {}

Wal::File::~File() {
  if (fd >= 0) ::close(fd);
}

Wal::~Wal() { Close(); }

std::unique_ptr<Wal> Wal::Open(const Options& o, Recovered* out) {
  if (o.dir.empty()) throw WalError(ErrorCode::kBadArgument, "WAL dir must be a non-empty path");
  if (o.segmentBytes < kSegmentBytesMin || o.segmentBytes > kSegmentBytesMax)
    throw WalError(ErrorCode::kBadArgument, "segmentBytes must be in [" + std::to_string(kSegmentBytesMin) + ", " +
                                                std::to_string(kSegmentBytesMax) + "], got " + std::to_string(o.segmentBytes));
  if (o.pendingBytesMax < kPendingBytesMin || o.pendingBytesMax > kPendingBytesMaxLimit)
    throw WalError(ErrorCode::kBadArgument, "pendingBytesMax must be in [" + std::to_string(kPendingBytesMin) + ", " +
                                                std::to_string(kPendingBytesMaxLimit) + "], got " + std::to_string(o.pendingBytesMax));
  std::unique_ptr<Wal> w(new Wal(o));
  w->Recover(out);
  return w;
}

void Wal::Recover(Recovered* out) {
  const std::string& dir = opts_.dir;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) ThrowIo("cannot stat WAL directory", dir, errno);
    // Create the directory and every missing parent, syncing each parent so
    // the new directory entry itself is durable.
    std::string path;
    size_t at = 0;
    while (at != std::string::npos) {
      at = dir.find('/', at + 1);
      path = dir.substr(0, at);
      if (path.empty()) continue;
      if (::mkdir(path.c_str(), 0755) != 0) {
        if (errno == EEXIST) continue;
        ThrowIo("cannot create WAL directory", path, errno);
      }
      size_t slash = path.rfind('/');
      FsyncDir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
    }
  } else if (!S_ISDIR(st.st_mode)) {
    throw WalError(ErrorCode::kIo, "WAL path " + dir + " exists and is not a directory");
  }

  // One open WAL per directory, across processes and within this one (flock
  // locks belong to the open file description).
  std::string lockPath = Join(dir, "LOCK");
  lockFd_ = ::open(lockPath.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lockFd_ < 0) ThrowIo("cannot open lock file", lockPath, errno);
  if (::flock(lockFd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lockFd_);
    lockFd_ = -1;
    if (err == EWOULDBLOCK) throw WalError(ErrorCode::kIo, "WAL directory " + dir + " is already open (locked by " + lockPath + ")");
    ThrowIo("cannot lock", lockPath, err);
  }

  // Any other exit from here on must release the lock.
  try {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) ThrowIo("cannot list WAL directory", dir, errno);
    std::vector<std::pair<uint64_t, uint64_t>> found;  // seq, firstIndex
    std::vector<std::string> tmps;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      uint64_t seq, first;
      if (EndsWith(name, kTmpSuffix)) tmps.push_back(name);
      else if (ParseSegmentName(name, &seq, &first)) found.emplace_back(seq, first);
    }
    ::closedir(d);
    // A .tmp segment never got renamed into place, so it holds no record that
    // was ever acknowledged.
    for (const auto& t : tmps) {
      if (::unlink(Join(dir, t).c_str()) != 0) ThrowIo("cannot remove", Join(dir, t), errno);
    }
    if (!tmps.empty()) FsyncDir(dir);
    std::sort(found.begin(), found.end());

    if (found.empty()) {
      CreateSegment(0, 1);
      return;
    }
    for (size_t k = 0; k + 1 < found.size(); k++) {
      if (found[k + 1].first != found[k].first + 1)
        throw WalError(ErrorCode::kCorrupt, "WAL corrupt: " + dir + " has segment " + SegmentName(found[k].first, found[k].second) +
                                                " followed by " + SegmentName(found[k + 1].first, found[k + 1].second) +
                                                ": a segment in between is missing");
    }
    for (const auto& f : found) {
      Segment s;
      s.seq = f.first;
      s.firstIndex = f.second;
      s.path = Join(dir, SegmentName(f.first, f.second));
      segments_.push_back(s);
    }

    std::vector<std::vector<uint8_t>> buffers(segments_.size());
    for (size_t k = 0; k < segments_.size(); k++) ScanSegment(k, k + 1 == segments_.size(), &buffers, out);

    if (live_.MissingCount() > 0)
      throw WalError(ErrorCode::kCorrupt, "WAL corrupt: " + dir + ": entries " + std::to_string(live_.snapIndex() + 1) + ".." +
                                              std::to_string(live_.first() - 1) +
                                              " are missing (their segment is gone and no snapshot covers them)");
    size_t total = 0;
    for (const auto& e : live_.entries()) total += e.recordBytes;
    out->entries.reserve(total);
    for (auto& e : live_.entries()) {
      out->entries.insert(out->entries.end(), e.record, e.record + e.recordBytes);
    }
    out->entryCount = live_.entries().size();
    // From here on live_ tracks terms only: the record bytes go with the buffers.
    live_.DropRecords();
    if (out->hardState) liveTerm_ = out->hardState->term;
    writerLastIndex_ = live_.last();
    writerSnapIndex_ = live_.snapIndex();
    durableSnapIndex_ = live_.snapIndex();
    stats_.segments = segments_.size();
  } catch (...) {
    cur_.reset();
    ::close(lockFd_);
    lockFd_ = -1;
    throw;
  }
}

// Reads segment k, applies its records to live_ (which during recovery carries
// record pointers into `buffers`), and for the last segment sets up the
// writer's position, truncating a torn tail.
void Wal::ScanSegment(size_t k, bool isLast, std::vector<std::vector<uint8_t>>* buffers, Recovered* out) {
  Segment& seg = segments_[k];
  (*buffers)[k] = ReadFile(seg.path);
  const std::vector<uint8_t>& b = (*buffers)[k];

  uint8_t type;
  uint32_t len;
  if (!TryDecode(b, 0, &type, &len) || type != kRecordMeta || len != kMetaPayloadBytes)
    ThrowCorrupt(seg.path, 0, "the segment does not start with a valid header record");
  const uint8_t* m = b.data() + kRecordHeaderBytes;
  if (Get64(m) != kMetaMagic) ThrowCorrupt(seg.path, 0, "bad magic in the segment header");
  if (Get32(m + 8) != kFormatVersion)
    ThrowCorrupt(seg.path, 0, "unsupported format version " + std::to_string(Get32(m + 8)));
  uint64_t clusterId = Get64(m + 12), memberId = Get64(m + 20), seq = Get64(m + 28), firstIndex = Get64(m + 36);
  if (clusterId != opts_.clusterId || memberId != opts_.memberId)
    throw WalError(ErrorCode::kMismatch, "WAL " + seg.path + " belongs to cluster " + std::to_string(clusterId) + " member " +
                                             std::to_string(memberId) + ", not to cluster " + std::to_string(opts_.clusterId) +
                                             " member " + std::to_string(opts_.memberId));
  if (seq != seg.seq || firstIndex != seg.firstIndex)
    ThrowCorrupt(seg.path, 0, "the header names seq " + std::to_string(seq) + " first index " + std::to_string(firstIndex) +
                                  ", which does not match the file name");
  // The first segment present fixes where the log starts; if earlier segments
  // were released, entries before firstIndex are missing until a snapshot
  // covers them.
  if (k == 0) live_.StartAt(firstIndex);

  size_t off = kRecordHeaderBytes + kMetaPayloadBytes;
  while (TryDecode(b, off, &type, &len)) {
    const uint8_t* p = b.data() + off + kRecordHeaderBytes;
    switch (type) {
      case kRecordEntry: {
        if (len < kEntryHeaderBytes || Get32(p + 17) != len - kEntryHeaderBytes)
          ThrowCorrupt(seg.path, off, "an entry record with an inconsistent length");
        uint64_t index = Get64(p), term = Get64(p + 8);
        std::string why = live_.CheckEntry(index);
        if (!why.empty()) ThrowCorrupt(seg.path, off, why);
        live_.AddEntry(index, LogEntryRef{term, p, len});
        seg.maxEntryIndex = std::max(seg.maxEntryIndex, index);
        break;
      }
      case kRecordHardState:
        if (len != kHardStatePayloadBytes) ThrowCorrupt(seg.path, off, "a hard state record of the wrong length");
        out->hardState = DecodeHardState(p);
        lastHardStateRecord_.assign(b.data() + off, b.data() + off + kRecordHeaderBytes + len);
        break;
      case kRecordSnapshot: {
        SnapshotMeta s;
        if (!DecodeSnapshot(p, len, &s)) ThrowCorrupt(seg.path, off, "a malformed snapshot record");
        std::string why = live_.CheckSnapshot(s.index);
        if (!why.empty()) ThrowCorrupt(seg.path, off, why);
        live_.AddSnapshot(s.index, s.term);
        out->snapshot = s;
        lastSnapshotRecord_.assign(b.data() + off, b.data() + off + kRecordHeaderBytes + len);
        break;
      }
      default:
        ThrowCorrupt(seg.path, off, "a segment header record in the middle of a segment");
    }
    off += kRecordHeaderBytes + len;
  }

  // `off` is the first byte that is not a valid record. Zeros to the end of
  // the file are the normal end of data (the preallocated remainder).
  size_t lastNonZero = b.size();
  for (size_t i = b.size(); i > off; i--) {
    if (b[i - 1] != 0) {
      lastNonZero = i - 1;
      break;
    }
  }
  uint64_t truncate = 0;
  if (lastNonZero != b.size()) {
    // Look for a valid record anywhere after the bad one. The cheap header
    // checks reject almost every position before a checksum is computed.
    size_t next = 0;
    for (size_t p = off + 1; p + kRecordHeaderBytes <= b.size() && p <= lastNonZero; p++) {
      const uint8_t* h = b.data() + p;
      if (h[8] < kRecordMeta || h[8] > kRecordSnapshot || h[9] != 0 || h[10] != 0 || h[11] != 0) continue;
      if (TryDecode(b, p, &type, &len)) {
        next = p;
        break;
      }
    }
    if (!isLast) {
      // Earlier segments were synced in full before the next one was created,
      // so no crash can leave them torn.
      ThrowCorrupt(seg.path, off, next ? "checksum failure; a valid record follows at offset " + std::to_string(next)
                                       : "checksum failure in a segment that is not the last one");
    }
    if (next != 0) {
      // A crash can persist a later page of an unsynced write and lose an
      // earlier one; a lost page reads as zeros. An all-zero sector between
      // the bad record and the valid one marks such a torn write. Without
      // one, a valid record after a bad one is corruption in the middle.
      bool zeroSector = false;
      for (size_t s = off / kSectorBytes * kSectorBytes; s < next && s + kSectorBytes <= b.size() && !zeroSector; s += kSectorBytes) {
        zeroSector = std::all_of(b.begin() + s, b.begin() + s + kSectorBytes, [](uint8_t c) { return c == 0; });
      }
      if (!zeroSector)
        ThrowCorrupt(seg.path, off, "checksum failure in the middle of the log (a valid record follows at offset " +
                                        std::to_string(next) + ")");
    }
    truncate = lastNonZero + 1 - off;
  }

  if (!isLast) return;
  int fd = ::open(seg.path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowIo("cannot open", seg.path, errno);
  cur_ = std::make_shared<File>(fd, seg.path);
  if (truncate > 0) {
    // Zero the torn bytes rather than shrinking the file, so the
    // preallocation (and the zeros-mean-end rule) stays intact.
    std::vector<uint8_t> zeros(std::min<uint64_t>(truncate, 1 << 20), 0);
    for (uint64_t done = 0; done < truncate;) {
      size_t n = size_t(std::min<uint64_t>(zeros.size(), truncate - done));
      PwriteAll(fd, zeros.data(), n, off + done, seg.path);
      done += n;
    }
    out->truncatedBytes = truncate;
  }
  if (b.size() < opts_.segmentBytes) Preallocate(fd, opts_.segmentBytes, seg.path);
  if (truncate > 0 || b.size() < opts_.segmentBytes) Fdatasync(fd, seg.path);
  curOffset_ = off;
  curPreamble_ = std::min<uint64_t>(off, kRecordHeaderBytes + kMetaPayloadBytes + lastHardStateRecord_.size() + lastSnapshotRecord_.size());
}

// Creates segment `seq` holding META and the preamble, preallocated and
// durable, and makes it current. Runs at open (first segment) and on the
// writer thread (rollover). The caller has synced and may close the previous
// segment.
void Wal::CreateSegment(uint64_t seq, uint64_t firstIndex) {
  std::string name = SegmentName(seq, firstIndex);
  std::string path = Join(opts_.dir, name);
  std::string tmp = path.substr(0, path.size() - std::strlen(kSegmentSuffix)) + kTmpSuffix;
  std::vector<uint8_t> head;
  uint8_t meta[kMetaPayloadBytes];
  Put64(meta, kMetaMagic);
  Put32(meta + 8, kFormatVersion);
  Put64(meta + 12, opts_.clusterId);
  Put64(meta + 20, opts_.memberId);
  Put64(meta + 28, seq);
  Put64(meta + 36, firstIndex);
  AppendRecord(&head, kRecordMeta, meta, sizeof meta);
  // The preamble makes every segment carry the latest hard state and snapshot
  // marker, so that releasing older segments never loses them.
  head.insert(head.end(), lastHardStateRecord_.begin(), lastHardStateRecord_.end());
  head.insert(head.end(), lastSnapshotRecord_.begin(), lastSnapshotRecord_.end());

  int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) ThrowIo("cannot create", tmp, errno);
  try {
    Preallocate(fd, opts_.segmentBytes, tmp);
    PwriteAll(fd, head.data(), head.size(), 0, tmp);
    Fdatasync(fd, tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) ThrowIo("cannot rename into place", tmp, errno);
    FsyncDir(opts_.dir);
  } catch (...) {
    ::close(fd);
    throw;
  }
  curOffset_ = head.size();
  curPreamble_ = head.size();
  Segment s;
  s.seq = seq;
  s.firstIndex = firstIndex;
  s.path = path;
  std::lock_guard<std::mutex> lk(mu_);
  cur_ = std::make_shared<File>(fd, path);
  segments_.push_back(s);
  stats_.segments = segments_.size();
  stats_.segmentsCreated++;
}

void Wal::StartWriter() {
  assert(io_.empty());
  for (int k = 0; k < kIoThreads; k++) io_.emplace_back([this] { IoLoop(); });
}

// Appends to the pending buffer under mu_, waiting while it is full. `encode`
// runs under the lock and writes the records straight into pending_.
template <typename Encode>
static void EnqueueLocked(std::unique_lock<std::mutex>& lk, std::condition_variable& spaceCv, std::condition_variable& workCv,
                          std::vector<uint8_t>& pending, const std::string& failed, const bool& stopping, uint64_t max,
                          size_t bytes, uint64_t& waits, int& spaceWaiters, Encode encode) {
  for (;;) {
    if (!failed.empty()) throw WalError(ErrorCode::kIo, "WAL failed earlier: " + failed);
    if (stopping) throw WalError(ErrorCode::kClosed, "WAL is closed");
    // Backpressure: wait (bounded by one write plus one fdatasync) for the
    // writer to take the pending buffer. An empty buffer always accepts, and
    // callers refuse single appends above `max`, so this cannot wait forever.
    if (pending.empty() || pending.size() + bytes <= max) break;
    waits++;
    spaceWaiters++;
    workCv.notify_all();
    spaceCv.wait(lk);
    spaceWaiters--;
  }
  encode();
  // The writer is woken by sync requests, and by appends only once a good
  // share of the bound has piled up (write-behind for long runs without
  // sync). Waking it for every append would cost a context switch and a
  // small pwrite per record while the JS thread is producing a batch.
  if (pending.size() >= max / 4) workCv.notify_one();
}

void Wal::AppendEntries(const uint8_t* buf, size_t len) {
  // Validate the whole buffer before writing anything.
  size_t count = 0;
  uint64_t prevIndex = 0, prevTerm = 0;
  for (size_t off = 0; off < len;) {
    if (len - off < kEntryHeaderBytes)
      throw WalError(ErrorCode::kBadArgument, "entries buffer: truncated entry header at byte " + std::to_string(off));
    uint64_t index = Get64(buf + off), term = Get64(buf + off + 8);
    uint32_t dataLen = Get32(buf + off + 17);
    if (len - off - kEntryHeaderBytes < dataLen)
      throw WalError(ErrorCode::kBadArgument, "entries buffer: entry at byte " + std::to_string(off) + " declares " +
                                                  std::to_string(dataLen) + " data bytes but the buffer ends first");
    if (count == 0) {
      std::string why = live_.CheckEntry(index);
      if (!why.empty()) throw WalError(ErrorCode::kBadArgument, "entries buffer: " + why);
      uint64_t before = live_.TermAt(index - 1);
      if (term < before)
        throw WalError(ErrorCode::kBadArgument, "entries buffer: entry " + std::to_string(index) + " has term " +
                                                    std::to_string(term) + ", below the term " + std::to_string(before) +
                                                    " of the entry before it");
    } else {
      if (index != prevIndex + 1)
        throw WalError(ErrorCode::kBadArgument, "entries buffer: entry index " + std::to_string(index) + " does not follow " +
                                                    std::to_string(prevIndex));
      if (term < prevTerm)
        throw WalError(ErrorCode::kBadArgument, "entries buffer: entry " + std::to_string(index) + " has a lower term than the entry before it");
    }
    prevIndex = index;
    prevTerm = term;
    count++;
    off += kEntryHeaderBytes + dataLen;
  }
  if (count == 0) return;
  size_t bytes = len + count * kRecordHeaderBytes;
  if (bytes > opts_.pendingBytesMax)
    throw WalError(ErrorCode::kBadArgument, "entries buffer of " + std::to_string(len) + " bytes exceeds pendingBytesMax " +
                                                std::to_string(opts_.pendingBytesMax));

  std::unique_lock<std::mutex> lk(mu_);
  EnqueueLocked(lk, spaceCv_, workCv_, pending_, failed_, stopping_, opts_.pendingBytesMax, bytes, stats_.backpressureWaits, spaceWaiters_, [&] {
    for (size_t off = 0; off < len;) {
      uint32_t recLen = uint32_t(kEntryHeaderBytes + Get32(buf + off + 17));
      uint64_t index = Get64(buf + off);
      AppendRecord(&pending_, kRecordEntry, buf + off, recLen);
      pendingRecs_.push_back(PendingRecord{uint32_t(kRecordHeaderBytes + recLen), kRecordEntry, index, index});
      off += recLen;
    }
    appended_ += bytes;
  });
  lk.unlock();
  for (size_t off = 0; off < len;) {
    uint32_t recLen = uint32_t(kEntryHeaderBytes + Get32(buf + off + 17));
    live_.AddEntry(Get64(buf + off), LogEntryRef{Get64(buf + off + 8), nullptr, 0});
    off += recLen;
  }
}

void Wal::AppendHardState(const HardState& hs) {
  if (hs.term < liveTerm_)
    throw WalError(ErrorCode::kBadArgument, "hard state term " + std::to_string(hs.term) + " is below the recorded term " +
                                                std::to_string(liveTerm_));
  std::vector<uint8_t> payload = EncodeHardState(hs);
  size_t bytes = kRecordHeaderBytes + payload.size();
  std::unique_lock<std::mutex> lk(mu_);
  EnqueueLocked(lk, spaceCv_, workCv_, pending_, failed_, stopping_, opts_.pendingBytesMax, bytes, stats_.backpressureWaits, spaceWaiters_, [&] {
    AppendRecord(&pending_, kRecordHardState, payload.data(), payload.size());
    pendingRecs_.push_back(PendingRecord{uint32_t(bytes), kRecordHardState, 0, live_.last()});
    appended_ += bytes;
  });
  lk.unlock();
  liveTerm_ = hs.term;
}

void Wal::AppendSnapshot(const SnapshotMeta& snap) {
  std::string why = live_.CheckSnapshot(snap.index);
  if (!why.empty()) throw WalError(ErrorCode::kBadArgument, why);
  std::vector<uint8_t> payload = EncodeSnapshot(snap);
  size_t bytes = kRecordHeaderBytes + payload.size();
  if (bytes > opts_.pendingBytesMax) throw WalError(ErrorCode::kBadArgument, "snapshot record exceeds pendingBytesMax");
  uint64_t lastAfter = live_.LastAfterSnapshot(snap.index, snap.term);
  std::unique_lock<std::mutex> lk(mu_);
  EnqueueLocked(lk, spaceCv_, workCv_, pending_, failed_, stopping_, opts_.pendingBytesMax, bytes, stats_.backpressureWaits, spaceWaiters_, [&] {
    AppendRecord(&pending_, kRecordSnapshot, payload.data(), payload.size());
    pendingRecs_.push_back(PendingRecord{uint32_t(bytes), kRecordSnapshot, snap.index, lastAfter});
    appended_ += bytes;
  });
  lk.unlock();
  live_.AddSnapshot(snap.index, snap.term);
}

uint64_t Wal::RequestSync() {
  std::lock_guard<std::mutex> lk(mu_);
  if (!failed_.empty()) throw WalError(ErrorCode::kIo, "WAL failed earlier: " + failed_);
  if (stopping_) throw WalError(ErrorCode::kClosed, "WAL is closed");
  if (appended_ > syncRequested_) {
    syncRequested_ = appended_;
    workCv_.notify_one();
  }
  return appended_;
}

std::string Wal::FailedMessage() {
  std::lock_guard<std::mutex> lk(mu_);
  return failed_;
}

void Wal::Fail(const std::string& msg) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (failed_.empty()) failed_ = msg;
  }
  spaceCv_.notify_all();
  workCv_.notify_all();
  if (notify_) notify_();
}

// An I/O thread. Two roles, claimed under mu_:
// - writer (one thread at a time, so batches reach the file in order): take
//   everything pending, write it, publish written_;
// - syncer: when a sync was requested and something was written since the
//   latest fdatasync started, fdatasync the current segment and publish what
//   it covered. Earlier segments were synced by the writer when it rolled
//   over, so syncing the current one covers everything written.
// A thread that has just written goes on to sync at once (no hand-off), and
// while one thread is inside fdatasync the other can write and start the next.
// - remover: with no write or sync to do, unlink the segments ReleaseBefore
//   released and fsync the directory.
void Wal::IoLoop() {
  std::vector<uint8_t> buf;
  std::vector<PendingRecord> recs;
  std::vector<std::string> doomed;
  for (;;) {
    bool doWrite = false;
    uint64_t batchEnd = 0;
    {
      std::unique_lock<std::mutex> lk(mu_);
      auto writeWork = [&] {
        return !writing_ && !pending_.empty() &&
               (syncRequested_ > written_ || stopping_ || spaceWaiters_ > 0 || pending_.size() >= opts_.pendingBytesMax / 4);
      };
      auto syncWork = [&] { return syncRequested_ > syncStarted_ && written_ > syncStarted_; };
      auto removeWork = [&] { return !removing_ && !removals_.empty(); };
      auto done = [&] { return stopping_ && pending_.empty() && !writing_ && removals_.empty() && !removing_; };
      workCv_.wait(lk, [&] { return !failed_.empty() || writeWork() || syncWork() || removeWork() || done(); });
      if (!failed_.empty()) return;
      if (writeWork()) {
        writing_ = true;
        buf.swap(pending_);
        recs.swap(pendingRecs_);
        batchEnd = appended_;
        doWrite = true;
      } else if (!syncWork()) {
        if (!removeWork()) return;  // stopping, and everything is written, synced and removed
        removing_ = true;
        doomed.swap(removals_);
      }
    }
    if (!doomed.empty()) {
      try {
        for (const auto& p : doomed) {
          if (::unlink(p.c_str()) != 0 && errno != ENOENT) ThrowIo("cannot remove segment", p, errno);
        }
        FsyncDir(opts_.dir);
      } catch (const std::exception& e) {
        Fail(e.what());
        return;
      }
      doomed.clear();
      {
        std::lock_guard<std::mutex> lk(mu_);
        removing_ = false;
      }
      workCv_.notify_all();  // a thread waiting to stop checks done() again
      continue;
    }
    if (doWrite) {
      spaceCv_.notify_all();
      try {
        WriteBatch(buf, recs);
      } catch (const std::exception& e) {
        Fail(e.what());
        return;
      }
      buf.clear();
      recs.clear();
    }
    std::shared_ptr<File> file;
    uint64_t target = 0, snapIndex = 0;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (doWrite) {
        written_ = batchEnd;
        writtenSnapIndex_ = writerSnapIndex_;
        writing_ = false;
      }
      if (syncRequested_ > syncStarted_ && written_ > syncStarted_) {
        target = written_;
        snapIndex = writtenSnapIndex_;
        syncStarted_ = target;
        file = cur_;
      }
    }
    // More may be pending already; let the other thread write it meanwhile.
    workCv_.notify_one();
    if (!file) continue;
    try {
      if (opts_.testingFailFdatasyncAfter != 0 && target != 0) {
        std::lock_guard<std::mutex> lk(mu_);
        if (stats_.fdatasyncs >= opts_.testingFailFdatasyncAfter) ThrowIo("fdatasync failed on", file->path, EIO);
      }
      Fdatasync(file->fd, file->path);
    } catch (const std::exception& e) {
      Fail(e.what());
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      stats_.fdatasyncs++;
      if (target > durable_.load()) {
        durable_.store(target, std::memory_order_release);
        durableSnapIndex_ = std::max(durableSnapIndex_, snapIndex);
      }
    }
    if (notify_) notify_();
  }
}

void Wal::WriteAt(const uint8_t* p, size_t n) {
  if (n == 0) return;
  PwriteAll(cur_->fd, p, n, curOffset_, cur_->path);
  curOffset_ += n;
}

void Wal::WriteBatch(const std::vector<uint8_t>& buf, const std::vector<PendingRecord>& recs) {
  size_t runStart = 0, pos = 0;
  uint64_t maxEntry = 0;
  for (const PendingRecord& r : recs) {
    if (curOffset_ + (pos - runStart) + r.bytes > opts_.segmentBytes && curOffset_ + (pos - runStart) > curPreamble_) {
      // Roll over: finish and sync the full segment first, so that only the
      // last segment can ever hold a torn write.
      WriteAt(buf.data() + runStart, pos - runStart);
      runStart = pos;
      Fdatasync(cur_->fd, cur_->path);
      uint64_t seq;
      {
        std::lock_guard<std::mutex> lk(mu_);
        stats_.fdatasyncs++;
        segments_.back().maxEntryIndex = std::max(segments_.back().maxEntryIndex, maxEntry);
        seq = segments_.back().seq + 1;
      }
      maxEntry = 0;
      CreateSegment(seq, writerLastIndex_ + 1);
    }
    switch (r.type) {
      case kRecordEntry:
        maxEntry = std::max(maxEntry, r.index);
        break;
      case kRecordHardState:
        lastHardStateRecord_.assign(buf.begin() + pos, buf.begin() + pos + r.bytes);
        break;
      case kRecordSnapshot:
        lastSnapshotRecord_.assign(buf.begin() + pos, buf.begin() + pos + r.bytes);
        writerSnapIndex_ = r.index;
        break;
      default:
        assert(false && "unexpected pending record type");
    }
    writerLastIndex_ = r.lastIndexAfter;
    pos += r.bytes;
  }
  assert(pos == buf.size());
  WriteAt(buf.data() + runStart, pos - runStart);
  std::lock_guard<std::mutex> lk(mu_);
  segments_.back().maxEntryIndex = std::max(segments_.back().maxEntryIndex, maxEntry);
}

size_t Wal::ReleaseBefore(uint64_t index) {
  size_t released = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!failed_.empty()) throw WalError(ErrorCode::kIo, "WAL failed earlier: " + failed_);
    if (stopping_) throw WalError(ErrorCode::kClosed, "WAL is closed");
    // Only a durable snapshot marker may justify dropping entries, and the
    // current segment is never removed. The segment after the removed ones
    // repeats the latest hard state and snapshot marker in its preamble.
    uint64_t limit = std::min(index, durableSnapIndex_);
    while (segments_.size() > 1 && segments_.front().maxEntryIndex < limit) {
      removals_.push_back(segments_.front().path);
      segments_.pop_front();
      released++;
    }
    stats_.segments = segments_.size();
    stats_.segmentsRemoved += released;
  }
  // The files go on an I/O thread (IoLoop). Until they are gone a crash
  // leaves them behind, as a crash between a marker and an unlink always
  // could: recovery drops entries at or below the durable marker.
  if (released > 0) workCv_.notify_one();
  return released;
}

void Wal::Close() {
  std::lock_guard<std::mutex> closeLk(closeMu_);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopped_) return;
    stopping_ = true;
    syncRequested_ = appended_;
  }
  workCv_.notify_all();
  spaceCv_.notify_all();
  for (auto& t : io_) t.join();
  io_.clear();
  std::lock_guard<std::mutex> lk(mu_);
  stopped_ = true;
  cur_.reset();
  if (lockFd_ >= 0) ::close(lockFd_);
  lockFd_ = -1;
}

Stats Wal::GetStats() {
  std::lock_guard<std::mutex> lk(mu_);
  Stats s = stats_;
  s.appendedBytes = appended_;
  s.durableBytes = durable_.load();
  s.segments = segments_.size();
  s.lastIndex = live_.last();
  s.snapshotIndex = durableSnapIndex_;
  return s;
}

}  // namespace keelson::wal
