import Glibc

// MARK: - Identifiers

/// The index of a shard in its group, `0 ..< shardCount`.
public struct ShardID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The shard's index.
    public var rawValue: Int
    /// Wraps an index.
    @inlinable public init(_ rawValue: Int) { self.rawValue = rawValue }
    /// Orders by index.
    @inlinable public static func < (lhs: ShardID, rhs: ShardID) -> Bool { lhs.rawValue < rhs.rawValue }
    /// "shard N".
    public var description: String { "shard \(rawValue)" }
}

/// A connection on one shard: a slab slot index plus the slot's generation. A completion or a call for an ID
/// whose generation no longer matches the slot (closed, slot reused) is recognised and ignored.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    /// Slot index in the owning shard's connection slab (below 2^24).
    public var index: UInt32
    /// Generation of the slot when this connection occupied it.
    public var generation: UInt32
    /// Makes an ID.
    @inlinable public init(index: UInt32, generation: UInt32) {
        self.index = index
        self.generation = generation
    }
    /// "c<index>.<generation>".
    public var description: String { "c\(index).\(generation)" }
}

/// Why a connection was closed; passed to `ShardHandler.connectionClosed`.
public enum CloseReason: Sendable, Equatable {
    /// The peer closed its side (recv returned 0).
    case endOfFile
    /// The peer reset the connection (ECONNRESET or EPIPE).
    case reset
    /// Another socket error.
    case error(Errno)
    /// The handler called `close(_:afterFlush:)`.
    case closedLocally
    /// The group is stopping.
    case shutdown
}

/// The outcome of `ShardContext.send(_:to:)`.
public enum SendResult: Sendable, Equatable {
    /// Placed in the destination ring.
    case ok
    /// The ring was full: kept in this shard's bounded overflow list. A pressure signal to the layer above.
    case queuedInOverflow
    /// The overflow list reached its cap: the message was not taken. The caller applies its policy
    /// (the design: stop reading from publishers until it drains).
    case refused
}

// MARK: - Errno

/// A C `errno` value, as returned negated in a completion's result (`Errno(rawValue: -res)`).
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    /// The positive errno value.
    public var rawValue: Int32
    /// Wraps a positive errno value.
    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }
    /// The current thread's `errno`.
    public static var current: Errno { Errno(rawValue: errno) }
    /// strerror text plus the number.
    public var description: String {
        if let text = strerror(rawValue) { return "\(String(cString: text)) (errno \(rawValue))" }
        return "errno \(rawValue)"
    }
    /// ECONNRESET.
    public static let connectionReset = Errno(rawValue: ECONNRESET)
    /// EPIPE.
    public static let brokenPipe = Errno(rawValue: EPIPE)
    /// ENOBUFS: the provided-buffer ring ran dry.
    public static let noBufferSpace = Errno(rawValue: ENOBUFS)
    /// ECANCELED.
    public static let canceled = Errno(rawValue: ECANCELED)
}

// MARK: - SocketAddress

/// An IPv4 or IPv6 socket address (a `sockaddr_storage` plus its length).
public struct SocketAddress: Sendable, CustomStringConvertible {
    /// The raw storage.
    public var storage: sockaddr_storage
    /// The used length of `storage`.
    public var length: socklen_t

    /// An empty (AF_UNSPEC) address.
    public init() {
        storage = sockaddr_storage()
        length = 0
    }

    /// Parses a numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "0.0.0.0", "::") with a port.
    /// - Returns: nil when `host` is not a numeric address.
    public init?(host: String, port: UInt16) {
        var storage = sockaddr_storage()
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr = v4
            // Safe: sockaddr_storage is large enough for any sockaddr.
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: address, as: sockaddr_in.self) }
            self.storage = storage
            self.length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = v6
            // Safe: sockaddr_storage is large enough for any sockaddr.
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: address, as: sockaddr_in6.self) }
            self.storage = storage
            self.length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            return nil
        }
    }

    /// AF_INET, AF_INET6 or AF_UNSPEC.
    public var family: Int32 { Int32(storage.ss_family) }

    /// The port in host order (0 for AF_UNSPEC).
    public var port: UInt16 {
        get {
            var copy = storage
            return withUnsafeBytes(of: &copy) { raw in
                switch family {
                case AF_INET: return UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
                case AF_INET6: return UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
                default: return 0
                }
            }
        }
        set {
            let family = self.family
            withUnsafeMutableBytes(of: &storage) { raw in
                switch family {
                case AF_INET:
                    var address = raw.load(as: sockaddr_in.self)
                    address.sin_port = newValue.bigEndian
                    raw.storeBytes(of: address, as: sockaddr_in.self)
                case AF_INET6:
                    var address = raw.load(as: sockaddr_in6.self)
                    address.sin6_port = newValue.bigEndian
                    raw.storeBytes(of: address, as: sockaddr_in6.self)
                default: break
                }
            }
        }
    }

    /// The numeric host ("127.0.0.1", "::1"), or "" for AF_UNSPEC.
    public var host: String {
        var copy = storage
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        return withUnsafeBytes(of: &copy) { raw -> String in
            switch family {
            case AF_INET:
                var address = raw.load(as: sockaddr_in.self).sin_addr
                inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
            case AF_INET6:
                var address = raw.load(as: sockaddr_in6.self).sin6_addr
                inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
            default:
                return ""
            }
            let length = buffer.firstIndex(of: 0) ?? buffer.count
            return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// "host:port" or "[host]:port".
    public var description: String {
        family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var copy = storage
        return withUnsafePointer(to: &copy) { pointer in
            // Safe: sockaddr_storage is layout-compatible with sockaddr for reading its family-specific prefix.
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// Reads a socket's local (`getsockname`) or peer (`getpeername`) address.
    static func of(socket fd: Int32, peer: Bool) -> SocketAddress {
        var result = SocketAddress()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ret = withUnsafeMutablePointer(to: &result.storage) { pointer in
            // Safe: the kernel writes at most `length` bytes into sockaddr_storage.
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        result.length = ret == 0 ? length : 0
        return result
    }
}
