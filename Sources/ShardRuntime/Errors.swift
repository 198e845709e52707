import Glibc

// MARK: - ShardRuntimeStartupError

/// Why a `ShardGroup` could not start, naming the cause.
public enum ShardRuntimeStartupError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The listener address is not a numeric IPv4/IPv6 address.
    case invalidAddress(String)
    /// bind(2) failed with EADDRINUSE: another process (or listener) holds the port.
    case addressInUse(host: String, port: UInt16)
    /// bind(2) failed with EACCES: a port below 1024 needs CAP_NET_BIND_SERVICE.
    case permissionDenied(host: String, port: UInt16)
    /// bind(2) failed with EADDRNOTAVAIL: the address is not local to this machine.
    case addressNotAvailable(host: String, port: UInt16)
    /// Another socket call failed for a listener.
    case listenerFailed(host: String, port: UInt16, call: String, Errno)
    /// io_uring_queue_init returned EPERM or ENOSYS: io_uring is disabled (sysctl kernel.io_uring_disabled,
    /// a seccomp filter in a container) or absent.
    case ioUringNotPermitted(Errno)
    /// io_uring_queue_init returned ENOMEM: ring memory limits (RLIMIT_MEMLOCK on kernels before 5.12, or the
    /// memory cgroup).
    case ringSetupLimits(Errno)
    /// io_uring_queue_init failed otherwise.
    case ringSetupFailed(Errno)
    /// Registering the provided-buffer ring failed (kernel before 5.19, or memory limits).
    case bufferRingSetup(Errno)
    /// eventfd(2) failed.
    case eventFDFailed(Errno)
    /// pthread_create failed.
    case threadCreationFailed(Errno)
    /// The configuration is unusable.
    case invalidConfiguration(String)

    /// Classifies an io_uring_queue_init error.
    static func ringSetup(_ error: Errno) -> ShardRuntimeStartupError {
        switch error.rawValue {
        case EPERM, ENOSYS: return .ioUringNotPermitted(error)
        case ENOMEM: return .ringSetupLimits(error)
        default: return .ringSetupFailed(error)
        }
    }

    /// A one-line explanation.
    public var description: String {
        switch self {
        case .invalidAddress(let host):
            return "listener address '\(host)' is not a numeric IPv4 or IPv6 address"
        case .addressInUse(let host, let port):
            return "address in use: port \(port) on \(host) is already bound by another socket"
        case .permissionDenied(let host, let port):
            return "permission denied binding \(host) port \(port) (ports below 1024 need CAP_NET_BIND_SERVICE)"
        case .addressNotAvailable(let host, let port):
            return "address \(host) (port \(port)) is not available on this machine"
        case .listenerFailed(let host, let port, let call, let error):
            return "listener \(host) port \(port): \(call) failed: \(error)"
        case .ioUringNotPermitted(let error):
            return "io_uring not permitted (\(error)): check sysctl kernel.io_uring_disabled and the container's seccomp profile"
        case .ringSetupLimits(let error):
            return "io_uring ring setup hit memory limits (\(error)): raise RLIMIT_MEMLOCK (ulimit -l) or lower ringEntries"
        case .ringSetupFailed(let error):
            return "io_uring ring setup failed: \(error)"
        case .bufferRingSetup(let error):
            return "registering the provided-buffer ring failed (\(error)): kernel 5.19+ needed, or memory limits"
        case .eventFDFailed(let error):
            return "eventfd failed: \(error)"
        case .threadCreationFailed(let error):
            return "creating a shard thread failed: \(error)"
        case .invalidConfiguration(let text):
            return "invalid runtime configuration: \(text)"
        }
    }
}
