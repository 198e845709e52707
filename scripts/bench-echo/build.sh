#!/bin/sh
# Builds the C epoll echo baseline used by RuntimeBenchmarks (it also builds it itself when missing).
set -eu
cc -O2 -o "${1:-/tmp/shoal-epoll-echo}" "$(dirname "$0")/epoll_echo.c"
