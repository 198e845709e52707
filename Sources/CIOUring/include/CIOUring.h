// CIOUring: the C shim over liburing used by ShardRuntime.
//
// <features.h> comes first: liburing.h defines _GNU_SOURCE/_XOPEN_SOURCE itself, and a module header that
// lets it do so before glibc's feature selection clashes with Glibc's view of fd_set
// (../shared/SWIFT-LINUX-NOTES.md). GNU-only calls live in shim.c behind plain functions.
#ifndef SHOAL_CIOURING_H
#define SHOAL_CIOURING_H

#include <features.h>
#include <liburing.h>
#include <stdint.h>

// MARK: - SQE flags (macros in liburing, not imported by Swift)

/// IOSQE_BUFFER_SELECT: the request picks a buffer from a provided-buffer group.
static const uint8_t shoal_IOSQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
/// IOSQE_CQE_SKIP_SUCCESS: post no completion when the request succeeds.
static const uint8_t shoal_IOSQE_CQE_SKIP_SUCCESS = IOSQE_CQE_SKIP_SUCCESS;
/// IORING_CQE_F_MORE: a multishot request stays armed after this completion.
static const uint32_t shoal_IORING_CQE_F_MORE = IORING_CQE_F_MORE;
/// IORING_CQE_F_BUFFER: the completion consumed a provided buffer (its id is in flags >> 16).
static const uint32_t shoal_IORING_CQE_F_BUFFER = IORING_CQE_F_BUFFER;
/// IORING_CQE_BUFFER_SHIFT: shift of the buffer id inside cqe->flags.
static const uint32_t shoal_IORING_CQE_BUFFER_SHIFT = IORING_CQE_BUFFER_SHIFT;
/// IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN.
static const uint32_t shoal_IORING_SETUP_SINGLE_ISSUER_DEFER_TASKRUN =
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
/// IORING_SETUP_COOP_TASKRUN (fallback when DEFER_TASKRUN is missing).
static const uint32_t shoal_IORING_SETUP_COOP_TASKRUN = IORING_SETUP_COOP_TASKRUN;
/// IORING_SETUP_SUBMIT_ALL: keep submitting after one SQE fails at submission.
static const uint32_t shoal_IORING_SETUP_SUBMIT_ALL = IORING_SETUP_SUBMIT_ALL;
/// IORING_ASYNC_CANCEL_ALL: cancel every request matching the key.
static const uint32_t shoal_IORING_ASYNC_CANCEL_ALL = IORING_ASYNC_CANCEL_ALL;

// MARK: - Ring setup

/// io_uring_queue_init_params with `flags`; returns 0 or -errno.
int shoal_queue_init(unsigned entries, struct io_uring *ring, unsigned flags);

/// Whether the kernel supports opcode `op` (probed through `ring`). Returns 1 or 0.
int shoal_opcode_supported(struct io_uring *ring, int op);

/// Maps, initialises and registers a provided-buffer ring of `entries` (a power of two) under group `bgid`
/// (liburing 2.3 lacks io_uring_setup_buf_ring). Returns the ring or NULL with *err set to a negative errno.
struct io_uring_buf_ring *shoal_setup_buf_ring(struct io_uring *ring, unsigned entries, int bgid, int *err);

/// Unregisters and unmaps a ring made by shoal_setup_buf_ring.
void shoal_free_buf_ring(struct io_uring *ring, struct io_uring_buf_ring *br, unsigned entries, int bgid);

/// Sets sqe->flags |= flags.
static inline void shoal_sqe_set_flags(struct io_uring_sqe *sqe, uint8_t flags) { sqe->flags |= flags; }
/// Sets sqe->buf_group.
static inline void shoal_sqe_set_buf_group(struct io_uring_sqe *sqe, uint16_t group) { sqe->buf_group = group; }

// MARK: - Threads, CPUs, descriptors (GNU-only calls)

/// Writes up to `max` CPU numbers from the process's affinity mask into `out`; returns the count or -errno.
int shoal_allowed_cpus(int *out, int max);
/// Pins the calling thread to `cpu`; returns 0 or an errno value.
int shoal_pin_current_thread(int cpu);
/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); returns the fd or -errno.
int shoal_eventfd(void);
/// Kernel thread id of the caller.
int shoal_gettid(void);
/// Sets the calling thread's name (at most 15 characters are kept).
void shoal_set_thread_name(const char *name);

// MARK: - Signals

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (threads created later inherit the mask). Returns 0 or errno.
int shoal_block_termination_signals(void);
/// Waits for SIGINT, SIGTERM or SIGHUP (which must be blocked); returns the signal number or -errno.
int shoal_wait_termination_signal(void);
/// Sends `sig` to the process itself (for tests).
int shoal_raise_process_signal(int sig);

#endif
