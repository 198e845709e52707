import BrokerTLS
import Foundation
import Testing

// MARK: - Certificates

/// Test certificates made once per test process by `scripts/certs` (openssl), in a fresh temporary directory.
enum TestCertificates {
    static let directory: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("shoal-tls-tests-\(getpid())").path
        let process = Process()
        process.executableURL = root.appendingPathComponent("scripts/certs")
        process.arguments = [directory]
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { fatalError("cannot run scripts/certs: \(error)") }
        process.waitUntilExit()
        precondition(process.terminationStatus == 0, "scripts/certs failed")
        return directory
    }()

    static func path(_ name: String) -> String { directory + "/" + name }
    static var serverSettings: TLSServerSettings {
        TLSServerSettings(certificateChainFile: path("server.crt"), privateKeyFile: path("server.key"))
    }
}

// MARK: - Driving two engines against each other

/// Moves everything one side has to send into the other side.
func pump(from source: TLSSession, to destination: TLSSession) -> Int {
    var moved = 0
    var buffer = [UInt8](repeating: 0, count: 4096)
    while source.outboundByteCount > 0 {
        let count = buffer.withUnsafeMutableBytes { source.readOutbound(into: $0) }
        buffer.withUnsafeBytes { destination.feed(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        moved += count
    }
    return moved
}

/// Runs the handshake to completion in memory (or until one side throws).
func handshake(_ client: TLSSession, _ server: TLSSession) throws(TLSError) {
    for _ in 0..<10 {
        let clientDone = try client.handshake()
        _ = pump(from: client, to: server)
        let serverDone = try server.handshake()
        _ = pump(from: server, to: client)
        if clientDone && serverDone { return }
    }
    Issue.record("handshake did not complete in 10 rounds")
}

/// Reads all plaintext a session can produce now.
func readAll(_ session: TLSSession) throws(TLSError) -> [UInt8] {
    var result: [UInt8] = []
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16_640, alignment: 1)
    defer { buffer.deallocate() }
    while true {
        let count = try session.read(into: buffer)
        if count == 0 { return result }
        result += UnsafeRawBufferPointer(rebasing: buffer[0..<count])
    }
}

func write(_ session: TLSSession, _ bytes: [UInt8]) throws(TLSError) {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { copy.deallocate() }
    copy.copyBytes(from: bytes)
    try session.write(UnsafeRawBufferPointer(copy))
}

// MARK: - Tests

@Suite struct TLSEngineTests {
    // Proves: a server and a client engine complete TLS 1.2 and 1.3 handshakes over memory BIOs and exchange data
    // both ways, including a payload spanning several 16 KiB records.
    @Test(arguments: [TLSProtocolVersion.tls12, .tls13])
    func handshakeAndExchange(version: TLSProtocolVersion) throws {
        let server = try TLSContext(server: TestCertificates.serverSettings).makeSession()
        let client = try TLSContext(clientTrusting: TestCertificates.path("ca.crt"), minimumVersion: version,
                                    maximumVersion: version).makeSession()
        try handshake(client, server)
        #expect(server.isHandshakeComplete && client.isHandshakeComplete)
        #expect(server.protocolVersion == (version == .tls12 ? "TLSv1.2" : "TLSv1.3"))
        #expect(server.peerCommonName == nil)
        let request = Array("hello over tls".utf8)
        try write(client, request)
        _ = pump(from: client, to: server)
        #expect(try readAll(server) == request)
        let large = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try write(server, large)
        let ciphertext = pump(from: server, to: client)
        #expect(ciphertext > large.count)  // several records, each with its overhead
        #expect(try readAll(client) == large)
    }

    // Proves: with client certificates required, the CN of a certificate signed by the CA is read; one signed by
    // another CA, or none, fails the handshake with the reason.
    @Test func clientCertificatesAndCommonName() throws {
        var settings = TestCertificates.serverSettings
        settings.caFile = TestCertificates.path("ca.crt")
        settings.requireClientCertificate = true
        let serverContext = try TLSContext(server: settings)
        let good = try TLSContext(clientTrusting: TestCertificates.path("ca.crt"),
                                  certificateFile: TestCertificates.path("client.crt"),
                                  keyFile: TestCertificates.path("client.key"))
        let server = try serverContext.makeSession()
        try handshake(try good.makeSession(), server)
        #expect(server.peerCommonName == "tls-client")

        let other = try TLSContext(clientTrusting: TestCertificates.path("ca.crt"),
                                   certificateFile: TestCertificates.path("other-client.crt"),
                                   keyFile: TestCertificates.path("other-client.key"), maximumVersion: .tls12)
        #expect(throws: TLSError.self) { try handshake(try other.makeSession(), try serverContext.makeSession()) }
        let none = try TLSContext(clientTrusting: TestCertificates.path("ca.crt"), maximumVersion: .tls12)
        let refusing = try serverContext.makeSession()
        do {
            try handshake(try none.makeSession(), refusing)
            Issue.record("a client without a certificate completed the handshake")
        } catch {
            guard case .handshake(let reason) = error else { Issue.record("unexpected \(error)"); return }
            #expect(reason.contains("certificate"))
            #expect(refusing.outboundByteCount > 0)  // the alert to send before closing
        }
    }

    // Proves: a TLS 1.3-only server refuses a client that stops at 1.2.
    @Test func minimumVersionIsEnforced() throws {
        var settings = TestCertificates.serverSettings
        settings.minimumVersion = .tls13
        let server = try TLSContext(server: settings).makeSession()
        let client = try TLSContext(clientTrusting: TestCertificates.path("ca.crt"), maximumVersion: .tls12)
            .makeSession()
        #expect(throws: TLSError.self) { try handshake(client, server) }
    }

    // Proves: bytes that are not TLS fail the handshake; a corrupted record after the handshake fails the read;
    // close_notify reads as closedByPeer.
    @Test func badDataAndClose() throws {
        let context = try TLSContext(server: TestCertificates.serverSettings)
        let garbage = try context.makeSession()
        Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { garbage.feed($0) }
        #expect(throws: TLSError.self) { try garbage.handshake() }

        let server = try context.makeSession()
        let client = try TLSContext(clientTrusting: TestCertificates.path("ca.crt")).makeSession()
        try handshake(client, server)
        try write(client, Array("intact".utf8))
        var record = [UInt8](repeating: 0, count: client.outboundByteCount)
        _ = record.withUnsafeMutableBytes { client.readOutbound(into: $0) }
        record[record.count - 3] ^= 0x5A  // flip bits in the authentication tag
        record.withUnsafeBytes { server.feed($0) }
        #expect(throws: TLSError.self) { try readAll(server) }

        let server2 = try context.makeSession()
        let client2 = try TLSContext(clientTrusting: TestCertificates.path("ca.crt")).makeSession()
        try handshake(client2, server2)
        client2.close()
        _ = pump(from: client2, to: server2)
        #expect(throws: TLSError.closedByPeer) { try readAll(server2) }
    }

    // Proves: sessions resume, by session ID/ticket in 1.2 and by ticket in 1.3.
    @Test(arguments: [TLSProtocolVersion.tls12, .tls13])
    func sessionResumption(version: TLSProtocolVersion) throws {
        let serverContext = try TLSContext(server: TestCertificates.serverSettings)
        let clientContext = try TLSContext(clientTrusting: TestCertificates.path("ca.crt"), minimumVersion: version,
                                           maximumVersion: version)
        let first = try clientContext.makeSession()
        let firstServer = try serverContext.makeSession()
        try handshake(first, firstServer)
        // TLS 1.3 tickets arrive after the handshake: the client reads them with its first read.
        try write(firstServer, [1])
        _ = pump(from: firstServer, to: first)
        #expect(try readAll(first) == [1])
        let saved = try #require(first.resumableSession)
        let second = try clientContext.makeSession()
        second.offer(saved)
        let secondServer = try serverContext.makeSession()
        try handshake(second, secondServer)
        #expect(secondServer.isSessionReused)
        #expect(second.isSessionReused)
    }

    // Proves: each bad setting is reported with the file or list at fault.
    @Test func contextErrorsNameTheCause() throws {
        var settings = TestCertificates.serverSettings
        settings.certificateChainFile = "/nonexistent/server.crt"
        #expect(throws: TLSError.self) { try TLSContext(server: settings) }
        do {
            _ = try TLSContext(server: settings)
        } catch {
            guard case .certificateFile(let path, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(path == "/nonexistent/server.crt")
        }

        settings = TestCertificates.serverSettings
        settings.privateKeyFile = TestCertificates.path("mismatched.key")
        #expect(throws: TLSError.keyMismatch(certificate: settings.certificateChainFile,
                                             key: settings.privateKeyFile)) { try TLSContext(server: settings) }

        settings = TestCertificates.serverSettings
        settings.ciphers = "NO-SUCH-CIPHER"
        #expect(throws: TLSError.ciphers("NO-SUCH-CIPHER")) { try TLSContext(server: settings) }

        settings = TestCertificates.serverSettings
        settings.cipherSuitesTLS13 = "TLS_NO_SUCH_SUITE"
        #expect(throws: TLSError.cipherSuites("TLS_NO_SUCH_SUITE")) { try TLSContext(server: settings) }

        settings = TestCertificates.serverSettings
        settings.groups = "not-a-group"
        #expect(throws: TLSError.groups("not-a-group")) { try TLSContext(server: settings) }

        settings = TestCertificates.serverSettings
        settings.requireClientCertificate = true
        #expect(throws: TLSError.noTrustedCA) { try TLSContext(server: settings) }

        settings = TestCertificates.serverSettings
        settings.caFile = "/nonexistent/ca.crt"
        #expect(throws: TLSError.self) { try TLSContext(server: settings) }
        settings.caFile = nil
        settings.caPath = "/nonexistent/certs"
        #expect(throws: TLSError.self) { try TLSContext(server: settings) }
    }

    // Proves: record framing finds complete records only.
    @Test func recordFraming() {
        let record: [UInt8] = [0x17, 0x03, 0x03, 0x00, 0x03, 1, 2, 3, 0x17]
        record.withUnsafeBytes { bytes in
            #expect(TLSRecord.firstRecordByteCount(bytes) == 8)
            #expect(TLSRecord.firstRecordByteCount(UnsafeRawBufferPointer(rebasing: bytes[0..<7])) == nil)
            #expect(TLSRecord.firstRecordByteCount(UnsafeRawBufferPointer(rebasing: bytes[0..<4])) == nil)
            #expect(TLSRecord.firstRecordByteCount(UnsafeRawBufferPointer(rebasing: bytes[8...])) == nil)
        }
    }
}
