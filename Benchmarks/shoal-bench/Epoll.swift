#if canImport(Glibc)
import Glibc
#endif

// MARK: - epoll without a C shim

/// epoll(7) for a target that may depend on MQTTCodec only: Glibc's Swift module does not export
/// <sys/epoll.h>, so the three calls are looked up with dlsym and called through `@convention(c)` pointers,
/// and `struct epoll_event` is laid out by hand (packed to 12 bytes on x86_64, 16 bytes elsewhere).
enum Epoll {
    static let input: UInt32 = 0x001  // EPOLLIN
    static let output: UInt32 = 0x004  // EPOLLOUT
    static let error: UInt32 = 0x008  // EPOLLERR
    static let hangUp: UInt32 = 0x010  // EPOLLHUP
    static let add: Int32 = 1  // EPOLL_CTL_ADD
    static let delete: Int32 = 2  // EPOLL_CTL_DEL
    static let modify: Int32 = 3  // EPOLL_CTL_MOD
    static let closeOnExec: Int32 = 0o2000000  // EPOLL_CLOEXEC == O_CLOEXEC

    #if arch(x86_64)
    /// `struct epoll_event` is `__attribute__((packed))` on x86_64: u32 events, u64 data at offset 4.
    static let eventStride = 12
    static let dataOffset = 4
    #else
    static let eventStride = 16
    static let dataOffset = 8
    #endif

    private typealias CreateFunction = @convention(c) (Int32) -> Int32
    private typealias ControlFunction = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    private typealias WaitFunction = @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Int32

    private static func symbol<T>(_ name: String, as type: T.Type) -> T {
        guard let pointer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else {  // RTLD_DEFAULT
            preconditionFailure("dlsym(\(name)) failed")
        }
        return unsafeBitCast(pointer, to: type)
    }

    nonisolated(unsafe) private static let createFunction = symbol("epoll_create1", as: CreateFunction.self)
    nonisolated(unsafe) private static let controlFunction = symbol("epoll_ctl", as: ControlFunction.self)
    nonisolated(unsafe) private static let waitFunction = symbol("epoll_wait", as: WaitFunction.self)

    /// epoll_create1(EPOLL_CLOEXEC).
    static func create() -> Int32 { createFunction(closeOnExec) }

    /// epoll_ctl with `events` and `data` packed into an epoll_event.
    static func control(_ epollFD: Int32, _ operation: Int32, _ fd: Int32, events: UInt32, data: UInt64) -> Int32 {
        var storage: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &storage) { raw in
            raw.storeBytes(of: events, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: data, toByteOffset: dataOffset, as: UInt64.self)
            return controlFunction(epollFD, operation, fd, raw.baseAddress)
        }
    }

    /// epoll_wait into `buffer` (capacity `count` events of ``eventStride`` bytes).
    static func wait(_ epollFD: Int32, _ buffer: UnsafeMutableRawPointer, count: Int32, timeoutMillis: Int32) -> Int32 {
        waitFunction(epollFD, buffer, count, timeoutMillis)
    }

    /// The events and data of event `index` in a wait buffer.
    @inline(__always)
    static func event(_ buffer: UnsafeMutableRawPointer, _ index: Int) -> (events: UInt32, data: UInt64) {
        let base = buffer + index * eventStride
        return (base.loadUnaligned(as: UInt32.self), base.loadUnaligned(fromByteOffset: dataOffset, as: UInt64.self))
    }
}
