// MARK: - Counting allocations by interposing malloc

// The executable defines `malloc`, `calloc`, `realloc`, `posix_memalign`, `aligned_alloc` and `memalign`;
// each bumps a counter and forwards to glibc's own entry points (`__libc_malloc` and friends, exported since
// GLIBC_2.2.5). For the Swift runtime (swift_slowAlloc calls malloc or posix_memalign) to bind to these
// definitions, the executable must export them dynamically, which SwiftPM's default link does not do: the
// target's `linkerSettings` in Package.swift pass `-Xlinker --export-dynamic`. Without it the self-check fails
// and the table prints "n/a" for allocations rather than a false zero.
//
// Measured alternative that failed: the runtime's Instruments hook `_swift_allocObject` (with
// `_swift_enableSwizzlingOfAllocationAndRefCountingFunctions_forInstrumentsOnly` set) crashes the 6.3 runtime
// in `_swift_retain_adapterImpl` on the first `print`.
//
// This file must not import Glibc: its declarations of the same C names would clash with these definitions.
// The counter is a plain global: the benchmark is single-threaded.

/// Allocations counted since the process started.
nonisolated(unsafe) public var allocationCount = 0

@_silgen_name("__libc_malloc")
private func libcMalloc(_ size: Int) -> UnsafeMutableRawPointer?

@_silgen_name("__libc_calloc")
private func libcCalloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer?

@_silgen_name("__libc_realloc")
private func libcRealloc(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer?

@_silgen_name("__libc_memalign")
private func libcMemalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer?

@_cdecl("malloc")
public func countingMalloc(_ size: Int) -> UnsafeMutableRawPointer? {
    allocationCount &+= 1
    return libcMalloc(size)
}

@_cdecl("calloc")
public func countingCalloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    allocationCount &+= 1
    return libcCalloc(count, size)
}

@_cdecl("realloc")
public func countingRealloc(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    allocationCount &+= 1
    return libcRealloc(pointer, size)
}

@_cdecl("memalign")
public func countingMemalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    allocationCount &+= 1
    return libcMemalign(alignment, size)
}

@_cdecl("aligned_alloc")
public func countingAlignedAlloc(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    allocationCount &+= 1
    return libcMemalign(alignment, size)
}

@_cdecl("posix_memalign")
public func countingPosixMemalign(
    _ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ alignment: Int, _ size: Int
) -> Int32 {
    allocationCount &+= 1
    guard let pointer = libcMemalign(alignment, size) else { return 12 }  // ENOMEM
    result.pointee = pointer
    return 0
}

nonisolated(unsafe) private var counterVerified = false

/// Checks that allocations by the Swift runtime reach the counter; answers whether they do.
public func installAllocationCounter() -> Bool {
    let before = allocationCount
    var arrays: [[Int]] = []
    for index in 0..<8 { arrays.append([Int](repeating: index, count: 64 + index)) }
    counterVerified = allocationCount - before >= 8 && arrays.count == 8
    return counterVerified
}

/// Runs `body` and answers how many allocations it made, or -1 when the counter does not work.
public func countingAllocations(_ body: () -> Void) -> Int {
    let before = allocationCount
    body()
    return counterVerified ? allocationCount - before : -1
}
