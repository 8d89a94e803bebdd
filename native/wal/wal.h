// The write-ahead log: segmented, checksummed, group-committed.
//
// Overview (docs/wal.md has the full design).
// - Files: `<seq:016x>-<firstIndex:016x>.wal` segments in one directory, each
//   preallocated to segmentBytes and opened by a META record (cluster id,
//   member id, seq, first index), then a preamble repeating the latest hard
//   state and snapshot marker, then records. A new segment is written under a
//   `.tmp` name, synced, renamed into place and the directory synced, so a
//   segment file always starts with a valid META record.
// - Threads: the JS thread encodes records (CRC included) into a bounded
//   pending buffer. Two I/O threads share the work: one at a time takes the
//   pending buffer and writes it (the writer role, so batches land in order),
//   then runs fdatasync if a sync was requested and something was written
//   since the latest fdatasync started. Everything appended while an
//   fdatasync runs is made durable by a later one: group commit with no timer
//   and no busy-waiting. With two threads a new write + fdatasync can start
//   while the previous fdatasync is still in the kernel, so a waiter never
//   sits out a whole fdatasync before its own can begin. Each fdatasync makes
//   durable everything written before it started, so completions may come in
//   any order: durable = max over completed fdatasyncs of what they covered.
// - Bounds: pending bytes <= pendingBytesMax. An append that would exceed it
//   blocks the JS thread until the writer takes the buffer (at most one write
//   plus one fdatasync). Blocking is preferred to failing: it cannot lose data
//   and it slows the producer exactly as much as the disk requires. An append
//   larger than pendingBytesMax on its own is refused with kBadArgument.
// - Failures: any write/fsync error makes the WAL failed for good (after a
//   failed fdatasync the page cache can no longer be trusted to reflect the
//   disk); every later append and sync reports the original error.
// - Recovery (Open): reads all segments in order, truncates a torn tail of the
//   last segment, refuses corruption anywhere else, and rebuilds the log with
//   LogShape's rules.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "wal/format.h"
#include "wal/log_shape.h"

namespace keelson::wal {

struct Options {
  std::string dir;
  uint64_t clusterId = 0;
  uint64_t memberId = 0;
  uint64_t segmentBytes = 64ull << 20;
  uint64_t pendingBytesMax = 16ull << 20;
  // Testing only: the I/O threads' fdatasync fails with EIO once this many
  // have succeeded (0 = never). Exercises the failure path without a broken disk.
  uint64_t testingFailFdatasyncAfter = 0;
};

constexpr uint64_t kSegmentBytesMin = 4096;
constexpr uint64_t kSegmentBytesMax = 1ull << 30;
constexpr uint64_t kPendingBytesMin = 64 << 10;
constexpr uint64_t kPendingBytesMaxLimit = 1ull << 30;

struct Recovered {
  std::optional<HardState> hardState;
  std::optional<SnapshotMeta> snapshot;
  std::vector<uint8_t> entries;  // entries format
  uint64_t entryCount = 0;
  uint64_t truncatedBytes = 0;
};

struct Stats {
  uint64_t fdatasyncs = 0;
  uint64_t appendedBytes = 0;
  uint64_t durableBytes = 0;
  uint64_t segments = 0;
  uint64_t segmentsCreated = 0;
  uint64_t segmentsRemoved = 0;
  uint64_t lastIndex = 0;
  uint64_t snapshotIndex = 0;
  uint64_t backpressureWaits = 0;
};

class Wal {
 public:
  // Opens (or creates) the WAL in options.dir and fills *recovered. Throws WalError.
  static std::unique_ptr<Wal> Open(const Options& options, Recovered* recovered);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Called on the writer thread whenever the durable position advances or the
  // WAL fails. It must not block (the binding posts to a thread-safe function).
  void SetNotify(std::function<void()> notify) { notify_ = std::move(notify); }
  void StartWriter();

  // JS-thread operations. Each validates first and writes nothing on error.
  void AppendEntries(const uint8_t* buf, size_t len);
  void AppendHardState(const HardState& hs);
  void AppendSnapshot(const SnapshotMeta& snap);
  // Asks the writer to make everything appended so far durable; returns the
  // position (appended bytes) that a sync waiter needs.
  uint64_t RequestSync();
  uint64_t DurableBytes() const { return durable_.load(std::memory_order_acquire); }
  // Empty when healthy, else the error that failed the WAL.
  std::string FailedMessage();
  size_t ReleaseBefore(uint64_t index);
  // Writes and syncs everything appended, stops the writer and closes files.
  // Safe to call more than once and from any thread but the writer.
  void Close();
  Stats GetStats();

 private:
  struct Segment {
    uint64_t seq = 0;
    uint64_t firstIndex = 0;
    std::string path;
    uint64_t maxEntryIndex = 0;  // highest entry index recorded in it, 0 when none
  };
  // One record waiting to be written, described for the writer's bookkeeping.
  struct PendingRecord {
    uint32_t bytes;
    uint8_t type;
    uint64_t index;          // entry index, or snapshot index
    uint64_t lastIndexAfter; // the log's last index once this record applies
  };

  explicit Wal(const Options& options);
  void Recover(Recovered* out);
  void ScanSegment(size_t k, bool isLast, std::vector<std::vector<uint8_t>>* buffers, Recovered* out);
  void CreateSegment(uint64_t seq, uint64_t firstIndex);  // becomes the current segment
  void Enqueue(const std::vector<uint8_t>& bytes, const std::vector<PendingRecord>& recs, size_t reserve);
  void IoLoop();
  void WriteBatch(const std::vector<uint8_t>& buf, const std::vector<PendingRecord>& recs);
  void WriteAt(const uint8_t* p, size_t n);
  void Fail(const std::string& msg);

  const Options opts_;
  int lockFd_ = -1;

  // JS-thread state (the live mirror of the log, for validation).
  LogShape live_;
  uint64_t liveTerm_ = 0;

  // An open segment file; shared so that a sync thread can finish an
  // fdatasync on a segment the writer has already moved past.
  struct File {
    int fd;
    std::string path;
    File(int f, std::string p) : fd(f), path(std::move(p)) {}
    ~File();
  };

  // Shared between the JS thread, the writer and the sync threads; guarded by mu_.
  std::mutex mu_;
  std::condition_variable workCv_;   // I/O threads wait for work
  std::condition_variable spaceCv_;  // appenders wait for pending space
  std::vector<uint8_t> pending_;
  std::vector<PendingRecord> pendingRecs_;
  uint64_t appended_ = 0;       // bytes ever appended (pending included)
  uint64_t syncRequested_ = 0;  // appended_ at the latest sync request
  bool stopping_ = false;
  bool stopped_ = false;
  std::string failed_;
  std::deque<Segment> segments_;  // oldest first; the back one is current
  uint64_t durableSnapIndex_ = 0;
  uint64_t written_ = 0;           // appended bytes the writer has written
  uint64_t writtenSnapIndex_ = 0;  // snapshot index as of written_
  uint64_t syncStarted_ = 0;       // written_ when the latest fdatasync started
  bool writing_ = false;           // an I/O thread holds the writer role
  int spaceWaiters_ = 0;           // appends blocked on pending space
  std::shared_ptr<File> cur_;      // the current segment
  Stats stats_;

  std::atomic<uint64_t> durable_{0};

  // Segments released by ReleaseBefore, removed (unlink, then a directory
  // fsync) by an I/O thread when it has no write or sync to do, so that the
  // caller's thread never waits on the file system for them. Guarded by mu_.
  std::vector<std::string> removals_;
  bool removing_ = false;

  // Writer-thread state.
  uint64_t curOffset_ = 0;   // write position in the current segment
  uint64_t curPreamble_ = 0; // bytes of META + preamble in the current segment
  uint64_t writerLastIndex_ = 0;
  uint64_t writerSnapIndex_ = 0;
  std::vector<uint8_t> lastHardStateRecord_;
  std::vector<uint8_t> lastSnapshotRecord_;
  std::function<void()> notify_;
  std::vector<std::thread> io_;
  std::mutex closeMu_;
};

}  // namespace keelson::wal
