/*
 * stx-memread.so: one process_vm_readv for the broker's thread pool
 * (called through koffi's .async(), so it runs on a libuv worker thread).
 *
 * Reading a program's memory can block for as long as the program wants
 * (memory mapped from a FUSE file: the read waits for the user's FUSE
 * server). The broker gives each read a deadline, but only from the moment
 * a worker thread actually starts it: a read still queued behind other
 * work in the pool is not overrunning. So the job stamps its start time
 * (CLOCK_MONOTONIC, the clock of process.hrtime) before it reads.
 *
 * MUST: touch only the job's own memory (the broker allocates one block per
 * read and frees it after this returns, however late); never block on
 * anything but the read itself.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#define STX_READ_MAX_IOV 4

/* Layout shared with src/broker/seccomp/memread.ts (offsets in comments). */
struct stx_read_job {
  int64_t started_ns;                     /*  0: CLOCK_MONOTONIC at start */
  int32_t started;                        /*  8: 1 once started_ns is set */
  int32_t pid;                            /* 12: the task to read */
  uint32_t nremote;                       /* 16: remote iovecs in use */
  uint32_t pad;                           /* 20 */
  struct iovec local;                     /* 24: where the bytes go */
  struct iovec remote[STX_READ_MAX_IOV];  /* 40: what to read */
};

_Static_assert(sizeof(struct stx_read_job) == 104, "job layout");

/* Bytes read (possibly fewer than asked), or -errno. */
__attribute__((visibility("default")))
long stx_read_memory(struct stx_read_job *job) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  job->started_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  __atomic_store_n(&job->started, 1, __ATOMIC_RELEASE);
  if (job->nremote == 0 || job->nremote > STX_READ_MAX_IOV) return -EINVAL;
  ssize_t n = process_vm_readv(job->pid, &job->local, 1, job->remote, job->nremote, 0);
  return n < 0 ? -errno : (long)n;
}
