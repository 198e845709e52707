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

#endif
