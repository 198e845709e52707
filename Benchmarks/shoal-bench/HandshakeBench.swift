#if canImport(Glibc)
import Glibc
#endif
import COpenSSL
import MQTTCodec

// MARK: - handshakes: TLS connects per second

/// `--scenario handshakes`: `--threads` threads, each in a closed loop: TCP connect, TLS handshake, CONNECT, CONNACK,
/// DISCONNECT, close. Counts the loops completed in the measured interval (handshakes per second) and their latency.
/// With `--tls-resume` each thread offers its previous session (ticket or session ID) instead of a full handshake.
enum HandshakeBench {
    /// One thread's figures.
    final class ThreadResult: @unchecked Sendable {
        var histogram = Histogram()
        var completed: UInt64 = 0
        var resumed: UInt64 = 0
        var failures: UInt64 = 0
        var firstFailure: String? = nil
        var cpuNanos: UInt64 = 0
    }

    static func run(options: Options, target: TargetAddress, tls: ClientTLS) -> Int32 {
        let start = monotonicNanos()
        let measureStart = start + UInt64(options.warmupSeconds * 1e9)
        let measureEnd = measureStart + UInt64(options.durationSeconds * 1e9)
        let brokerStartHolder = BrokerSampleHolder()
        let results = (0..<options.threads).map { _ in ThreadResult() }
        let threads = results.enumerated().map { index, result in
            startThread {
                loop(thread: index, options: options, target: target, tls: tls, result: result,
                     measureStart: measureStart, measureEnd: measureEnd)
            }
        }
        // Broker CPU over the measured interval.
        if let pid = options.brokerPID {
            sleepUntil(measureStart)
            brokerStartHolder.start = ProcessSample.read(pid: pid)
            sleepUntil(measureEnd)
            brokerStartHolder.end = ProcessSample.read(pid: pid)
        }
        for thread in threads { pthread_join(thread, nil) }

        var histogram = Histogram()
        var completed: UInt64 = 0
        var resumed: UInt64 = 0
        var failures: UInt64 = 0
        var cpu: UInt64 = 0
        for result in results {
            histogram.merge(result.histogram)
            completed += result.completed
            resumed += result.resumed
            failures += result.failures
            cpu += result.cpuNanos
        }
        let seconds = options.durationSeconds
        print("shoal-bench  scenario handshakes  MQTT \(options.protocolVersion) over TLS"
            + (options.tlsResume ? " (resumed sessions)" : " (full handshakes)")
            + "  threads \(options.threads)  measured \(fixed(seconds, 1)) s")
        print("handshakes    \(rate(Double(completed) / seconds))/s  (\(completed) TLS connect + CONNECT/CONNACK "
            + "loops; \(resumed) resumed; \(failures) failed)")
        if histogram.total > 0 {
            print("latency       p50 \(duration(histogram.quantile(0.5)))  p99 \(duration(histogram.quantile(0.99)))"
                + "  max \(duration(histogram.maximum))")
        }
        print("generator     cpu \(fixed(Double(cpu) / 1e9 / seconds * 100, 0))% of one core")
        if let before = brokerStartHolder.start, let after = brokerStartHolder.end, completed > 0 {
            let brokerCPU = Double(after.cpuNanos - before.cpuNanos)
            print("broker        cpu \(fixed(brokerCPU / 1e9 / seconds * 100, 0))% of one core, "
                + "\(fixed(brokerCPU / 1e3 / Double(completed), 0)) CPU-µs per handshake")
        }
        if let failure = results.compactMap(\.firstFailure).first { printError("first failure: \(failure)") }
        return completed > 0 ? 0 : 1
    }

    final class BrokerSampleHolder: @unchecked Sendable {
        var start: ProcessSample?
        var end: ProcessSample?
    }

    static func loop(thread: Int, options: Options, target: TargetAddress, tls: ClientTLS, result: ThreadResult,
                     measureStart: UInt64, measureEnd: UInt64) {
        var saved: OpaquePointer? = nil
        defer { if let saved { SSL_SESSION_free(saved) } }
        var cpuAtStart: UInt64 = 0
        var sequence = 0
        while true {
            let begin = monotonicNanos()
            if begin >= measureEnd { break }
            if cpuAtStart == 0 && begin >= measureStart { cpuAtStart = threadCPUNanos() }
            sequence += 1
            let clientID = "hs\(getpid())-\(thread)-\(sequence)"
            switch once(target: target, tls: tls, clientID: clientID, version: options.protocolVersion,
                        offer: options.tlsResume ? saved : nil) {
            case .success(let (session, reused)):
                if options.tlsResume {
                    if let saved { SSL_SESSION_free(saved) }
                    saved = session
                } else if let session {
                    SSL_SESSION_free(session)
                }
                let end = monotonicNanos()
                if begin >= measureStart && end <= measureEnd {
                    result.completed += 1
                    if reused { result.resumed += 1 }
                    result.histogram.record(end - begin)
                }
            case .failure(let why):
                result.failures += 1
                if result.firstFailure == nil { result.firstFailure = why.text }
                usleep(10_000)
            }
        }
        if cpuAtStart != 0 { result.cpuNanos = threadCPUNanos() - cpuAtStart }
    }

    struct Failure: Error { var text: String }

    /// One loop: connect, handshake (offering `offer`), CONNECT, CONNACK, DISCONNECT. Returns the session to offer
    /// next time and whether this one was resumed.
    static func once(target: TargetAddress, tls: ClientTLS, clientID: String, version: ProtocolVersion,
                     offer: OpaquePointer?) -> Result<(OpaquePointer?, Bool), Failure> {
        let fd: Int32
        switch target.startConnect() {
        case .failure(let error): return .failure(Failure(text: "connect: \(error)"))
        case .success(let descriptor): fd = descriptor
        }
        defer { close(fd) }
        // Wait for the TCP connect, then work blocking with 10 s timeouts.
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, 10_000) == 1, socketError(fd) == 0 else {
            return .failure(Failure(text: "TCP connect failed or timed out"))
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let ssl = tls.session(fd: fd) else { return .failure(Failure(text: "SSL_new failed")) }
        defer { SSL_free(ssl) }
        if let offer { _ = SSL_set_session(ssl, offer) }
        let handshake = SSL_connect(ssl)
        guard handshake == 1 else { return .failure(Failure(text: "handshake: \(ClientTLS.reason(ssl, handshake))")) }
        let connect = ConnectPacket(protocolVersion: version, clientIdentifier: clientID, cleanStart: true,
                                    keepAliveSeconds: 0).encode(version: version)
        var written = 0
        guard SSL_write_ex(ssl, connect, connect.count, &written) == 1, written == connect.count else {
            return .failure(Failure(text: "CONNECT write failed"))
        }
        var connack = [UInt8](repeating: 0, count: 64)
        var received = 0
        // A CONNACK is at least 4 bytes (more with 5.0 properties); its second byte is the remaining length.
        while received < 2 || received < 2 + Int(connack[1]) {
            var count = 0
            let result = connack.withUnsafeMutableBytes {
                SSL_read_ex(ssl, $0.baseAddress! + received, $0.count - received, &count)
            }
            guard result == 1 else { return .failure(Failure(text: "CONNACK read: \(ClientTLS.reason(ssl, result))")) }
            received += count
        }
        guard connack[0] == 0x20, connack[3] == 0 else {
            return .failure(Failure(text: "CONNACK refused: \(connack[0..<received])"))
        }
        let disconnect: [UInt8] = [0xE0, 0x00]
        _ = SSL_write_ex(ssl, disconnect, 2, &written)
        // close_notify: OpenSSL marks a session that ends without one as not resumable.
        _ = SSL_shutdown(ssl)
        let reused = SSL_session_reused(ssl) == 1
        return .success((SSL_get1_session(ssl), reused))
    }
}
